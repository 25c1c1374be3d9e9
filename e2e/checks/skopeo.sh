# shellcheck shell=bash
# skopeo through Entrepot's path prefix: raw manifests, `copy --all` of the
# multi-arch index to an OCI layout, and the single image to a dir: copy.

# skopeo_run runs skopeo with a policy and a registries.conf of the suite's
# own (SKOPEO_CONF, default: no mirrors or search registries): the machine's
# are not read. skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF but has the
# (hidden) --registries-conf flag.
skopeo_run() {
	if [[ ! -f $WORK/policy.json ]]; then
		echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
		echo 'unqualified-search-registries = []' >"$WORK/registries.conf"
	fi
	run skopeo --registries-conf "${SKOPEO_CONF:-$WORK/registries.conf}" --policy "$WORK/policy.json" "$@"
}

# dir_blobs DIR: the blobs of a skopeo dir: copy (files named by their hex
# digest), as sha256:<hex>, sorted.
dir_blobs() {
	local f
	for f in "$1"/*; do
		if [[ ${f##*/} =~ ^[0-9a-f]{64}$ ]]; then echo "sha256:${f##*/}"; fi
	done | sort
}

check_skopeo() {
	log "== skopeo $(skopeo --version | awk '{ print $3 }') =="
	local n ref out bad
	for n in alpine multi big app; do
		ref=docker://$(cache_ref "$n")
		check_eq "skopeo inspect --raw $ref hashes to the upstream digest" \
			"$(skopeo_run inspect --tls-verify=false --raw "$ref" | sha)" "${UP_DIGEST[$n]}"
	done
	# One platform of the index: skopeo resolves it and copies that child.
	out=$WORK/out/skopeo-arm64
	ref=docker://$(cache_ref multi)
	if skopeo_run copy --quiet --override-os linux --override-arch arm64 --src-tls-verify=false "$ref" "dir:$out"; then
		pass "skopeo copy --override-arch arm64 $ref dir:…"
		check_eq "skopeo copy --override-arch arm64 $ref: manifest.json is the upstream's arm64 child" \
			"$(sha <"$out/manifest.json")" "${UP_CHILD[arm64]}"
	else
		fail "skopeo copy --override-arch arm64 $ref dir:…"
	fi

	# The whole index, both platforms, into an OCI layout; digests preserved
	# (the source is OCI already, so nothing is converted).
	out=$WORK/out/skopeo-multi
	ref=docker://$(cache_ref multi)
	if skopeo_run copy --quiet --all --preserve-digests --src-tls-verify=false "$ref" "oci:$out:1"; then
		pass "skopeo copy --all $ref oci:…"
		check_oci_layout "skopeo copy --all $ref" "$out" multi
	else
		fail "skopeo copy --all $ref oci:…"
	fi

	# The single (Docker schema 2) image to a dir: copy, which keeps the
	# manifest's bytes as they came.
	for n in alpine app; do
		out=$WORK/out/skopeo-$n
		ref=docker://$(cache_ref "$n")
		if skopeo_run copy --quiet --src-tls-verify=false "$ref" "dir:$out"; then
			pass "skopeo copy $ref dir:…"
			check_eq "skopeo copy $ref: manifest.json hashes to the upstream digest" \
				"$(sha <"$out/manifest.json")" "${UP_DIGEST[$n]}"
			check_eq "skopeo copy $ref: every config and layer blob written" \
				"$(dir_blobs "$out" | tr '\n' ' ')" \
				"$(grep -vx "${UP_DIGEST[$n]}" "$WORK/expect/$n" | tr '\n' ' ')"
			bad=$(dir_blobs "$out" | while read -r d; do
				if [[ $(sha <"$out/${d#sha256:}") != "$d" ]]; then echo "$d"; fi
			done)
			check_eq "skopeo copy $ref: every blob matches its digest" "${bad:-none}" none
		else
			fail "skopeo copy $ref dir:…"
		fi
	done
	rm -rf "$WORK/out"/skopeo-*

	check_skopeo_mirrors
}

# check_skopeo_mirrors configures Entrepot the way podman and CRI-O use it
# (containers-registries.conf: a mirror whose path names the upstream) and
# pulls by the images' own names. Each registry's own location is a closed
# loopback port, so a pull that succeeds came through the mirror.
check_skopeo_mirrors() {
	local conf=$WORK/registries-mirror.conf docker_mirror=$CACHE/docker.io local_mirror=$CACHE/local
	if ((E2E_DIRECT)); then
		docker_mirror=$CACHE
		local_mirror=$CACHE
	fi
	cat >"$conf" <<-EOF
		unqualified-search-registries = []

		[[registry]]
		prefix = "docker.io"
		location = "127.0.0.1:1"
		insecure = true

		[[registry.mirror]]
		location = "$docker_mirror"
		insecure = true

		[[registry]]
		prefix = "apps.example.test"
		location = "127.0.0.1:1"
		insecure = true

		[[registry.mirror]]
		location = "$local_mirror"
		insecure = true
	EOF
	local ref n
	for ref in alpine=docker.io/library/alpine:3.20 alpine=docker.io/alpine:3.20 \
		multi=docker.io/library/multi:1 app=apps.example.test/team/app:1.2; do
		n=${ref%%=*}
		ref=docker://${ref#*=}
		check_eq "skopeo inspect --raw $ref through a podman-style registries.conf mirror" \
			"$(SKOPEO_CONF=$conf skopeo_run inspect --raw "$ref" | sha)" \
			"${UP_DIGEST[$n]}"
	done
	local out=$WORK/out/skopeo-mirror
	ref=docker://docker.io/library/multi:1
	if SKOPEO_CONF=$conf skopeo_run copy --quiet --all --preserve-digests "$ref" "oci:$out:1"; then
		pass "skopeo copy --all $ref oci:… through the registries.conf mirror"
		check_oci_layout "skopeo copy --all $ref (mirror)" "$out" multi
	else
		fail "skopeo copy --all $ref oci:… through the registries.conf mirror"
	fi
	rm -rf "$out"
}
