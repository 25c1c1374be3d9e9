# shellcheck shell=bash
# Helpers of bench/run.sh: logging, loopback ports, and starting the
# background processes that the EXIT trap stops (by PID, never by name;
# stop_pid and stop_all are in scripts/lib.sh).

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "FATAL: $*"
	exit 1
}

# now_ns prints the time in Unix nanoseconds.
now_ns() { date +%s%N; }

# start_bg NAME LOGFILE CMD...: starts CMD in the background with its output
# in LOGFILE and records its PID in BG_PID.
start_bg() {
	local name=$1 logfile=$2
	shift 2
	"$@" >>"$logfile" 2>&1 &
	BG_PID=$!
	PROCS+=("$name=$BG_PID")
}

# stop_named NAME: stops the process recorded under NAME and forgets it.
stop_named() {
	local keep=() entry
	for entry in "${PROCS[@]}"; do
		if [[ ${entry%%=*} == "$1" ]]; then
			stop_pid "$1" "${entry#*=}"
		else
			keep+=("$entry")
		fi
	done
	PROCS=("${keep[@]}")
}

# median_of N...: prints the median of its numeric arguments.
median_of() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
