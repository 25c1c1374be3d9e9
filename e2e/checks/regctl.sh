# shellcheck shell=bash
# regctl through Entrepot's path prefix: image digests, raw manifests, blobs
# by digest, and `image copy` of the multi-arch index to an OCI directory.

check_regctl() {
	log "== regctl $REGCTL_VERSION =="
	if run regctl registry set "$CACHE" --tls disabled; then
		pass "regctl registry set $CACHE --tls disabled"
	else
		fail "regctl registry set $CACHE --tls disabled"
		return
	fi
	local n ref out
	for n in "${IMAGES[@]}"; do
		ref=$(cache_ref "$n")
		check_eq "regctl image digest $ref" \
			"$(run regctl image digest "$ref")" "${UP_DIGEST[$n]}"
		check_eq "regctl manifest get $ref: raw body hashes to the upstream digest" \
			"$(run regctl manifest get --format raw-body "$ref" | sha)" "${UP_DIGEST[$n]}"
	done
	check_eq "regctl image digest --platform linux/arm64 $(cache_ref multi)" \
		"$(run regctl image digest --platform linux/arm64 "$(cache_ref multi)")" "${UP_CHILD[arm64]}"
	check_eq "regctl blob get of an alpine layer hashes to its digest" \
		"$(run regctl blob get "$(cache_repo alpine)" "$ALPINE_LAYER" | sha)" "$ALPINE_LAYER"
	check_eq "regctl blob get of the big layer hashes to its digest" \
		"$(run regctl blob get "$(cache_repo big)" "$BIG_LAYER" | sha)" "$BIG_LAYER"

	out=$WORK/out/regctl-multi
	ref=$(cache_ref multi)
	if run regctl image copy "$ref" "ocidir://$out:1" >/dev/null; then
		pass "regctl image copy $ref ocidir://…"
		check_oci_layout "regctl image copy $ref" "$out" multi
	else
		fail "regctl image copy $ref ocidir://…"
	fi
	rm -rf "$out"
}
