# shellcheck shell=bash
# dockerd with Entrepot as its registry mirror: Docker Hub names, requests
# /v2/library/<name>/… with no prefix and no ns, so Entrepot routes them to
# its default upstream. dockerd's only other way out is a proxy on a closed
# port, so a successful pull went through the mirror.

# docker_digest REF: the digest part of the image's first RepoDigest.
docker_digest() {
	local rd
	rd=$(docker_cli image inspect --format '{{index .RepoDigests 0}}' "$1") || return 0
	printf '%s\n' "${rd#*@}"
}

# docker_pull NAME REF: pulls REF and checks its RepoDigest.
docker_pull() {
	local n=$1 ref=$2 t0
	t0=$(now)
	if docker_cli pull --quiet "$ref" >/dev/null; then
		pass "docker pull $ref ($(elapsed "$t0") s)"
	else
		fail "docker pull $ref"
	fi
	check_eq "docker image inspect $ref: RepoDigests has the upstream digest" \
		"$(docker_digest "$ref")" "${UP_DIGEST[$n]}"
}

check_docker() {
	log "== dockerd $(dockerd --version | awk '{ print $3 }' | tr -d ,) =="
	# First an image nobody has pulled: dockerd fills the cache itself,
	# three layers at a time.
	docker_pull cold-docker cold-docker:1
	check_filled_once cold-docker dockerd
	docker_pull alpine alpine:3.20
	docker_pull multi multi:1
	docker_pull big big:1
	docker_pull app team/app:1.2
	check_eq "docker image inspect multi:1: the image is the amd64 child (its config digest)" \
		"$(docker_cli image inspect --format '{{.Id}}' multi:1)" "$MULTI_AMD64_CONFIG"

	# By digest, after removing the tag, so the pull must fetch the manifest.
	docker_cli image rm alpine:3.20 >/dev/null || true
	docker_pull alpine "alpine@${UP_DIGEST[alpine]}"

	# dockerd logs (with --debug) every endpoint it tries. All of them must be
	# the mirror: an endpoint after it would mean the mirror failed and
	# dockerd fell back to Docker Hub (which the closed proxy blocks).
	local tried via_mirror
	tried=$(grep -c 'Trying to pull .* from ' "$WORK/logs/dockerd.log" || true)
	via_mirror=$(grep -Ec "Trying to pull .* from http://$CACHE/? " "$WORK/logs/dockerd.log" || true)
	if ((tried > 0 && tried == via_mirror)); then
		pass "dockerd pulled only from the mirror http://$CACHE ($tried endpoint tries, no fallback)"
	else
		fail "dockerd pulled only from the mirror http://$CACHE" \
			"$via_mirror of $tried endpoint tries went to the mirror:" \
			"$(grep 'Trying to pull .* from ' "$WORK/logs/dockerd.log" | grep -Ev "from http://$CACHE/? " | head -n 3)"
	fi
}
