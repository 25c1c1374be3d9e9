# shellcheck shell=bash
# Times `crane blob` of the big layer: directly from the upstream, then cold
# through Entrepot (its first request for that blob), then warm (the second).
# Must run before any other check touches the big image through Entrepot.

TIMES=()

# time_blob LABEL REPO: downloads the big layer from REPO to a file, records
# the wall time, then checks the file's digest (hashing is not timed).
time_blob() {
	local label=$1 repo=$2 t0 secs out=$WORK/out/big-$1
	t0=$(now)
	if run crane blob --insecure "$repo@$BIG_LAYER" >"$out"; then
		secs=$(elapsed "$t0")
		TIMES+=("$label $secs")
		log "crane blob of the ${E2E_BIG_MIB} MiB layer, $label: $secs s"
		check_eq "crane blob $repo@<big layer> ($label) hashes to its digest" "$(sha <"$out")" "$BIG_LAYER"
	else
		fail "crane blob $repo@<big layer> ($label)"
	fi
	rm -f "$out"
}

check_timing() {
	log "== timing: ${E2E_BIG_MIB} MiB blob =="
	time_blob direct "$UPSTREAM/${REPO[big]}"
	time_blob cold "$(cache_repo big)"
	time_blob warm "$(cache_repo big)"
	{
		echo "# crane blob of a ${E2E_BIG_MIB} MiB layer, wall seconds ($(date -u +%FT%TZ))"
		printf '%s\n' "${TIMES[@]}"
	} >"$E2E_RESULTS"
}
