# shellcheck shell=bash
# Shared helpers of the end-to-end suite: TAP-style reporting, bounded
# command runs, loopback ports, and the background processes that the EXIT
# trap stops. Sourced by e2e/run.sh; defines functions and state only.

# Counters and the list of failed checks, read by summary().
PASSED=0
FAILED=0
CHECKS=0
FAILURES=()

# log prints a progress line as a TAP comment.
log() { printf '# %s\n' "$*"; }

# die stops the suite at once (the EXIT trap still cleans up).
die() {
	printf 'Bail out! %s\n' "$*"
	FAILED=$((FAILED + 1))
	exit 1
}

pass() {
	CHECKS=$((CHECKS + 1))
	PASSED=$((PASSED + 1))
	printf 'ok %d - %s\n' "$CHECKS" "$1"
}

# fail DESCRIPTION [DETAIL...]: a failed check; each DETAIL line is printed
# as a comment under it, then the tail of the last command's stderr.
fail() {
	local desc=$1
	shift
	CHECKS=$((CHECKS + 1))
	FAILED=$((FAILED + 1))
	FAILURES+=("$desc")
	printf 'not ok %d - %s\n' "$CHECKS" "$desc"
	local line
	for line in "$@"; do printf '#   %s\n' "$line"; done
	if [[ -s $LAST_ERR ]]; then
		tail -n 8 "$LAST_ERR" | sed 's/^/#   stderr: /'
	fi
}

# check_eq DESCRIPTION GOT WANT: passes when both are equal and not empty.
check_eq() {
	if [[ -n $3 && $2 == "$3" ]]; then
		pass "$1"
	else
		fail "$1" "got:  ${2:-<empty>}" "want: ${3:-<empty>}"
	fi
}

# check DESCRIPTION CMD...: passes when CMD succeeds within the timeout.
check() {
	local desc=$1
	shift
	if run "$@" >/dev/null; then
		pass "$desc"
	else
		fail "$desc" "command failed: $*"
	fi
}

# run CMD...: CMD under `timeout`, its stderr kept in $LAST_ERR (shown by fail).
# Every client command goes through run, so no check can hang the suite.
# Its proxy is a closed loopback port and only loopback bypasses it: a client
# that tries to reach any other host fails at once, without even a DNS query.
run() {
	HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY \
		NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
		timeout --kill-after=10 "$E2E_TIMEOUT" "$@" 2>"$LAST_ERR"
}
CLOSED_PROXY=http://127.0.0.1:9

# sha reads stdin and prints its digest as sha256:<hex>.
sha() {
	local hex
	hex=$(sha256sum | cut -d' ' -f1)
	printf 'sha256:%s\n' "$hex"
}

# now prints the time in seconds with nanoseconds; elapsed START prints the
# seconds since START with millisecond precision.
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.3f", e - s }'; }

# Log files whose tails are shown when the run fails, as NAME=PATH.
LOGS=()

# start_bg NAME LOGFILE CMD...: starts CMD in the background, output to
# LOGFILE, and records its PID. Sets BG_PID.
start_bg() {
	local name=$1 logfile=$2
	shift 2
	"$@" >"$logfile" 2>&1 &
	BG_PID=$!
	PROCS+=("$name=$BG_PID")
	LOGS+=("$name=$logfile")
	log "started $name (pid $BG_PID): $*"
}

# wait_until DESCRIPTION SECONDS PID CMD...: polls CMD until it succeeds.
# Fails early when process PID has died, and after SECONDS in any case.
wait_until() {
	local desc=$1 secs=$2 pid=$3
	shift 3
	local deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$desc: process $pid exited"
			return 1
		fi
		sleep 0.2
	done
	log "$desc: not ready after ${secs}s"
	return 1
}

# show_logs prints the tail of every daemon log as comments.
show_logs() {
	local entry
	for entry in "${LOGS[@]}"; do
		[[ -s ${entry#*=} ]] || continue
		log "---- last lines of ${entry%%=*} log (${entry#*=}) ----"
		tail -n "${E2E_LOG_LINES:-40}" "${entry#*=}" | sed 's/^/#   /'
	done
}

# unmount_under DIR: lazily unmounts whatever a daemon left mounted below
# DIR, deepest first, so that rm -rf cannot reach into a mount.
unmount_under() {
	local dir=$1 m
	awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do
			umount -l "$m" 2>/dev/null || true
		done
}
