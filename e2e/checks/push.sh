# shellcheck shell=bash
# Pushes through the cache: a second Entrepot in front of a private
# registry (a Distribution registry of its own, which takes pushes) with
# `push: true`, authentication (tokens) and access rules (ci may push to
# registry.test/team/*, reader may only pull), and a read-only registry as
# a second pushable upstream that refuses every push. Real clients push
# through it: crane (push, copy), skopeo copy, docker push (docker login,
# the token flow over plain HTTP), oras push and oras attach (a referrer);
# curl drives a monolithic upload, a chunked one (PATCH with
# Content-Range, the status GET, the PUT), a cross-repository mount, the
# HEAD of a blob the cache holds but the pushed-to repository lacks, and an
# upload cut off half-way. Each pushed image is checked at the registry
# itself (its digests), its pull back through the cache (write-through)
# must cost the registry no request, a 256 MiB layer must not grow the
# cache's peak memory by more than 64 MiB, and 401, 403 and the registry's
# own refusal must reach the client with nothing sent upstream for the
# first two. The registry's access log counts its requests.

PU_TOKEN_CI=ci-e2e-token-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
PU_TOKEN_READER=reader-e2e-token-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
# Peak memory growth allowed to the cache across a 256 MiB layer's push.
PU_MAX_HWM_KIB=$((64 << 10))

# pu_registry NAME DIR PORT-VAR [readonly]: a Distribution registry in DIR
# with an access log; PORT-VAR receives its address. Sets BG_PID.
pu_registry() {
	local name=$1 dir=$2 var=$3 readonly=${4:-false} port
	pick_port port
	mkdir -p "$dir/data"
	cat >"$dir/registry.yml" <<-EOF
		version: 0.1
		log:
		  level: info
		  formatter: json
		  accesslog:
		    disabled: false
		storage:
		  filesystem:
		    rootdirectory: $dir/data
		  delete:
		    enabled: true
		  maintenance:
		    uploadpurging:
		      enabled: false
		    readonly:
		      enabled: $readonly
		http:
		  addr: 127.0.0.1:$port
		  secret: entrepot-e2e-push-only
	EOF
	start_bg "$name" "$dir/registry.log" env OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true \
		registry serve "$dir/registry.yml"
	printf -v "$var" '127.0.0.1:%s' "$port"
	wait_until "$name" 60 "$BG_PID" curl -sf "http://127.0.0.1:$port/v2/"
}

# pu_mark: where the registry's next access-log lines begin.
pu_mark() { PU_FROM=$(($(wc -l <"$PU/registry/registry.log") + 1)); }

# pu_requests: the registry's requests since pu_mark, "METHOD URI STATUS"
# each, from its access log.
pu_requests() {
	tail -n "+$PU_FROM" "$PU/registry/registry.log" |
		awk '$1 == "127.0.0.1" && $2 == "-" { gsub(/"/, "", $6); print $6, $7, $9 }'
}

# pu_none: stdin, or "none" when it is empty.
pu_none() {
	local s
	s=$(cat)
	printf '%s\n' "${s:-none}"
}

# pu_digest REF: the manifest digest the registry itself has for REF.
pu_digest() { run crane digest --insecure "$1" 2>/dev/null || echo none; }

# pu_hwm: the cache's peak resident memory so far, in KiB.
pu_hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$PU_PID/status"; }

# pu_curl USER CURL-ARGS...: curl to the cache as USER (ci, reader or
# anonymous), with Basic credentials.
pu_curl() {
	local user=$1 token
	shift
	case $user in
	ci) token=$PU_TOKEN_CI ;;
	reader) token=$PU_TOKEN_READER ;;
	*) run curl -s "$@"; return ;;
	esac
	run curl -s -u "$user:$token" "$@"
}

# pu_start: the registries and the cache in front of them. Sets PU_REG,
# PU_RO, PU_CACHE, PU_PID, PU_LOG.
pu_start() {
	local port aport conf=$PU/entrepot.yml
	pu_registry push-registry "$PU/registry" PU_REG || { fail "the private registry starts"; return 1; }
	pu_registry readonly-registry "$PU/readonly" PU_RO true || { fail "the read-only registry starts"; return 1; }
	pick_port port
	pick_port aport
	PU_CACHE=127.0.0.1:$port PU_LOG=$WORK/logs/entrepot-push.log
	mkdir -p "$PU/data"
	cat >"$conf" <<-EOF
		listen: $PU_CACHE
		data: $PU/data
		prefetch: 0
		shutdown_grace: 6s
		log:
		  format: json
		admin:
		  listen: 127.0.0.1:$aport
		upstreams:
		  - name: registry.test
		    url: http://$PU_REG
		    ttl: 1h
		    push: true
		  - name: readonly.test
		    url: http://$PU_RO
		    push: true
		  - name: docker.io
		    url: http://$UPSTREAM
		auth:
		  tokens_env: E2E_PUSH_TOKENS
		  anonymous: [docker.io]
		access:
		  - users: [ci]
		    repos: [registry.test/team/*, readonly.test/*, docker.io/library/*]
		    actions: [pull, push]
		  - users: ["*"]
		    repos: ["*"]
		    actions: [pull]
	EOF
	E2E_PUSH_TOKENS="ci:$PU_TOKEN_CI,reader:$PU_TOKEN_READER" start_bg entrepot-push "$PU_LOG" \
		"$WORK/bin/entrepot" serve --config "$conf"
	PU_PID=$BG_PID
	if ! wait_until "entrepot (push)" 60 "$PU_PID" curl -sf "http://$PU_CACHE/readyz"; then
		fail "entrepot serve (upstreams[].push: true, auth tokens) answers /readyz"
		return 1
	fi
	pass "entrepot serve with two pushable upstreams (a registry, a read-only one) and token auth answers /readyz"
}

# pu_login: docker, crane and oras logged in to the cache as ci (one
# credentials file, DOCKER_CONFIG); reader's file is $PU/reader.
pu_login() {
	mkdir -p "$PU/reader"
	if run crane auth login "$PU_CACHE" -u ci -p "$PU_TOKEN_CI" >/dev/null; then
		pass "crane auth login $PU_CACHE as ci"
	else
		fail "crane auth login $PU_CACHE as ci"
	fi
	DOCKER_CONFIG=$PU/reader run crane auth login "$PU_CACHE" -u reader -p "$PU_TOKEN_READER" >/dev/null || true
}

# pu_crane: crane copy and crane push to the registry through the cache,
# then the write-through pull (as reader) that costs the registry nothing.
pu_crane() {
	local dst=$PU_CACHE/registry.test/team/alpine:3.20 tar=$PU/alpine.tar out
	if run crane copy --insecure "$(up_ref alpine)" "$dst"; then
		pass "crane copy $(up_ref alpine) $dst"
	else
		fail "crane copy … $dst"
	fi
	check_eq "the registry itself has team/alpine:3.20 with the upstream's digest" \
		"$(pu_digest "$PU_REG/team/alpine:3.20")" "${UP_DIGEST[alpine]}"

	run crane pull --insecure "$(up_ref alpine)" "$tar" || true
	if run crane push --insecure "$tar" "$PU_CACHE/registry.test/team/pushed:1" >/dev/null; then
		pass "crane push alpine.tar $PU_CACHE/registry.test/team/pushed:1"
	else
		fail "crane push alpine.tar $PU_CACHE/registry.test/team/pushed:1"
	fi
	check_eq "the registry has team/pushed:1, the same image as the cache says" \
		"$(pu_digest "$PU_REG/team/pushed:1")" "$(DOCKER_CONFIG=$PU/reader pu_digest "$PU_CACHE/registry.test/team/pushed:1")"

	pu_mark
	out=$PU/pulled
	rm -rf "$out"
	if DOCKER_CONFIG=$PU/reader run crane pull --insecure --format oci "$dst" "$out"; then
		pass "crane pull (as reader) $dst, just pushed"
		check_oci_layout "crane pull of the pushed $dst" "$out" alpine
	else
		fail "crane pull (as reader) $dst"
	fi
	check_eq "write-through: that pull sent the registry no request (manifest and blobs stored as they were pushed, the tag fresh)" \
		"$(pu_requests | head -n 3 | tr '\n' ' ' | pu_none)" none
	rm -rf "$out" "$tar"
}

# pu_skopeo: skopeo copy to the registry through the cache.
pu_skopeo() {
	local dst=docker://$PU_CACHE/registry.test/team/skopeo:1
	if skopeo_run copy --quiet --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
		--dest-creds "ci:$PU_TOKEN_CI" "docker://$(up_ref alpine)" "$dst"; then
		pass "skopeo copy docker://$(up_ref alpine) $dst"
	else
		fail "skopeo copy … $dst"
	fi
	check_eq "the registry has team/skopeo:1 with the upstream's digest" \
		"$(pu_digest "$PU_REG/team/skopeo:1")" "${UP_DIGEST[alpine]}"
}

# pu_docker: docker login (the token flow) and docker push.
pu_docker() {
	local src=$CACHE/docker.io/library/alpine:3.20 dst=$PU_CACHE/registry.test/team/docker:1 pushed
	if [[ -z ${DOCKERD_PID:-} ]] || ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
		fail "dockerd is running for the push section's docker push"
		return 0
	fi
	if run bash -c "printf %s '$PU_TOKEN_CI' | '$(command -v docker)' -H 'unix://$DOCKER_SOCK' login -u ci --password-stdin '$PU_CACHE'" >/dev/null; then
		pass "docker login $PU_CACHE as ci (plain HTTP, token flow)"
	else
		fail "docker login $PU_CACHE as ci"
	fi
	docker_cli pull --quiet "$src" >/dev/null || true
	docker_cli tag "$src" "$dst" || true
	if docker_cli push --quiet "$dst" >"$PU/docker-push.out"; then
		pass "docker push $dst"
	else
		fail "docker push $dst" "$(tail -n 3 "$LAST_ERR")"
	fi
	pushed=$(docker_cli image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$dst" |
		awk -F@ -v r="${dst%:*}" '$1 == r { print $2 }') || true
	check_eq "the registry has team/docker:1 with the digest docker pushed" \
		"$(pu_digest "$PU_REG/team/docker:1")" "${pushed:-none from docker}"
}

# pu_oras: an artifact and a referrer to it (oras attach), seen by oras
# discover through the cache and at the registry.
pu_oras() {
	local ref=$PU_CACHE/registry.test/team/artifact:1 refs
	if ! command -v oras >/dev/null; then
		fail "oras is on PATH (go install oras.land/oras/cmd/oras@$ORAS_VERSION)"
		return 0
	fi
	printf 'hello from the push section\n' >"$PU/hello.txt"
	printf 'a signature\n' >"$PU/sig.txt"
	if (cd "$PU" && run oras push --plain-http -u ci -p "$PU_TOKEN_CI" "$ref" hello.txt:text/plain >/dev/null); then
		pass "oras push $ref hello.txt"
	else
		fail "oras push $ref"
	fi
	if (cd "$PU" && run oras attach --plain-http -u ci -p "$PU_TOKEN_CI" --artifact-type application/vnd.e2e.signature \
		"$ref" sig.txt:text/plain >/dev/null); then
		pass "oras attach (a referrer with subject) to $ref"
	else
		fail "oras attach to $ref"
	fi
	refs=$(run oras discover --plain-http --format json "$PU_REG/team/artifact:1" |
		jq -r '[(.referrers // .manifests)[].artifactType] | join(" ")') || true
	check_eq "the registry itself lists the referrer of team/artifact:1 (oras discover there)" "$refs" application/vnd.e2e.signature
	refs=$(run oras discover --plain-http -u reader -p "$PU_TOKEN_READER" --format json "$ref" |
		jq -r '[(.referrers // .manifests)[].artifactType] | join(" ")') || true
	check_eq "oras discover through the cache lists it too" "$refs" application/vnd.e2e.signature
}

# pu_uploads: monolithic and chunked uploads by hand, a mount, and the HEAD
# of a blob the cache holds that the pushed-to repository lacks.
pu_uploads() {
	local base=http://$PU_CACHE/v2/registry.test/team/raw a b d loc hdr=$PU/upload.headers status range size
	a=$PU/blob-a b=$PU/blob-b
	head -c 300000 /dev/urandom >"$a"
	head -c 700001 /dev/urandom >"$b"
	d=$(sha <"$a")
	# A POST with the body and ?digest= (the OCI spec's single-request
	# upload): the cache answers as the registry does (Distribution starts
	# a session, 202, and ignores the body).
	check_eq "POST ?digest= with the body: the cache's status is the registry's" \
		"$(pu_curl ci -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$a" "$base/blobs/uploads/?digest=$d")" \
		"$(run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$a" "http://$PU_REG/v2/team/direct/blobs/uploads/?digest=$d")"
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' -X POST "$base/blobs/uploads/") || true
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	[[ $loc == /* ]] && loc=http://$PU_CACHE$loc
	[[ $loc == *\?* ]] && loc="$loc&digest=$d" || loc="$loc?digest=$d"
	status+=" $(pu_curl ci -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$a" "$loc")"
	check_eq "monolithic upload (POST, then one PUT ?digest= with the whole body): 202, 201" "$status" "202 201"
	check_eq "the registry has the blob in team/raw" \
		"$(run curl -s -o /dev/null -w '%{http_code}' -I "http://$PU_REG/v2/team/raw/blobs/$d")" 200

	d=$(sha <"$b")
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' -X POST "$base/blobs/uploads/") || true
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	check_eq "chunked upload: POST answers 202 with a Location on the cache" \
		"$status $([[ $loc == /v2/registry.test/team/raw/blobs/uploads/* || $loc == http://$PU_CACHE/v2/registry.test/team/raw/blobs/uploads/* ]] && echo on-cache)" "202 on-cache"
	[[ $loc == /* ]] && loc=http://$PU_CACHE$loc
	head -c 400000 "$b" >"$PU/chunk1"
	tail -c +400001 "$b" >"$PU/chunk2"
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
		-H 'Content-Range: 0-399999' --data-binary "@$PU/chunk1" "$loc") || true
	range=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "range:" { print $2 }')
	check_eq "PATCH of the first 400000 bytes (Content-Range 0-399999): 202, Range 0-399999" "$status $range" "202 0-399999"
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	[[ $loc == /* ]] && loc=http://$PU_CACHE$loc
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' "$loc") || true
	check_eq "GET of the upload (its status): 204, Range 0-399999" \
		"$status $(tr -d '\r' <"$hdr" | awk 'tolower($1) == "range:" { print $2 }')" "204 0-399999"
	size=$(wc -c <"$b")
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: 400000-$((size - 1))" --data-binary "@$PU/chunk2" "$loc") || true
	check_eq "PATCH of the rest: 202" "$status" 202
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	[[ $loc == /* ]] && loc=http://$PU_CACHE$loc
	[[ $loc == *\?* ]] && loc="$loc&digest=$d" || loc="$loc?digest=$d"
	status=$(pu_curl ci -o /dev/null -D "$hdr" -w '%{http_code}' -X PUT "$loc") || true
	check_eq "PUT ?digest= closes it: 201, Docker-Content-Digest the blob's" \
		"$status $(tr -d '\r' <"$hdr" | awk 'tolower($1) == "docker-content-digest:" { print $2 }')" "201 $d"
	check_eq "the registry serves the chunked blob, whole" \
		"$(run curl -sf "http://$PU_REG/v2/team/raw/blobs/$d" | sha)" "$d"

	status=$(pu_curl ci -o /dev/null -w '%{http_code}' -X POST \
		"http://$PU_CACHE/v2/registry.test/team/mounted/blobs/uploads/?mount=$d&from=team/raw") || true
	check_eq "cross-repository mount (?mount=&from=team/raw): 201" "$status" 201
	check_eq "the registry has the blob in team/mounted" \
		"$(run curl -s -o /dev/null -w '%{http_code}' -I "http://$PU_REG/v2/team/mounted/blobs/$d")" 200

	# The cache holds alpine's blobs (pushed to team/alpine); the
	# registry's team/empty has none of them. Whatever the cache answers a
	# HEAD of one there, a manifest PUT that needs them must leave them in
	# team/empty at the registry, so the registry never holds a manifest
	# whose blobs it lacks.
	local manifest=$PU/alpine.manifest mt blob missing=""
	check_eq "the registry's team/empty lacks alpine's layer" \
		"$(run curl -s -o /dev/null -w '%{http_code}' -I "http://$PU_REG/v2/team/empty/blobs/$ALPINE_LAYER")" 404
	status=$(pu_curl ci -o /dev/null -w '%{http_code}' -I "http://$PU_CACHE/v2/registry.test/team/empty/blobs/$ALPINE_LAYER") || true
	log "push: HEAD of alpine's layer in registry.test/team/empty through the cache: $status"
	run curl -sf -o "$manifest" -D "$hdr" -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
		"http://$PU_REG/v2/team/alpine/manifests/3.20" || true
	mt=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "content-type:" { print $2 }')
	check_eq "PUT of alpine's manifest to registry.test/team/empty:1, no blob uploaded first: 201" \
		"$(pu_curl ci -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $mt" --data-binary "@$manifest" "http://$PU_CACHE/v2/registry.test/team/empty/manifests/1")" 201
	for blob in $(jq -r '.config.digest, .layers[].digest' "$manifest"); do
		[[ $(run curl -s -o /dev/null -w '%{http_code}' -I "http://$PU_REG/v2/team/empty/blobs/$blob") == 200 ]] || missing+="$blob "
	done
	check_eq "the registry's team/empty now has every blob that manifest names (none missing upstream)" "${missing:-none}" none
	check_eq "and the manifest, with the upstream's digest" "$(pu_digest "$PU_REG/team/empty:1")" "${UP_DIGEST[alpine]}"
	rm -f "$a" "$b" "$PU/chunk1" "$PU/chunk2"
}

# pu_refused: 401 and 403 from the cache, with nothing sent upstream; the
# read-only registry's refusal passed on as it gave it.
pu_refused() {
	local base=http://$PU_CACHE/v2/registry.test/team/raw direct through
	pu_mark
	check_eq "POST of an upload without credentials: 401" \
		"$(pu_curl anonymous -o /dev/null -w '%{http_code}' -X POST "$base/blobs/uploads/")" 401
	check_eq "POST of an upload as reader (pull only): 403" \
		"$(pu_curl reader -o /dev/null -w '%{http_code}' -X POST "$base/blobs/uploads/")" 403
	check_eq "PUT of a manifest as reader: 403" \
		"$(pu_curl reader -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
			--data '{}' "$base/manifests/x")" 403
	check_eq "POST as ci to registry.test/other (not granted): 403" \
		"$(pu_curl ci -o /dev/null -w '%{http_code}' -X POST "http://$PU_CACHE/v2/registry.test/other/blobs/uploads/")" 403
	check_eq "a push as ci to docker.io, granted push but without push: true: 405" \
		"$(pu_curl ci -o /dev/null -w '%{http_code}' -X POST "http://$PU_CACHE/v2/docker.io/library/alpine/blobs/uploads/")" 405
	check_eq "none of those reached the registry" "$(pu_requests | head -n 3 | tr '\n' ' ' | pu_none)" none

	direct=$(run curl -s -w ' %{http_code}' -X POST "http://$PU_RO/v2/team/x/blobs/uploads/") || true
	through=$(pu_curl ci -w ' %{http_code}' -X POST "http://$PU_CACHE/v2/readonly.test/team/x/blobs/uploads/") || true
	check_eq "a push the read-only registry refuses: its status and body reach the client through the cache" \
		"$through" "$direct"
	if run crane copy --insecure "$(up_ref alpine)" "$PU_CACHE/readonly.test/team/x:1"; then
		fail "crane copy to the read-only registry through the cache fails"
	else
		pass "crane copy to the read-only registry through the cache fails ($(grep -o '405[^;]*' "$LAST_ERR" | head -n 1))"
	fi
	check_eq "and the cache does not serve team/x:1 (nothing committed)" \
		"$(DOCKER_CONFIG=$PU/reader pu_digest "$PU_CACHE/readonly.test/team/x:1")" none
}

# pu_big: the 256 MiB layer copied through the cache; its peak memory.
pu_big() {
	local dst=$PU_CACHE/registry.test/team/big:1 before after t0
	before=$(pu_hwm)
	t0=$(now)
	if run crane copy --insecure "$(up_ref big)" "$dst"; then
		pass "crane copy of the ${E2E_BIG_MIB} MiB image to $dst ($(elapsed "$t0") s)"
	else
		fail "crane copy of the ${E2E_BIG_MIB} MiB image to $dst"
	fi
	after=$(pu_hwm)
	log "push: the cache's VmHWM ${before} KiB before, ${after} KiB after the ${E2E_BIG_MIB} MiB push"
	check_eq "the cache's peak memory grew by less than 64 MiB across it (VmHWM +$((after - before)) KiB): the layer was streamed" \
		"$((after - before < PU_MAX_HWM_KIB))" 1
	check_eq "the registry serves the big layer, whole" \
		"$(run curl -sf "http://$PU_REG/v2/team/big/blobs/$BIG_LAYER" | sha)" "$BIG_LAYER"
	check_eq "the registry has team/big:1 with the upstream's digest" \
		"$(pu_digest "$PU_REG/team/big:1")" "${UP_DIGEST[big]}"
}

# pu_interrupted: an upload cut off half-way (the client killed) commits
# nothing and leaves no temporary file in the cache's data directory.
pu_interrupted() {
	local base=http://$PU_CACHE/v2/registry.test/team/cut hdr=$PU/cut.headers loc d left
	head -c $((64 << 20)) /dev/urandom >"$PU/cut"
	d=$(sha <"$PU/cut")
	pu_curl ci -o /dev/null -D "$hdr" -X POST "$base/blobs/uploads/" || true
	loc=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "location:" { print $2 }')
	[[ $loc == /* ]] && loc=http://$PU_CACHE$loc
	# 2 MiB/s for 3 s, then SIGKILL: about 6 of the 64 MiB are sent.
	timeout -s KILL 3 curl -s -u "ci:$PU_TOKEN_CI" -o /dev/null --limit-rate 2M -X PATCH \
		-H 'Content-Type: application/octet-stream' --data-binary "@$PU/cut" "$loc" || true
	pu_curl ci -o /dev/null -X PUT "${loc}$([[ $loc == *\?* ]] && echo '&' || echo '?')digest=$d" || true
	check_eq "after the cut-off upload, the registry does not have the blob" \
		"$(run curl -s -o /dev/null -w '%{http_code}' -I "http://$PU_REG/v2/team/cut/blobs/$d")" 404
	check_eq "nor does the cache serve it" \
		"$(pu_curl reader -o /dev/null -w '%{http_code}' -I "$base/blobs/$d")" 404
	# The spool of a push (data/tmp/fill-*) is dropped when its request
	# ends.
	wait_until "temporary files" 20 "$PU_PID" bash -c "[[ -z \$(find '$PU/data/tmp' -type f -print -quit) ]]" || true
	left=$(find "$PU/data/tmp" -type f | head -n 3 | tr '\n' ' ')
	check_eq "no temporary file of it is left in the cache's data directory" "${left:-none}" none
	rm -f "$PU/cut"
}

check_push() {
	((E2E_DIRECT)) && return 0
	log "== push: upstreams[].push through the cache to a private registry =="
	local t0
	t0=$(now)
	PU=$WORK/push
	mkdir -p "$PU"
	if pu_start; then
		pu_login
		pu_crane
		pu_skopeo
		pu_docker
		pu_oras
		pu_uploads
		pu_refused
		pu_big
		pu_interrupted
		check_eq "neither token appears in the cache's log" \
			"$(grep -cF -e "$PU_TOKEN_CI" -e "$PU_TOKEN_READER" "$PU_LOG")" 0
	fi
	if [[ -n ${PU_PID:-} ]]; then stop_pid entrepot-push "$PU_PID"; fi
	local p
	for p in "${PROCS[@]}"; do
		case $p in push-registry=* | readonly-registry=*) stop_pid "${p%%=*}" "${p#*=}" ;; esac
	done
	rm -rf "$PU/registry/data" "$PU/readonly/data" "$PU/data"
	log "push section: $(elapsed "$t0") s"
}
