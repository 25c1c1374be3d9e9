# shellcheck shell=bash
# The RFC 9211 Cache-Status header, with curl, exact values: a blob's first
# GET is a miss that is stored, the next one a hit; a tag within its TTL and
# a manifest by digest are hits; a 404 of the upstream is forwarded as such,
# to GET and HEAD. A second Entrepot (ttl 0s) in front of a second registry
# on the upstream's storage shows a tag revalidated, then, that registry
# stopped, the stale copy served and an uncached tag unanswered (GET and
# HEAD).
#
# A HEAD carries the header as a GET does: a hit for what is stored.
#
# Its image, library/cachestatus:1 (one small layer of its own), is pushed
# here, so that no other check has fetched it: its blob is cold. Its
# manifest is fetched only after the blob checks, since the fetch of a
# manifest starts fills of its layers (prefetch).

CS_REPO=library/cachestatus

# cache_status METHOD URL [CURL-ARGS...]: "STATUS CACHE-STATUS" of the
# answer; its headers and body stay in $WORK/out (http).
cache_status() {
	local status
	status=$(http "$@")
	printf '%s %s\n' "$status" "$(header Cache-Status)"
}

# cs_push: pushes library/cachestatus:1 to the upstream and sets CS_DIGEST
# (its manifest) and CS_LAYER.
cs_push() {
	local d=$WORK/cachestatus
	mkdir -p "$d/layer"
	printf 'Cache-Status check of the end-to-end suite\n' >"$d/layer/cachestatus.txt"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d/layer" -cf "$d/layer.tar" cachestatus.txt
	run crane append --insecure -f "$d/layer.tar" -t "$UPSTREAM/$CS_REPO:1" >/dev/null || return 1
	CS_DIGEST=$(run crane digest --insecure "$UPSTREAM/$CS_REPO:1") || return 1
	CS_LAYER=$(run crane manifest --insecure "$UPSTREAM/$CS_REPO@$CS_DIGEST" | jq -r '.layers[0].digest') || return 1
	[[ $CS_LAYER == sha256:* ]]
}

check_cachestatus() {
	if ((E2E_DIRECT)); then
		log "== Cache-Status: skipped with E2E_DIRECT=1 (the header is Entrepot's) =="
		return 0
	fi
	log "== Cache-Status (curl) =="
	if ! cs_push; then
		fail "crane append: push $CS_REPO:1 (one layer of its own) to the upstream"
		return 0
	fi
	pass "crane append: push $CS_REPO:1 (one layer of its own) to the upstream"

	local p=http://$CACHE/v2/docker.io/$CS_REPO
	local blob=$p/blobs/$CS_LAYER got
	got=$(cache_status GET "$blob")
	check_eq "GET …/$CS_REPO/blobs/<layer>, cold: the layer, Cache-Status fwd=miss; stored" \
		"$got $(sha <"$WORK/out/body")" "200 Entrepot; fwd=miss; stored $CS_LAYER"
	got=$(cache_status GET "$blob")
	check_eq "GET …/$CS_REPO/blobs/<layer> again: the layer, Cache-Status hit" \
		"$got $(sha <"$WORK/out/body")" "200 Entrepot; hit $CS_LAYER"
	check_eq "HEAD …/$CS_REPO/blobs/<layer>, stored: Cache-Status hit" \
		"$(cache_status HEAD "$blob")" "200 Entrepot; hit"

	got=$(cache_status GET "$p/manifests/1" -H "Accept: $ACCEPT_ALL")
	check_eq "GET …/$CS_REPO/manifests/1, first: the manifest, Cache-Status fwd=miss; stored" \
		"$got $(header Docker-Content-Digest)" "200 Entrepot; fwd=miss; stored $CS_DIGEST"
	got=$(cache_status GET "$p/manifests/1" -H "Accept: $ACCEPT_ALL")
	check_eq "GET …/$CS_REPO/manifests/1 within its TTL (60 s): Cache-Status hit" \
		"$got $(header Docker-Content-Digest)" "200 Entrepot; hit $CS_DIGEST"
	check_eq "HEAD …/$CS_REPO/manifests/1 within its TTL: Cache-Status hit" \
		"$(cache_status HEAD "$p/manifests/1" -H "Accept: $ACCEPT_ALL")" "200 Entrepot; hit"
	got=$(cache_status GET "$p/manifests/$CS_DIGEST" -H "Accept: $ACCEPT_ALL")
	check_eq "GET …/$CS_REPO/manifests/<digest>, stored: the manifest, Cache-Status hit" \
		"$got $(sha <"$WORK/out/body")" "200 Entrepot; hit $CS_DIGEST"

	check_eq "GET …/$CS_REPO/manifests/no-such-tag: 404, Cache-Status fwd=miss; fwd-status=404" \
		"$(cache_status GET "$p/manifests/no-such-tag" -H "Accept: $ACCEPT_ALL")" "404 Entrepot; fwd=miss; fwd-status=404"
	check_eq "HEAD …/$CS_REPO/manifests/no-such-tag: 404, Cache-Status fwd=miss; fwd-status=404" \
		"$(cache_status HEAD "$p/manifests/no-such-tag" -H "Accept: $ACCEPT_ALL")" "404 Entrepot; fwd=miss; fwd-status=404"
	check_eq "GET …/$CS_REPO/blobs/<unknown digest>: 404, Cache-Status fwd=miss; fwd-status=404" \
		"$(cache_status GET "$p/blobs/sha256:$(printf '1%.0s' {1..64})")" "404 Entrepot; fwd=miss; fwd-status=404"

	cs_ttl0
}

# cs_ttl0: a second Entrepot with ttl 0s, whose upstream is a second
# registry serving the upstream's storage, so that this check can stop it
# and leave the suite's upstream running.
cs_ttl0() {
	local up_port port conf=$WORK/entrepot-cachestatus.yml up_pid pid
	pick_port up_port
	sed "s/^\(  addr: \).*/\1127.0.0.1:$up_port/" "$WORK/upstream.yml" >"$WORK/upstream-cachestatus.yml"
	start_bg upstream-cachestatus "$WORK/logs/upstream-cachestatus.log" \
		env OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true \
		registry serve "$WORK/upstream-cachestatus.yml"
	up_pid=$BG_PID
	if ! wait_until "upstream (cachestatus)" 60 "$up_pid" curl -sf "http://127.0.0.1:$up_port/v2/"; then
		fail "a second registry on the upstream's storage starts (127.0.0.1:$up_port)"
		return 0
	fi
	pass "a second registry on the upstream's storage starts (127.0.0.1:$up_port)"
	pick_port port
	cat >"$conf" <<-EOF
		listen: 127.0.0.1:$port
		data: $WORK/data-cachestatus
		admin:
		  listen: 127.0.0.1:0
		upstreams:
		  - name: docker.io
		    url: http://127.0.0.1:$up_port
		    ttl: 0s
	EOF
	start_bg entrepot-cachestatus "$WORK/logs/entrepot-cachestatus.log" "$WORK/bin/entrepot" serve --config "$conf"
	pid=$BG_PID
	if ! wait_until "entrepot (cachestatus, ttl 0)" 60 "$pid" curl -sf "http://127.0.0.1:$port/v2/"; then
		fail "entrepot serve --config (ttl: 0s, the second registry) starts"
		stop_pid upstream-cachestatus "$up_pid"
		return 0
	fi
	pass "entrepot serve --config (ttl: 0s, the second registry) starts"

	local p=http://127.0.0.1:$port/v2/docker.io/$CS_REPO got
	got=$(cache_status GET "$p/manifests/1" -H "Accept: $ACCEPT_ALL")
	check_eq "ttl 0: GET …/$CS_REPO/manifests/1, first: Cache-Status fwd=miss; stored" \
		"$got $(header Docker-Content-Digest)" "200 Entrepot; fwd=miss; stored $CS_DIGEST"
	got=$(cache_status GET "$p/manifests/1" -H "Accept: $ACCEPT_ALL")
	check_eq "ttl 0: GET …/$CS_REPO/manifests/1 again: revalidated, Cache-Status fwd=stale; fwd-status=200" \
		"$got $(sha <"$WORK/out/body")" "200 Entrepot; fwd=stale; fwd-status=200 $CS_DIGEST"
	check_eq "ttl 0: HEAD …/$CS_REPO/manifests/1: revalidated, Cache-Status fwd=stale; fwd-status=200" \
		"$(cache_status HEAD "$p/manifests/1" -H "Accept: $ACCEPT_ALL")" "200 Entrepot; fwd=stale; fwd-status=200"

	stop_pid upstream-cachestatus "$up_pid"
	if port_closed "$up_port"; then
		pass "the second registry is stopped (127.0.0.1:$up_port refuses connections)"
	else
		fail "the second registry is stopped (127.0.0.1:$up_port refuses connections)"
	fi
	got=$(cache_status GET "$p/manifests/1" -H "Accept: $ACCEPT_ALL")
	check_eq "ttl 0, upstream down: GET …/$CS_REPO/manifests/1: the cached manifest, Cache-Status hit; detail=stale" \
		"$got $(sha <"$WORK/out/body")" "200 Entrepot; hit; detail=stale $CS_DIGEST"
	check_eq "ttl 0, upstream down: GET …/$CS_REPO/manifests/never-pulled: 502, Cache-Status fwd=miss; detail=no-answer" \
		"$(cache_status GET "$p/manifests/never-pulled" -H "Accept: $ACCEPT_ALL")" "502 Entrepot; fwd=miss; detail=no-answer"
	check_eq "ttl 0, upstream down: HEAD …/$CS_REPO/manifests/never-pulled: 502, Cache-Status fwd=miss; detail=no-answer" \
		"$(cache_status HEAD "$p/manifests/never-pulled" -H "Accept: $ACCEPT_ALL")" "502 Entrepot; fwd=miss; detail=no-answer"
	stop_pid entrepot-cachestatus "$pid"
}
