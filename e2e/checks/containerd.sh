# shellcheck shell=bash
# containerd (ctr) with a hosts dir that names Entrepot as the only host for
# docker.io and local: containerd then asks Entrepot with ?ns=<registry>.

# CTR_SNAPSHOTTER: native unpacks by copying, which works on any filesystem.
CTR_SNAPSHOTTER=${CTR_SNAPSHOTTER:-native}

ctr_run() { run ctr --address "$CTR_SOCK" --namespace e2e "$@"; }

# ctr_pull NAME REF [FLAGS...]: pulls REF for image NAME and checks the image
# record's digest and that the content store holds the upstream's tree. The
# pull's stderr is kept in $WORK/logs/ctr-NAME.log (with --http-dump, the
# requests and responses; bodies included, so not for the big image).
ctr_pull() {
	local n=$1 ref=$2
	shift 2
	local t0
	t0=$(now)
	if ctr_run images pull --hosts-dir "$WORK/certs.d" --snapshotter "$CTR_SNAPSHOTTER" \
		"$@" "$ref" >/dev/null; then
		pass "ctr images pull ${*:+$* }$ref ($(elapsed "$t0") s)"
	else
		fail "ctr images pull ${*:+$* }$ref"
	fi
	cp "$LAST_ERR" "$WORK/logs/ctr-${ref%%/*}-$n.log"
	check_eq "ctr images ls: $ref has the upstream digest" \
		"$(ctr_run images ls | awk -v r="$ref" '$1 == r { print $3 }')" "${UP_DIGEST[$n]}"
	local missing
	missing=$(ctr_run content ls -q | sort -u | comm -13 - "$WORK/expect/$n" | tr '\n' ' ')
	check_eq "ctr content ls: $ref's whole tree is in the content store" "${missing:-none}" none
}

# ctr_asked NAME PATH DUMP: the --http-dump DUMP of a pull shows a manifest
# request for PATH (with its query) sent to $CACHE.
ctr_asked() {
	local n=$1 path=$2 dump=$3
	if grep -A1 -F "msg=\"HEAD $path HTTP/1.1\"" "$dump" | grep -qF "msg=\"Host: $CACHE\"" ||
		grep -A1 -F "msg=\"GET $path HTTP/1.1\"" "$dump" | grep -qF "msg=\"Host: $CACHE\""; then
		pass "containerd asked $CACHE for $path"
	else
		fail "containerd asked $CACHE for $path" \
			"requests seen: $(grep -oE 'msg="(HEAD|GET) [^ ]*' "$dump" | head -n 3 | tr '\n' ' ')"
	fi
}

check_containerd() {
	log "== containerd $(containerd --version | awk '{ print $3 }') (snapshotter $CTR_SNAPSHOTTER) =="
	# First an image nobody has pulled: containerd fills the cache itself.
	ctr_pull cold-ctr docker.io/library/cold-ctr:1
	check_filled_once cold-ctr containerd
	ctr_pull alpine docker.io/library/alpine:3.20 --http-dump
	ctr_pull multi docker.io/library/multi:1 --all-platforms --http-dump
	ctr_pull big docker.io/library/big:1
	ctr_pull app local/team/app:1.2 --http-dump
	ctr_pull app apps.example.test/team/app:1.2 --http-dump

	# The dumps show where containerd sent its requests: to Entrepot, with
	# the registry's name in ns.
	local entry n path ns dump
	for entry in alpine/docker.io multi/docker.io app/local; do
		n=${entry%%/*} ns=${entry#*/}
		ctr_asked "$n" "/v2/${REPO[$n]}/manifests/${TAG[$n]}?ns=$ns" "$WORK/logs/ctr-$ns-$n.log"
	done
	# override_path: the host's path is used as is, and ns still added.
	path=/v2/local/team/app/manifests/1.2
	((E2E_DIRECT)) && path=/v2/team/app/manifests/1.2
	ctr_asked app "$path?ns=apps.example.test" "$WORK/logs/ctr-apps.example.test-app.log"
	# A committed snapshot a layer: at least alpine 3, multi's amd64 2, big
	# 1, app 2 (ctr may unpack multi's arm64 too).
	local snapshots
	snapshots=$(ctr_run snapshots --snapshotter "$CTR_SNAPSHOTTER" ls | awk '$NF == "Committed"' | wc -l)
	check_eq "containerd unpacked the pulled images (at least 8 committed $CTR_SNAPSHOTTER snapshots; $snapshots)" \
		"$((snapshots >= 8))" 1
}
