# shellcheck shell=bash
# Redirects to the object store: a second Entrepot with storage.s3 on a
# versitygw (an S3 server, posix backend, on loopback) and `redirect:
# {enabled: true, clients: [127.0.0.0/8]}`. A blob's first GET is cold: the
# fill streams it (200) and uploads it to the bucket. Every later GET of a
# stored blob is answered 307 with a presigned URL of versitygw, and each
# real client (crane, skopeo, containerd, dockerd) follows it: its warm pull
# has the upstream's digest, Entrepot's access log shows a 307 with a few
# hundred bytes of body for each of its blob GETs, versitygw's access log a
# GET of each blob's object on the presigned URL with Entrepot's URL as its
# Referer, and the byte counters (/proc/PID/io) that versitygw sent the
# bytes. curl shows one 307 itself (Location, X-Amz-Signature,
# X-Amz-Expires), a Range kept across it, and that HEAD is not redirected.
# containerd and dockerd skip the blobs they hold: alpine is removed from
# them first (the containerd and docker sections pulled it).

RD_BUCKET=entrepot-e2e
RD_REGION=us-east-1
# The SHA-256 of an empty body, which versitygw wants in x-amz-content-sha256.
RD_EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
# A 307's body is Go's "<a href=…>Temporary Redirect</a>." around the URL:
# anything larger would be the blob's bytes.
RD_MAX_307_BYTES=2048

# rd_s3 CURL-ARGS...: curl as versitygw's root user, SigV4 signed. The keys
# are in a curl config file, not on the command line.
rd_s3() {
	run curl -s -K "$RD/s3-curl.conf" --aws-sigv4 "aws:amz:$RD_REGION:s3" \
		-H "x-amz-content-sha256: $RD_EMPTY_SHA" "$@"
}

# rd_key DIGEST: the object of a blob in the bucket (no prefix).
rd_key() {
	local hex=${1#sha256:}
	printf 'blobs/sha256/%s/%s\n' "${hex:0:2}" "$hex"
}

# rd_stored DIGEST...: true when the bucket holds every blob named.
rd_stored() {
	local d
	for d in "$@"; do
		[[ $(rd_s3 -o /dev/null -I -w '%{http_code}' "http://$RD_S3/$RD_BUCKET/$(rd_key "$d")") == 200 ]] || return 1
	done
}

# rd_mark: where the next client's lines begin in Entrepot's log and in
# versitygw's access log, and what both servers have written so far.
rd_mark() {
	RD_FROM=$(($(wc -l <"$RD_LOG") + 1))
	RD_S3_FROM=$(($(wc -l <"$RD_S3_LOG") + 1))
	RD_IO_E=$(rd_io "$RD_PID") RD_IO_S=$(rd_io "$RD_S3_PID")
}

# rd_blob_gets: the blob GETs Entrepot answered since rd_mark, from its
# access log (JSON), as "DIGEST STATUS BYTES", sorted.
rd_blob_gets() {
	tail -n "+$RD_FROM" "$RD_LOG" | jq -rR 'fromjson? | select(.msg == "request" and .method == "GET")
		| (.path | capture("/blobs/(?<d>sha256:[0-9a-f]{64})$").d) as $d
		| "\($d) \(.status) \(.bytes)"' | sort || true
}

# rd_s3_gets: the GETs of blob objects versitygw answered since rd_mark, as
# "DIGEST STATUS HOW REFERER", sorted: HOW is presigned (X-Amz-Signature in
# the query) or signed (an Authorization header: Entrepot's own client);
# REFERER is "entrepot" when it is the blob's URL at the redirect Entrepot,
# query aside (Go's HTTP client sends it when it follows a redirect). The
# fields of its access log: 8 operation, 9 key, 10 request URI, 11 status,
# 17 referer (its byte counts stay 0 for a GetObject).
rd_s3_gets() {
	tail -n "+$RD_S3_FROM" "$RD_S3_LOG" |
		awk -v b="$RD_BUCKET" -v c="http://$RD_CACHE/v2/" '$2 == b && $8 == "s3_GetObject" && $9 ~ /^blobs\/sha256\// {
			n = split($9, p, "/"); d = "sha256:" p[n]
			how = ($10 ~ /[?&]X-Amz-Signature=/) ? "presigned" : "signed"
			r = $17; sub(/\?.*/, "", r)
			ref = (index(r, c) == 1 && substr(r, length(r) - length(d) + 1) == d) ? "entrepot" : $17
			print d, $11, how, ref }' | sort || true
}

# rd_digests DIGEST...: the digests sorted, unique, on one line.
rd_digests() { printf '%s\n' "$@" | sort -u | tr '\n' ' '; }

# rd_blobs NAME: the config and layer digests of image NAME (its tree but
# the manifest).
rd_blobs() { grep -vx "${UP_DIGEST[$1]}" "$WORK/expect/$1" || true; }

# rd_size DIGEST: the blob's size, asked of the upstream (in RD_SIZE_REPO,
# default library/alpine).
rd_size() {
	run curl -sfI "http://$UPSTREAM/v2/${RD_SIZE_REPO:-library/alpine}/blobs/$1" |
		tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }' || true
}

# rd_cold DESC DIGEST...: since rd_mark, Entrepot answered the GET of each
# blob 200 with all of its bytes (the fill streamed it), none 307; then the
# bucket holds each of them (within 60 s: the upload of the last part).
rd_cold() {
	local desc=$1
	shift
	local want d lines sizes=""
	want=$(rd_digests "$@")
	wait_until "$desc: access log" 10 "$RD_PID" rd_seen_all 200 "$@" || true
	lines=$(rd_blob_gets)
	for d in "$@"; do sizes+="$d 200 $(rd_size "$d")"$'\n'; done
	check_eq "$desc (cold): Entrepot answered each of its ${#} blob GETs 200 with the whole blob, none 307" \
		"$(sort -u <<<"$lines" | tr '\n' ' ')" "$(sort -u <<<"${sizes%$'\n'}" | tr '\n' ' ')"
	if wait_until "$desc: the bucket" 60 "$RD_PID" rd_stored "$@"; then
		pass "$desc (cold): then the bucket holds each of those blobs (HEAD of its object: 200)"
	else
		fail "$desc (cold): then the bucket holds each of those blobs" "wanted: $want"
	fi
}

# rd_seen_all STATUS DIGEST...: Entrepot's log has an answer STATUS to the
# GET of each blob since rd_mark (its lines follow the responses).
rd_seen_all() {
	local status=$1 d lines
	shift
	lines=$(rd_blob_gets)
	for d in "$@"; do
		grep -qx "$d $status [0-9]*" <<<"$lines" || return 1
	done
}

# rd_s3_seen_all DIGEST...: versitygw's access log has a GET of each blob's
# object since rd_mark.
rd_s3_seen_all() {
	local d lines
	lines=$(rd_s3_gets)
	for d in "$@"; do
		grep -q "^$d 200 presigned " <<<"$lines" || return 1
	done
}

# rd_warm DESC DIGEST...: since rd_mark, Entrepot answered each GET of these
# blobs 307 with no more than a redirect's body, and answered no blob GET
# otherwise; versitygw answered a GET of each blob's object on its presigned
# URL, Referer the blob's URL at Entrepot, and no other GET of it; and
# versitygw wrote at least the blobs' bytes (for 1 MiB or more of blobs:
# Entrepot less than 1 MiB).
rd_warm() {
	local desc=$1
	shift
	local want lines others max total sizes=0 d n s3 s3_want="" e s
	want=$(rd_digests "$@")
	wait_until "$desc: access log" 10 "$RD_PID" rd_seen_all 307 "$@" || true
	wait_until "$desc: versitygw's access log" 10 "$RD_S3_PID" rd_s3_seen_all "$@" || true
	lines=$(rd_blob_gets)
	check_eq "$desc (warm): Entrepot answered the GET of each of its ${#} blobs 307" \
		"$(awk '$2 == 307 { print $1 }' <<<"$lines" | sort -u | tr '\n' ' ')" "$want"
	others=$(awk '$2 != 307' <<<"$lines" | head -n 3 | tr '\n' ' ')
	check_eq "$desc (warm): no blob GET answered otherwise" "${others:-none}" none
	read -r max total < <(awk '$2 == 307 { s += $3; if ($3 > m) m = $3 } END { print m + 0, s + 0 }' <<<"$lines")
	for d in "$@"; do
		n=$(rd_size "$d")
		sizes=$((sizes + ${n:-0}))
	done
	check_eq "$desc (warm): each 307's body is at most $RD_MAX_307_BYTES bytes ($max at most, $total in all, for $sizes bytes of blobs): Entrepot did not send the blobs" \
		"$((max > 0 && max <= RD_MAX_307_BYTES))" 1
	s3=$(rd_s3_gets)
	for d in "$@"; do s3_want+="$d 200 presigned entrepot "; done
	check_eq "$desc (warm): versitygw's access log has, for each blob, a GET of its object on the presigned URL, 200, Referer the blob's URL at Entrepot (and no other GET of it)" \
		"$(sort -u <<<"$s3" | tr '\n' ' ')" "$s3_want"
	# The byte counters (write and sendfile, sockets included): the
	# blobs' bytes left versitygw.
	e=$(($(rd_io "$RD_PID") - RD_IO_E)) s=$(($(rd_io "$RD_S3_PID") - RD_IO_S))
	check_eq "$desc (warm): versitygw wrote at least the blobs' $sizes bytes (/proc/PID/io wchar: +$s; Entrepot +$e)" \
		"$((s >= sizes))" 1
	if ((sizes >= 1 << 20)); then
		check_eq "$desc (warm): Entrepot wrote less than 1 MiB meanwhile (+$e for $sizes bytes of blobs)" \
			"$((e < 1 << 20))" 1
	fi
}

# rd_io PID: the bytes process PID has written (write, sendfile; sockets
# included), from /proc/PID/io.
rd_io() { awk '$1 == "wchar:" { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }

# rd_start: versitygw with a bucket, and the second Entrepot on it. Sets
# RD_S3, RD_S3_PID, RD_S3_LOG, RD_CACHE, RD_PID, RD_LOG.
rd_start() {
	local s3port port aport conf=$RD/entrepot.yml key secret status
	mkdir -p "$RD/s3" "$RD/data" "$RD/certs.d"
	pick_port s3port
	pick_port port
	pick_port aport
	RD_S3=127.0.0.1:$s3port RD_CACHE=127.0.0.1:$port
	RD_S3_LOG=$RD/s3-access.log RD_LOG=$WORK/logs/entrepot-redirect.log
	key=e2e$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
	secret=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
	printf 'user = "%s:%s"\n' "$key" "$secret" >"$RD/s3-curl.conf"
	chmod 600 "$RD/s3-curl.conf"
	: >"$RD_S3_LOG"
	# The root user's keys reach versitygw through its environment only.
	ROOT_ACCESS_KEY_ID=$key ROOT_SECRET_ACCESS_KEY=$secret start_bg versitygw "$WORK/logs/versitygw.log" \
		versitygw --port "$RD_S3" --region "$RD_REGION" --access-log "$RD_S3_LOG" posix "$RD/s3"
	RD_S3_PID=$BG_PID
	if ! wait_until "versitygw" 30 "$RD_S3_PID" rd_s3 -f -o /dev/null "http://$RD_S3/"; then
		fail "versitygw (posix backend) answers ListBuckets on $RD_S3"
		return 1
	fi
	pass "versitygw $(go version -m "$(command -v versitygw)" 2>/dev/null | awk '$1 == "mod" { print $3 }') (posix backend) answers ListBuckets on $RD_S3"
	# Entrepot wants its bucket to exist (internal/store/s3: New), as a
	# deployment makes it; its own tests make it the same way (s3test).
	status=$(rd_s3 -o /dev/null -w '%{http_code}' -X PUT "http://$RD_S3/$RD_BUCKET") || true
	check_eq "PUT /$RD_BUCKET (CreateBucket, SigV4 by curl): 200" "$status" 200

	cat >"$conf" <<-EOF
		listen: $RD_CACHE
		data: $RD/data
		# No prefetch: a blob's first GET is then always the one that fills
		# it (200), never one that finds it stored by a prefetch (307).
		prefetch: 0
		# SIGTERM: /readyz fails for a sixth of this (at most 5 s) before
		# the listener closes; 1 s is enough here.
		shutdown_grace: 6s
		log:
		  format: json
		admin:
		  listen: 127.0.0.1:$aport
		upstreams:
		  - name: docker.io
		    url: http://$UPSTREAM
		storage:
		  s3:
		    endpoint: http://$RD_S3
		    region: $RD_REGION
		    bucket: $RD_BUCKET
		    path_style: true
		    access_key_env: E2E_S3_KEY
		    secret_key_env: E2E_S3_SECRET
		redirect:
		  enabled: true
		  clients: [127.0.0.0/8]
	EOF
	E2E_S3_KEY=$key E2E_S3_SECRET=$secret start_bg entrepot-redirect "$RD_LOG" \
		"$WORK/bin/entrepot" serve --config "$conf"
	RD_PID=$BG_PID
	if ! wait_until "entrepot (redirect)" 60 "$RD_PID" curl -sf "http://$RD_CACHE/readyz"; then
		fail "entrepot serve --config (storage.s3 on versitygw, redirect.enabled) answers /readyz"
		return 1
	fi
	pass "entrepot serve --config (storage.s3 on versitygw, redirect.enabled, clients 127.0.0.0/8) answers /readyz"
}

# rd_crane_pull DESC NAME OUT: crane pull --format oci of image NAME through
# the second Entrepot into OUT, checked as an OCI layout of the upstream's.
rd_crane_pull() {
	local desc=$1 n=$2 out=$3 ref t0
	ref=$RD_CACHE/docker.io/${REPO[$n]}:${TAG[$n]}
	rm -rf "$out"
	t0=$(now)
	if run crane pull --insecure --format oci "$ref" "$out"; then
		pass "$desc: crane pull --format oci $ref ($(elapsed "$t0") s)"
		check_oci_layout "$desc: crane pull $ref" "$out" "$n"
	else
		fail "$desc: crane pull --format oci $ref"
	fi
	rm -rf "$out"
}

# rd_crane: alpine cold then warm, one 307 by curl, crane blob.
rd_crane() {
	local blobs=() layer=$ALPINE_LAYER url hdr status loc
	mapfile -t blobs < <(rd_blobs alpine)
	rd_mark
	rd_crane_pull "crane, first pull" alpine "$WORK/out/rd-crane"
	rd_cold "crane pull alpine:3.20" "${blobs[@]}"

	rd_mark
	rd_crane_pull "crane, warm" alpine "$WORK/out/rd-crane"
	rd_warm "crane pull alpine:3.20" "${blobs[@]}"

	# One redirect by hand. A HEAD is answered by Entrepot itself (no
	# bytes to spare), so this is a GET that does not follow.
	url=http://$RD_CACHE/v2/docker.io/library/alpine/blobs/$layer
	hdr=$WORK/out/rd-307.headers
	status=$(run curl -s -o /dev/null -D "$hdr" -w '%{http_code}' "$url") || true
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	log "GET $url: $status, Location: ${loc:0:160}…"
	check_eq "curl GET (not following) of a stored blob: 307, Docker-Content-Digest the blob's" \
		"$status $(tr -d '\r' <"$hdr" | awk 'tolower($1) == "docker-content-digest:" { print $2 }')" "307 $layer"
	check_eq "its Location is the blob's object at versitygw, presigned (X-Amz-Signature, X-Amz-Expires=600)" \
		"$([[ $loc == "http://$RD_S3/$RD_BUCKET/$(rd_key "$layer")?"* ]] && echo at-versitygw) $(grep -oE '[?&]X-Amz-Expires=[0-9]+' <<<"$loc" | tr -d '?&') $(grep -cE '[?&]X-Amz-Signature=[0-9a-f]{64}' <<<"$loc")" \
		"at-versitygw X-Amz-Expires=600 1"
	check_eq "curl GET of that Location (no credentials): the blob's bytes" \
		"$(run curl -sf "$loc" | sha)" "$layer"
	check_eq "curl -L -r 0-99 of the blob: Entrepot's 307 keeps the Range, versitygw answers 206 with 100 bytes" \
		"$(run curl -sL -r 0-99 -o /dev/null -w '%{http_code} %{size_download} %{num_redirects}' "$url")" "206 100 1"
	status=$(run curl -s -I -o "$hdr.head" -w '%{http_code}' "$url") || true
	check_eq "curl -I (HEAD) of the stored blob: 200 from Entrepot itself, its Content-Length, no Location" \
		"$status $(tr -d '\r' <"$hdr.head" | awk 'tolower($1) == "content-length:" { print $2 }') $(grep -ci '^location:' "$hdr.head")" \
		"200 $(rd_size "$layer") 0"

	rd_mark
	check_eq "crane blob $RD_CACHE/docker.io/library/alpine@<layer>: the layer's sha256" \
		"$(run crane blob --insecure "$RD_CACHE/docker.io/library/alpine@$layer" | sha)" "$layer"
	rd_warm "crane blob (alpine layer)" "$layer"
}

# rd_skopeo: skopeo copy, warm, to an OCI layout and to a dir:.
rd_skopeo() {
	local blobs=() ref out bad
	mapfile -t blobs < <(rd_blobs alpine)
	ref=docker://$RD_CACHE/docker.io/library/alpine:3.20
	out=$WORK/out/rd-skopeo-oci
	rd_mark
	if skopeo_run copy --quiet --preserve-digests --src-tls-verify=false "$ref" "oci:$out:3.20"; then
		pass "skopeo copy $ref oci:…"
		check_oci_layout "skopeo copy $ref" "$out" alpine
	else
		fail "skopeo copy $ref oci:…"
	fi
	rd_warm "skopeo copy oci:" "${blobs[@]}"
	rm -rf "$out"

	out=$WORK/out/rd-skopeo-dir
	rd_mark
	if skopeo_run copy --quiet --src-tls-verify=false "$ref" "dir:$out"; then
		pass "skopeo copy $ref dir:…"
		check_eq "skopeo copy $ref dir:: manifest.json hashes to the upstream digest" \
			"$(sha <"$out/manifest.json")" "${UP_DIGEST[alpine]}"
		bad=$(dir_blobs "$out" | while read -r d; do
			if [[ $(sha <"$out/${d#sha256:}") != "$d" ]]; then echo "$d"; fi
		done)
		check_eq "skopeo copy $ref dir:: every config and layer blob written, each matching its digest" \
			"$(dir_blobs "$out" | tr '\n' ' ')${bad:+ bad: $bad}" "$(rd_digests "${blobs[@]}")"
	else
		fail "skopeo copy $ref dir:…"
	fi
	rd_warm "skopeo copy dir:" "${blobs[@]}"
	rm -rf "$out"
}

# rd_ctr: ctr images pull of alpine, warm, through a hosts dir whose only
# host for docker.io is the second Entrepot. containerd's content store is
# shared by its namespaces, and a blob it holds in any of them is never
# fetched again: alpine is removed from every namespace first (the
# containerd section pulled it into e2e), so that this pull must fetch.
rd_ctr() {
	local blobs=() ref=docker.io/library/alpine:3.20 ns name d held=() t0
	mapfile -t blobs < <(rd_blobs alpine)
	mkdir -p "$RD/certs.d/docker.io"
	cat >"$RD/certs.d/docker.io/hosts.toml" <<-EOF
		server = "http://127.0.0.1:1"

		[host."http://$RD_CACHE"]
		  capabilities = ["pull", "resolve"]
	EOF
	for ns in $(run ctr --address "$CTR_SOCK" namespaces ls -q); do
		for name in $(run ctr --address "$CTR_SOCK" --namespace "$ns" images ls |
			awk -v d="${UP_DIGEST[alpine]}" '$3 == d { print $1 }'); do
			log "ctr: removing $name (namespace $ns), so that its blobs are fetched again"
			run ctr --address "$CTR_SOCK" --namespace "$ns" images rm --sync "$name" >/dev/null || true
		done
	done
	for d in "${blobs[@]}"; do
		if [[ -e $WORK/containerd/root/io.containerd.content.v1.content/blobs/sha256/${d#sha256:} ]]; then
			held+=("$d")
		fi
	done
	check_eq "containerd's content store holds none of alpine's blobs before the pull" "${held[*]:-none}" none

	rd_mark
	t0=$(now)
	if run ctr --address "$CTR_SOCK" --namespace redirect images pull --hosts-dir "$RD/certs.d" \
		--snapshotter "${CTR_SNAPSHOTTER:-native}" "$ref" >/dev/null; then
		pass "ctr images pull --hosts-dir <the redirect Entrepot> $ref ($(elapsed "$t0") s)"
	else
		fail "ctr images pull --hosts-dir <the redirect Entrepot> $ref"
	fi
	check_eq "ctr images ls: $ref has the upstream digest" \
		"$(run ctr --address "$CTR_SOCK" --namespace redirect images ls | awk -v r="$ref" '$1 == r { print $3 }')" \
		"${UP_DIGEST[alpine]}"
	rd_warm "ctr images pull" "${blobs[@]}"
	# containerd asked with ?ns=docker.io: that is where its requests went.
	check_eq "containerd asked the redirect Entrepot (…?ns=docker.io) for the manifest" \
		"$(tail -n "+$RD_FROM" "$RD_LOG" | jq -rR 'fromjson? | select(.msg == "request") | .path' |
			grep -c '^/v2/library/alpine/manifests/' | awk '{ print ($1 > 0) }')" 1
}

# rd_docker: docker pull of the second Entrepot's own name for alpine
# (dockerd treats 127.0.0.0/8 as insecure registries: plain HTTP). dockerd
# skips a layer it holds and an image it has: alpine is removed first (the
# docker section pulled it).
rd_docker() {
	local blobs=() ref=$RD_CACHE/docker.io/library/alpine:3.20 config id t0 rd
	mapfile -t blobs < <(rd_blobs alpine)
	config=$(run crane manifest --insecure "$(up_ref alpine)" | jq -r .config.digest) || true
	for id in $(docker_cli image ls --no-trunc -q | sort -u); do
		if [[ $id == "$config" ]]; then
			log "docker: removing image $id (alpine), so that its blobs are fetched again"
			docker_cli image rm -f "$id" >/dev/null || true
		fi
	done
	rd_mark
	t0=$(now)
	if docker_cli pull --quiet "$ref" >/dev/null; then
		pass "docker pull $ref ($(elapsed "$t0") s)"
	else
		fail "docker pull $ref"
	fi
	rd=$(docker_cli image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" |
		awk -F@ -v r="${ref%:*}" '$1 == r { print $2 }') || true
	check_eq "docker image inspect $ref: its RepoDigest has the upstream digest" "$rd" "${UP_DIGEST[alpine]}"
	rd_warm "docker pull" "${blobs[@]}"
}

# rd_big: the 256 MiB layer, cold then warm (crane pull and crane blob).
rd_big() {
	local blobs=()
	mapfile -t blobs < <(rd_blobs big)
	RD_SIZE_REPO=library/big
	rd_mark
	rd_crane_pull "big, first pull" big "$WORK/out/rd-big"
	rd_cold "crane pull big:1" "${blobs[@]}"

	rd_mark
	rd_crane_pull "big, warm" big "$WORK/out/rd-big"
	rd_warm "crane pull big:1" "${blobs[@]}"

	rd_mark
	check_eq "crane blob $RD_CACHE/docker.io/library/big@<layer>: the layer's sha256" \
		"$(run crane blob --insecure "$RD_CACHE/docker.io/library/big@$BIG_LAYER" | sha)" "$BIG_LAYER"
	rd_warm "crane blob (big layer)" "$BIG_LAYER"
	RD_SIZE_REPO=
}

check_redirect() {
	((E2E_DIRECT)) && return 0
	log "== redirect: storage.s3 on versitygw, blob GETs answered 307 to presigned URLs =="
	local t0
	t0=$(now)
	RD=$WORK/redirect
	if ! command -v versitygw >/dev/null; then
		fail "versitygw is on PATH (go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION)"
		return 0
	fi
	if rd_start; then
		RD_SECRET=$(sed -nE 's/^user = "[^:]*:(.*)"$/\1/p' "$RD/s3-curl.conf")
		rd_crane
		rd_skopeo
		if [[ -n ${CTR_SOCK:-} ]]; then rd_ctr; fi
		if [[ -n ${DOCKERD_PID:-} ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
			rd_docker
		else
			fail "dockerd is running for the redirect section's docker pull"
		fi
		rd_big
		check_eq "the S3 secret key appears in neither Entrepot's log nor versitygw's" \
			"$(cat "$RD_LOG" "$WORK/logs/versitygw.log" "$RD_S3_LOG" | grep -cF "$RD_SECRET")" 0
	fi
	if [[ -n ${RD_PID:-} ]]; then stop_pid entrepot-redirect "$RD_PID"; fi
	if [[ -n ${RD_S3_PID:-} ]]; then stop_pid versitygw "$RD_S3_PID"; fi
	rm -rf "$RD/s3" "$RD/data"
	log "redirect section: $(elapsed "$t0") s"
}
