# shellcheck shell=bash
# The seeded images, what the upstream says about them (the oracle every
# check compares with), and helpers that verify what a client wrote to disk.

# IMAGES are the short names of the seeded images. For each: its repository
# and tag at the upstream, and the Entrepot upstream name the clients use.
# IMAGES are pulled by every client. The others are each pulled by one check
# only, so that it finds them cold: burst by the fill-once check, cold-docker
# by dockerd, cold-ctr by containerd, partial's layers by the cold-blob checks,
# the lifecycle images (lc10, lc11, lc20: library/lifecycle, and fill1…fill5)
# by the lifecycle check.
IMAGES=(alpine multi big app)
ONE_CHECK_IMAGES=(burst cold-docker cold-ctr partial lc10 lc11 lc20 fill1 fill2 fill3 fill4 fill5)
declare -A REPO=([alpine]=library/alpine [multi]=library/multi [big]=library/big [app]=team/app
	[burst]=library/burst [cold-docker]=library/cold-docker [cold-ctr]=library/cold-ctr
	[partial]=library/partial [lc10]=library/lifecycle [lc11]=library/lifecycle [lc20]=library/lifecycle
	[fill1]=library/fill [fill2]=library/fill [fill3]=library/fill [fill4]=library/fill [fill5]=library/fill)
declare -A TAG=([alpine]=3.20 [multi]=1 [big]=1 [app]=1.2 [burst]=1 [cold-docker]=1 [cold-ctr]=1 [partial]=1
	[lc10]=1.0 [lc11]=1.1 [lc20]=2.0 [fill1]=1 [fill2]=2 [fill3]=3 [fill4]=4 [fill5]=5)
declare -A VIA=([alpine]=docker.io [multi]=docker.io [big]=docker.io [app]=local
	[burst]=docker.io [cold-docker]=docker.io [cold-ctr]=docker.io [partial]=docker.io
	[lc10]=docker.io [lc11]=docker.io [lc20]=docker.io
	[fill1]=docker.io [fill2]=docker.io [fill3]=docker.io [fill4]=docker.io [fill5]=docker.io)

# Filled by read_upstream: digest by tag, and (multi) each platform's child.
declare -A UP_DIGEST=()
declare -A UP_CHILD=()
# Further facts: the amd64 config of multi, the big, burst and an alpine layer.
MULTI_AMD64_CONFIG=
BIG_LAYER=
BURST_LAYER=
ALPINE_LAYER=
PARTIAL_LAYERS=()

# up_ref NAME: the image's reference at the upstream itself.
up_ref() { printf '%s/%s:%s\n' "$UPSTREAM" "${REPO[$1]}" "${TAG[$1]}"; }

# cache_repo NAME: the image's repository through Entrepot's path prefix,
# /v2/<upstream-name>/<repo>. With E2E_DIRECT=1 it is the upstream's own.
cache_repo() {
	if ((E2E_DIRECT)); then
		printf '%s/%s\n' "$CACHE" "${REPO[$1]}"
	else
		printf '%s/%s/%s\n' "$CACHE" "${VIA[$1]}" "${REPO[$1]}"
	fi
}
cache_ref() { printf '%s:%s\n' "$(cache_repo "$1")" "${TAG[$1]}"; }

# tree REPO DIGEST: every digest reachable from manifest DIGEST of REPO at the
# upstream (itself, child manifests, configs, layers), one a line.
tree() {
	local repo=$1 digest=$2 raw child
	raw=$(run crane manifest --insecure "$repo@$digest") || die "crane manifest $repo@$digest failed"
	echo "$digest"
	if jq -e 'has("manifests")' <<<"$raw" >/dev/null; then
		for child in $(jq -r '.manifests[].digest' <<<"$raw"); do
			tree "$repo" "$child"
		done
	else
		jq -r '.config.digest, .layers[].digest' <<<"$raw"
	fi
}

# read_upstream asks the upstream directly (crane digest --insecure) for the
# digests that every later check compares with, and checks them against
# what the seed program printed.
read_upstream() {
	mkdir -p "$WORK/expect"
	local n d repo raw
	for n in "${IMAGES[@]}" "${ONE_CHECK_IMAGES[@]}"; do
		d=$(run crane digest --insecure "$(up_ref "$n")") || die "crane digest $(up_ref "$n") failed"
		UP_DIGEST[$n]=$d
		tree "$UPSTREAM/${REPO[$n]}" "$d" | sort -u >"$WORK/expect/$n"
		check_eq "upstream: ${REPO[$n]}:${TAG[$n]} has the digest the seed pushed" \
			"$d" "$(awk -v r="${REPO[$n]}:${TAG[$n]}" '$1 == r { print $2 }' "$WORK/seed.txt")"
	done

	repo=$UPSTREAM/${REPO[multi]}
	raw=$(run crane manifest --insecure "$repo@${UP_DIGEST[multi]}")
	UP_CHILD[amd64]=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$raw")
	UP_CHILD[arm64]=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' <<<"$raw")
	MULTI_AMD64_CONFIG=$(run crane manifest --insecure "$repo@${UP_CHILD[amd64]}" | jq -r .config.digest)
	if [[ -z ${UP_CHILD[amd64]} || -z ${UP_CHILD[arm64]} || ${UP_CHILD[amd64]} == "${UP_CHILD[arm64]}" ]]; then
		die "library/multi:1 is not an index of two different platform manifests"
	fi
	BIG_LAYER=$(run crane manifest --insecure "$(up_ref big)" | jq -r '.layers[0].digest')
	ALPINE_LAYER=$(run crane manifest --insecure "$(up_ref alpine)" | jq -r '.layers[0].digest')
	BURST_LAYER=$(run crane manifest --insecure "$(up_ref burst)" | jq -r '.layers[0].digest')
	mapfile -t PARTIAL_LAYERS < <(run crane manifest --insecure "$(up_ref partial)" | jq -r '.layers[].digest')
	for n in "${IMAGES[@]}"; do
		log "upstream ${REPO[$n]}:${TAG[$n]} = ${UP_DIGEST[$n]} ($(wc -l <"$WORK/expect/$n") digests in its tree)"
	done
	log "upstream multi children: amd64 ${UP_CHILD[amd64]}, arm64 ${UP_CHILD[arm64]}"
}

# blob_digests DIR: sha256:<name> for every file in DIR (a blobs/sha256 dir).
blob_digests() {
	find "$1" -maxdepth 1 -type f -printf 'sha256:%f\n' | sort -u
}

# bad_blobs DIR: the files of DIR whose content does not hash to their name.
bad_blobs() {
	local f
	for f in "$1"/*; do
		[[ -f $f ]] || continue
		[[ $(sha <"$f") == "sha256:${f##*/}" ]] || echo "${f##*/}"
	done
}

# check_oci_layout DESC DIR NAME: an OCI layout written by a client holds
# exactly the upstream's tree of image NAME, every blob is intact, and its
# index.json points at the upstream's digest.
check_oci_layout() {
	local desc=$1 dir=$2 n=$3 bad
	if [[ ! -f $dir/index.json ]]; then
		fail "$desc: OCI layout written" "no $dir/index.json"
		return
	fi
	check_eq "$desc: index.json points at the upstream digest" \
		"$(jq -r --arg d "${UP_DIGEST[$n]}" '[.manifests[].digest] | map(select(. == $d)) | first // empty' "$dir/index.json")" \
		"${UP_DIGEST[$n]}"
	check_eq "$desc: layout holds exactly the upstream's blobs" \
		"$(blob_digests "$dir/blobs/sha256" | tr '\n' ' ')" "$(tr '\n' ' ' <"$WORK/expect/$n")"
	bad=$(bad_blobs "$dir/blobs/sha256")
	check_eq "$desc: every blob matches its digest" "${bad:-none}" none
}
