# shellcheck shell=bash
# Upstream down: with the upstream stopped, what Entrepot has cached is still
# served (by tag and by digest, to crane and dockerd), an uncached request
# fails quickly, and all of it still holds after Entrepot restarts on the
# same data. Runs last: it stops the upstream for good.

# pull_cached LABEL: crane reads of cached content through Entrepot.
pull_cached() {
	local label=$1 out=$WORK/out/outage-multi
	check_eq "$label: crane digest $(cache_ref alpine)" \
		"$(run crane digest --insecure "$(cache_ref alpine)")" "${UP_DIGEST[alpine]}"
	check_eq "$label: crane digest $(cache_ref app)" \
		"$(run crane digest --insecure "$(cache_ref app)")" "${UP_DIGEST[app]}"
	if run crane pull --insecure --format oci "$(cache_ref multi)" "$out"; then
		pass "$label: crane pull --format oci $(cache_ref multi)"
		check_oci_layout "$label: crane pull $(cache_ref multi)" "$out" multi
	else
		fail "$label: crane pull --format oci $(cache_ref multi)"
	fi
	rm -rf "$out"
	check_eq "$label: crane blob of the big layer" \
		"$(run crane blob --insecure "$(cache_repo big)@$BIG_LAYER" | sha)" "$BIG_LAYER"
}

check_outage() {
	((E2E_DIRECT)) && return 0
	log "== upstream down =="
	stop_pid upstream "$UP_PID"
	if port_closed "$UP_PORT"; then
		pass "the upstream is stopped (127.0.0.1:$UP_PORT refuses connections)"
	else
		fail "the upstream is stopped (127.0.0.1:$UP_PORT refuses connections)"
	fi
	pull_cached "upstream down"

	if [[ -n ${DOCKERD_PID:-} ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		docker_cli image rm team/app:1.2 >/dev/null || true
		docker_pull app team/app:1.2
	fi

	# Not cached: an error that names the upstream, within seconds, not a
	# hang. (curl, not crane: crane retries 5xx answers for seconds.)
	local t0 status secs
	t0=$(now)
	status=$(http GET "http://$CACHE/v2/docker.io/library/alpine/manifests/never-pulled" -H "Accept: $ACCEPT_ALL")
	secs=$(elapsed "$t0")
	check_eq "upstream down: an uncached tag answers 5xx naming the upstream within 10 s (${status}, $secs s)" \
		"$(awk -v c="$status" -v s="$secs" 'BEGIN { print (c >= 500 && c < 600 && s < 10) ? "yes" : "no" }') $(grep -o 'docker.io' "$WORK/out/body" | head -n 1)" \
		"yes docker.io"

	# Restart Entrepot on the same data and port, the upstream still down.
	stop_pid entrepot "$CACHE_PID"
	start_cache entrepot-restarted
	if wait_until "entrepot (restarted)" 60 "$CACHE_PID" curl -sf "http://$CACHE/v2/"; then
		pass "entrepot restarts with the upstream down"
		pull_cached "restarted, upstream down"
	else
		fail "entrepot restarts with the upstream down"
	fi
}
