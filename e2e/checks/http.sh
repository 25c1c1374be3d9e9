# shellcheck shell=bash
# The routing contract and HTTP details, with curl: the three ways to name an
# upstream (path prefix, ?ns=, default), GET and HEAD agreeing on digest and
# length, ranged blob reads, 404s, and push refused with 405.

ACCEPT_ALL='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

# http METHOD URL [CURL-ARGS...]: prints the status code; the headers and
# body are left in $WORK/out/headers and $WORK/out/body.
http() {
	local method=$1 url=$2
	shift 2
	local how=(-X "$method")
	[[ $method == HEAD ]] && how=(-I)
	: >"$WORK/out/body"
	run curl -sS "${how[@]}" -o "$WORK/out/body" -D "$WORK/out/headers" -w '%{http_code}' "$@" "$url" ||
		echo "curl-failed"
}

# header NAME: that header's value in the last response.
header() {
	local name
	name=$(tr '[:upper:]' '[:lower:]' <<<"$1")
	awk -v n="$name" '{ sub(/\r$/, "") } index(tolower($0), n ": ") == 1 { print substr($0, length(n) + 3); exit }' \
		"$WORK/out/headers"
}

# check_manifest_route DESC PATH NAME: GET and HEAD of a manifest PATH answer
# 200 with image NAME's upstream digest; GET's body hashes to it, its
# Content-Type is the upstream's, HEAD's Content-Length is the body's length.
check_manifest_route() {
	local desc=$1 path=$2 n=$3 want=${UP_DIGEST[$3]}
	local status digest body ctype length
	status=$(http GET "http://$CACHE$path" -H "Accept: $ACCEPT_ALL")
	digest=$(header Docker-Content-Digest)
	ctype=$(header Content-Type)
	body=$(sha <"$WORK/out/body")
	length=$(stat -c %s "$WORK/out/body")
	check_eq "GET $path ($desc): 200, digest header and body are the upstream's" \
		"$status $digest $body $ctype" "200 $want $want ${UP_CTYPE[$n]}"
	status=$(http HEAD "http://$CACHE$path" -H "Accept: $ACCEPT_ALL")
	check_eq "HEAD $path ($desc): 200, same digest, Content-Length of the body" \
		"$status $(header Docker-Content-Digest) $(header Content-Length)" "200 $want $length"
}

declare -A UP_CTYPE=()

check_http() {
	log "== HTTP details (curl) =="
	local n
	for n in "${IMAGES[@]}"; do
		http GET "http://$UPSTREAM/v2/${REPO[$n]}/manifests/${TAG[$n]}" -H "Accept: $ACCEPT_ALL" >/dev/null
		UP_CTYPE[$n]=$(header Content-Type)
	done

	local p=/v2
	((E2E_DIRECT)) || p=/v2/docker.io
	check_manifest_route "path prefix" "$p/library/alpine/manifests/3.20" alpine
	check_manifest_route "path prefix, by digest" "$p/library/multi/manifests/${UP_DIGEST[multi]}" multi
	if ((!E2E_DIRECT)); then
		check_manifest_route "path prefix, docker.io adds library/" /v2/docker.io/alpine/manifests/3.20 alpine
		check_manifest_route "?ns=docker.io (containerd)" "/v2/library/alpine/manifests/3.20?ns=docker.io" alpine
		check_manifest_route "no prefix: default upstream (dockerd)" /v2/library/multi/manifests/1 multi
		check_manifest_route "path prefix, second upstream" /v2/local/team/app/manifests/1.2 app
		check_manifest_route "?ns=local" "/v2/team/app/manifests/1.2?ns=local" app
		check_manifest_route "no prefix, two-part name" /v2/team/app/manifests/1.2 app
	fi

	# Blobs: whole, HEAD, and a range as clients resume with.
	local blob=$p/library/alpine/blobs/$ALPINE_LAYER status size
	status=$(http GET "http://$CACHE$blob")
	check_eq "GET $blob: 200 and the body hashes to the digest" "$status $(sha <"$WORK/out/body")" "200 $ALPINE_LAYER"
	size=$(stat -c %s "$WORK/out/body")
	status=$(http HEAD "http://$CACHE$blob")
	check_eq "HEAD $blob: 200 and Content-Length of the blob" "$status $(header Content-Length)" "200 $size"
	if ((!E2E_DIRECT)); then
		status=$(http GET "http://$CACHE/v2/library/alpine/blobs/$ALPINE_LAYER?ns=docker.io")
		check_eq "GET /v2/library/alpine/blobs/…?ns=docker.io: 200 and the right bytes" \
			"$status $(sha <"$WORK/out/body")" "200 $ALPINE_LAYER"
	fi

	local big=$p/library/big/blobs/$BIG_LAYER want_range
	status=$(http GET "http://$UPSTREAM/v2/${REPO[big]}/blobs/$BIG_LAYER" -H 'Range: bytes=1000-1999')
	want_range="206 $(header Content-Range) $(sha <"$WORK/out/body")"
	status=$(http GET "http://$CACHE$big" -H 'Range: bytes=1000-1999')
	check_eq "GET $big with Range: bytes=1000-1999: 206, the upstream's Content-Range and bytes" \
		"$status $(header Content-Range) $(sha <"$WORK/out/body")" "$want_range"

	# Unknown things are 404, as at the upstream.
	status=$(http GET "http://$CACHE$p/library/alpine/manifests/no-such-tag" -H "Accept: $ACCEPT_ALL")
	check_eq "GET $p/library/alpine/manifests/no-such-tag: 404" "$status" 404
	status=$(http GET "http://$CACHE$p/library/alpine/blobs/sha256:$(printf '0%.0s' {1..64})")
	check_eq "GET $p/library/alpine/blobs/<unknown digest>: 404" "$status" 404

	((E2E_DIRECT)) && return 0
	# A pull-only cache: push is refused with 405.
	status=$(http POST "http://$CACHE/v2/docker.io/library/alpine/blobs/uploads/")
	check_eq "POST /v2/docker.io/library/alpine/blobs/uploads/ (push): 405" "$status" 405
	status=$(http PUT "http://$CACHE/v2/docker.io/library/alpine/manifests/pushed" \
		-H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary '{}')
	check_eq "PUT /v2/docker.io/library/alpine/manifests/pushed (push): 405" "$status" 405
	status=$(http POST "http://$CACHE/v2/library/alpine/blobs/uploads/")
	check_eq "POST /v2/library/alpine/blobs/uploads/ (push, default upstream): 405" "$status" 405
}
