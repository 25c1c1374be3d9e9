# shellcheck shell=bash
# A stored blob leaves Entrepot with sendfile, through the whole request
# pipeline (request id, access log, the hooks): strace counts the sendfile
# calls of every Entrepot thread while crane fetches the big layer warm
# (256 MiB in 2 MiB calls: over a hundred).

check_sendfile() {
	log "== sendfile =="
	if ((E2E_DIRECT)); then
		log "E2E_DIRECT=1: skipped"
		return
	fi
	# Warm the blob first.
	run crane blob --insecure "$(cache_repo big)@$BIG_LAYER" | sha >/dev/null
	local out=$WORK/out/strace.txt pid
	# -f with the process's id attaches to every thread it has.
	strace -f -qq -c -e trace=sendfile,read,write -o "$out" -p "$CACHE_PID" &
	pid=$!
	sleep 1 # strace attaches to every thread
	check_eq "crane blob of the big layer, warm, under strace" \
		"$(run crane blob --insecure "$(cache_repo big)@$BIG_LAYER" | sha)" "$BIG_LAYER"
	kill -INT "$pid"
	wait "$pid" || true
	local calls
	calls=$(awk '$NF == "sendfile" {print $4}' "$out")
	if [[ ${calls:-0} -ge 64 ]]; then
		pass "the warm blob left with sendfile ($calls calls)"
	else
		fail "the warm blob left with sendfile" "$(cat "$out")"
	fi
}
