# shellcheck shell=bash
# Cold blobs, read by the first client in ways real clients do:
#   - fill once: several clients ask at the same moment for a blob Entrepot
#     has never seen; each gets the whole, right blob, the upstream is asked once;
#   - a client that leaves mid-body does not abort the fill;
#   - a Range request and a HEAD on a blob not yet cached.

E2E_BURST_CLIENTS=${E2E_BURST_CLIENTS:-6}

# upstream_requests METHOD PATH: how many METHOD requests for PATH the upstream
# has answered so far (from its log's "response completed" lines).
upstream_requests() {
	grep -F 'msg="response completed"' "$WORK/logs/upstream.log" |
		grep -F "http.request.method=$1 " |
		grep -cF "http.request.uri=\"$2\"" || true
}

# check_filled_once NAME CLIENT: after CLIENT's first pull of image NAME
# through Entrepot, the upstream has served each of its blobs exactly once.
check_filled_once() {
	local n=$1 client=$2 d counts=()
	# Directly at the upstream the count says nothing about Entrepot.
	((E2E_DIRECT)) && return 0
	while read -r d; do
		counts+=("$(upstream_requests GET "/v2/${REPO[$n]}/blobs/$d")")
	done < <(grep -vx "${UP_DIGEST[$n]}" "$WORK/expect/$n")
	check_eq "$client's cold pull of ${REPO[$n]}:${TAG[$n]}: the upstream served each blob once" \
		"${counts[*]}" "$(printf '1 %.0s' "${counts[@]}" | sed 's/ $//')"
}

# upstream_bytes METHOD PATH: the body bytes the upstream has written for
# METHOD requests of PATH so far (its log's http.response.written).
upstream_bytes() {
	grep -F 'msg="response completed"' "$WORK/logs/upstream.log" |
		grep -F "http.request.method=$1 " |
		grep -F "http.request.uri=\"$2\"" |
		sed -n 's/.*http\.response\.written=\([0-9]*\).*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }' || true # no line yet: 0
}

# filled_once URL SENT: "once" when SENT bytes from the upstream are one
# fill of the blob at URL (of the cache): at least its size, and less than
# twice it. One fill is one GET, or, when the upstream is slower than
# upstreams[].parallel.stream_rate, the whole blob's GET read for its first
# part (the bytes it had sent by then count too) and ranges for the rest:
# either way, not the blob twice.
filled_once() {
	local size
	size=$(curl -sfI "$1" | tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }')
	if ((size > 0 && $2 >= size && $2 < 2 * size)); then
		echo once
	else
		echo "$2 bytes for a blob of ${size:-?}"
	fi
}

check_burst() {
	log "== fill once: $E2E_BURST_CLIENTS concurrent cold pulls of a ${E2E_BURST_MIB} MiB blob =="
	local path=/v2/${REPO[burst]}/blobs/$BURST_LAYER
	local before i pids=() bad=0 rc
	before=$(upstream_bytes GET "$path")
	for i in $(seq "$E2E_BURST_CLIENTS"); do
		timeout --kill-after=10 "$E2E_TIMEOUT" \
			crane blob --insecure "$(cache_repo burst)@$BURST_LAYER" \
			>"$WORK/out/burst-$i" 2>"$WORK/out/burst-$i.err" &
		pids+=("$!")
	done
	# Wait for these jobs only: a bare `wait` would wait for the daemons too.
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[i]}" || rc=$?
		if ((rc != 0)) || [[ $(sha <"$WORK/out/burst-$((i + 1))") != "$BURST_LAYER" ]]; then
			bad=$((bad + 1))
			log "client $((i + 1)): exit $rc; $(tail -n 1 "$WORK/out/burst-$((i + 1)).err")"
		fi
	done
	check_eq "$E2E_BURST_CLIENTS concurrent crane blob of a cold blob: every client got the whole blob" \
		"$bad failed" "0 failed"
	rm -f "$WORK/out"/burst-*
	((E2E_DIRECT)) && return 0
	check_eq "$E2E_BURST_CLIENTS concurrent cold pulls: the upstream sent the blob once (one fill)" \
		"$(filled_once "http://$CACHE${CACHE_V2}/${REPO[burst]}/blobs/$BURST_LAYER" $(($(upstream_bytes GET "$path") - before)))" once
}

# check_abandoned: a slow client (2 MiB/s) reads a cold 16 MiB blob and hangs
# up after a second; the fill goes on, so the next client gets the whole blob
# and the upstream has still been asked once. (Slow, so that it leaves while
# a fill that follows the client's pace would still be running.)
check_abandoned() {
	local d=${PARTIAL_LAYERS[0]} repo=${REPO[partial]}
	local url=http://$CACHE${CACHE_V2}/$repo/blobs/$d status
	run curl -s --limit-rate 2M --max-time 1 -o /dev/null "$url" || true
	status=$(http GET "$url")
	check_eq "cold blob: a client hung up after 1 s at 2 MiB/s; the next GET gets the whole blob" \
		"$status $(sha <"$WORK/out/body")" "200 $d"
	((E2E_DIRECT)) && return 0
	check_eq "cold blob: the client that hung up did not abort the fill (the upstream sent the blob once)" \
		"$(filled_once "$url" "$(upstream_bytes GET "/v2/$repo/blobs/$d")")" once
}

# check_cold_range: the first request for a blob asks for a range of it.
check_cold_range() {
	local d=${PARTIAL_LAYERS[1]} repo=${REPO[partial]} status want
	status=$(http GET "http://$UPSTREAM/v2/$repo/blobs/$d" -H 'Range: bytes=5000000-5000999')
	want="$status $(header Content-Range) $(sha <"$WORK/out/body")"
	status=$(http GET "http://$CACHE${CACHE_V2}/$repo/blobs/$d" -H 'Range: bytes=5000000-5000999')
	check_eq "cold blob: the first request, Range: bytes=5000000-5000999, gets the upstream's 206 and bytes" \
		"$status $(header Content-Range) $(sha <"$WORK/out/body")" "$want"
	status=$(http GET "http://$CACHE${CACHE_V2}/$repo/blobs/$d")
	check_eq "cold blob: after a ranged first request, a GET gets the whole blob" \
		"$status $(sha <"$WORK/out/body")" "200 $d"
}

# check_cold_head: the first request for a blob is a HEAD (as clients check
# for a blob before they fetch it).
check_cold_head() {
	local d=${PARTIAL_LAYERS[2]} repo=${REPO[partial]} status want t0
	http HEAD "http://$UPSTREAM/v2/$repo/blobs/$d" >/dev/null
	want="200 $(header Content-Length) $d"
	t0=$(now)
	status=$(http HEAD "http://$CACHE${CACHE_V2}/$repo/blobs/$d")
	check_eq "cold blob: the first request, a HEAD, answers 200 with the upstream's length and digest ($(elapsed "$t0") s)" \
		"$status $(header Content-Length) $(header Docker-Content-Digest)" "$want"
	status=$(http GET "http://$CACHE${CACHE_V2}/$repo/blobs/$d")
	check_eq "cold blob: after a HEAD, a GET gets the whole blob" \
		"$status $(sha <"$WORK/out/body")" "200 $d"
}

check_fill() {
	CACHE_V2=/v2
	((E2E_DIRECT)) || CACHE_V2=/v2/docker.io
	check_burst
	log "== cold blobs: abandoned, ranged, HEAD =="
	check_abandoned
	check_cold_range
	check_cold_head
}
