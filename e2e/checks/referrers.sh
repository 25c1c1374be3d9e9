# shellcheck shell=bash
# The referrers API through Entrepot, with a Distribution upstream that lacks
# it: regctl attaches an artifact at the upstream (which falls back to the
# sha256-<hex> tag schema there), and lists it through the cache, which
# answers the referrers API from that tag; an image without referrers gets
# 200 and an empty index, never 404.

check_referrers() {
	log "== referrers (regctl $REGCTL_VERSION) =="
	run regctl registry set "$UPSTREAM" --tls disabled >/dev/null
	run regctl registry set "$CACHE" --tls disabled >/dev/null
	local sbom=$WORK/out/sbom.json status body want got
	printf '{"sbom":"made up"}\n' >"$sbom"
	if ! run regctl artifact put --subject "$(up_ref app)" --artifact-type application/vnd.example.sbom \
		--file "$sbom" --file-media-type application/json >/dev/null; then
		fail "regctl artifact put --subject $(up_ref app) at the upstream"
		return
	fi
	pass "regctl artifact put --subject $(up_ref app) at the upstream"
	want=$(run regctl artifact list "$(up_ref app)" --format '{{range .Descriptors}}{{println .Digest}}{{end}}')

	status=$(curl -s -o /dev/null -w '%{http_code}' "http://$UPSTREAM/v2/${REPO[app]}/referrers/${UP_DIGEST[app]}")
	log "the upstream answers its referrers API with $status"

	got=$(run regctl artifact list "$(cache_ref app)" --format '{{range .Descriptors}}{{println .Digest}}{{end}}')
	check_eq "regctl artifact list $(cache_ref app): the upstream's artifact" "$got" "$want"
	got=$(run regctl artifact list "$(cache_ref app)" --filter-artifact-type application/vnd.example.sbom \
		--format '{{range .Descriptors}}{{println .Digest}}{{end}}')
	check_eq "regctl artifact list --filter-artifact-type through the cache" "$got" "$want"
	got=$(run regctl artifact list "$(cache_ref app)" --filter-artifact-type application/vnd.example.none \
		--format '{{len .Descriptors}}')
	check_eq "regctl artifact list --filter-artifact-type of a type nobody attached: none" "$got" "0"

	body=$(curl -s -D "$WORK/out/referrers.h" "http://$CACHE/v2/$(cache_repo app | cut -d/ -f2-)/referrers/${UP_DIGEST[app]}?artifactType=application/vnd.example.sbom")
	check_eq "GET referrers through the cache: the artifact, filtered" \
		"$(jq -r '.manifests[].digest' <<<"$body")" "$want"
	check_eq "GET referrers?artifactType= through the cache: OCI-Filters-Applied" \
		"$(tr -d '\r' <"$WORK/out/referrers.h" | awk -F': ' 'tolower($1)=="oci-filters-applied" {print $2}')" "artifactType"

	status=$(curl -s -o "$WORK/out/none.json" -w '%{http_code}' \
		"http://$CACHE/v2/$(cache_repo alpine | cut -d/ -f2-)/referrers/${UP_DIGEST[alpine]}")
	check_eq "GET referrers of an image without any: 200 and an empty index" \
		"$status $(jq -c '.manifests' "$WORK/out/none.json")" "200 []"
}
