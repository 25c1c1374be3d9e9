# shellcheck shell=bash
# crane through Entrepot's path prefix (/v2/<upstream-name>/<repo>/…): digests
# by tag and by digest, manifest bytes, a full `crane pull --format oci`, the
# platform children of the index, and the docker.io library/ rule.

check_crane() {
	log "== crane $CRANE_VERSION =="
	local n ref repo out
	for n in "${IMAGES[@]}"; do
		ref=$(cache_ref "$n")
		repo=$(cache_repo "$n")
		check_eq "crane digest $ref" \
			"$(run crane digest --insecure "$ref")" "${UP_DIGEST[$n]}"
		check_eq "crane manifest $ref: bytes hash to the upstream digest" \
			"$(run crane manifest --insecure "$ref" | sha)" "${UP_DIGEST[$n]}"
		check_eq "crane manifest $repo@${UP_DIGEST[$n]}: bytes hash to that digest" \
			"$(run crane manifest --insecure "$repo@${UP_DIGEST[$n]}" | sha)" "${UP_DIGEST[$n]}"
		out=$WORK/out/crane-$n
		if run crane pull --insecure --format oci "$ref" "$out"; then
			pass "crane pull --format oci $ref"
			check_oci_layout "crane pull $ref" "$out" "$n"
		else
			fail "crane pull --format oci $ref"
		fi
		rm -rf "$out"
	done

	local p
	for p in amd64 arm64; do
		check_eq "crane digest --platform linux/$p $(cache_ref multi): the upstream's $p child" \
			"$(run crane digest --insecure --platform "linux/$p" "$(cache_ref multi)")" "${UP_CHILD[$p]}"
	done
	check_eq "crane blob of an alpine layer hashes to its digest" \
		"$(run crane blob --insecure "$(cache_repo alpine)@$ALPINE_LAYER" | sha)" "$ALPINE_LAYER"

	((E2E_DIRECT)) && return 0
	# The second upstream name reaches the same upstream.
	check_eq "crane digest $CACHE/local/library/alpine:3.20 (second upstream name)" \
		"$(run crane digest --insecure "$CACHE/local/library/alpine:3.20")" "${UP_DIGEST[alpine]}"
	# docker.io gets Docker Hub's rule: a one-part name means library/<name>.
	check_eq "crane digest $CACHE/docker.io/alpine:3.20 (docker.io adds library/)" \
		"$(run crane digest --insecure "$CACHE/docker.io/alpine:3.20")" "${UP_DIGEST[alpine]}"
	check_eq "crane digest $CACHE/docker.io/multi@<digest> (docker.io adds library/)" \
		"$(run crane digest --insecure "$CACHE/docker.io/multi@${UP_DIGEST[multi]}")" "${UP_DIGEST[multi]}"
	# …and no other upstream does: local/alpine is repository alpine, which
	# the upstream does not have.
	if run crane digest --insecure "$CACHE/local/alpine:3.20" >/dev/null; then
		fail "crane digest $CACHE/local/alpine:3.20 fails (library/ is docker.io's rule only)"
	else
		pass "crane digest $CACHE/local/alpine:3.20 fails (library/ is docker.io's rule only)"
	fi
}
