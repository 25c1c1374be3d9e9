# shellcheck shell=bash
# The auth section's clients (check_auth in auth.sh runs them, against the
# second Entrepot it starts): crane, skopeo, regctl, ctr, dockerd and
# podman each log in (or pass credentials) over TLS and pull, the digests
# checked against the upstream's, and each is refused without credentials
# or after logging out, with a wrong password, and for a repository no
# rule grants alice.

# auth_refused DESC CMD...: CMD (a function that runs its client under
# run) must fail, and for being refused: the last request it sent to
# Entrepot, other than the GET /v2/ ping (a 401 until the client has a
# token, for every client), was answered 401 or 403, per Entrepot's access
# log. (Clients word refusals each their own way, and some report a later
# error: dockerd falls back to http:// on loopback.)
auth_refused() {
	local desc=$1 from last i
	shift
	from=$(($(wc -l <"$AUTH_LOG") + 1))
	if "$@" >/dev/null; then
		fail "$desc: refused" "the command succeeded"
		return 0
	fi
	# The access log's line follows the answer by a moment.
	for i in 1 2 3 4 5; do
		last=$(tail -n "+$from" "$AUTH_LOG" | grep -F 'msg=request' | grep -vF ' path=/v2/ ' | tail -n 1 |
			sed -nE 's/.* method=([A-Z]+) path=([^ ]+) .* status=([0-9]+) .*/\3 \1 \2/p') || true
		[[ -n $last ]] && break
		sleep 0.2
	done
	if [[ $last == 401\ * || $last == 403\ * ]]; then
		pass "$desc: refused (Entrepot's last answer: $last)"
	else
		fail "$desc: refused by Entrepot (its last answer 401 or 403)" "Entrepot's last answer: ${last:-none}" "the client said:"
	fi
}

# auth_crane: crane auth login writes the credentials (it asks nothing of
# the registry); crane pull then runs the token flow with them.
auth_crane() {
	log "-- crane $CRANE_VERSION --"
	local cfg=$AUTH_D/crane out=$AUTH_D/out/crane ref=$AUTH_CACHE/docker.io/library/alpine:3.20
	mkdir -p "$cfg"
	crane_auth() { DOCKER_CONFIG=$cfg SSL_CERT_FILE=$AUTH_CA run crane "$@"; }
	auth_refused "crane pull $ref without logging in" crane_auth pull --format oci "$ref" "$out"
	rm -rf "$out"
	if crane_auth auth login "$AUTH_CACHE" -u alice --password-stdin <<<"$ALICE_PW" >/dev/null; then
		pass "crane auth login $AUTH_CACHE -u alice --password-stdin"
	else
		fail "crane auth login $AUTH_CACHE -u alice --password-stdin"
	fi
	check_eq "crane auth get $AUTH_CACHE: alice" \
		"$(crane_auth auth get "$AUTH_CACHE" | jq -r .Username)" alice
	if DOCKER_CONFIG=$cfg run crane pull --format oci "$ref" "$out"; then
		fail "crane pull without trusting the CA: refused (unknown authority)"
	else
		check_eq "crane pull without trusting the CA: refused (unknown authority)" \
			"$(grep -c 'x509: certificate signed by unknown authority' "$LAST_ERR")" 1
	fi
	rm -rf "$out"
	if crane_auth pull --format oci "$ref" "$out"; then
		pass "crane pull --format oci $ref as alice (SSL_CERT_FILE=the CA)"
		check_oci_layout "crane pull $ref as alice" "$out" alpine
	else
		fail "crane pull --format oci $ref as alice (SSL_CERT_FILE=the CA)"
	fi
	rm -rf "$out"
	check_eq "crane digest $AUTH_CACHE/docker.io/library/multi:1 as alice" \
		"$(crane_auth digest "$AUTH_CACHE/docker.io/library/multi:1")" "${UP_DIGEST[multi]}"
	auth_refused "crane digest $AUTH_CACHE/local/team/app:1.2 as alice (no rule)" crane_auth digest "$AUTH_CACHE/local/team/app:1.2"
	crane_auth auth logout "$AUTH_CACHE" >/dev/null || true
	auth_refused "crane digest $ref after crane auth logout" crane_auth digest "$ref"
	# The static token as the password of a login.
	if crane_auth auth login "$AUTH_CACHE" -u ci --password-stdin <<<"$CI_TOKEN" >/dev/null; then
		check_eq "crane auth login -u ci (the token as password), then crane digest $AUTH_CACHE/local/team/app:1.2" \
			"$(crane_auth digest "$AUTH_CACHE/local/team/app:1.2")" "${UP_DIGEST[app]}"
	else
		fail "crane auth login $AUTH_CACHE -u ci --password-stdin"
	fi
	crane_auth auth logout "$AUTH_CACHE" >/dev/null || true
}

# auth_skopeo: skopeo with --src-creds and the CA in --src-cert-dir.
auth_skopeo() {
	log "-- skopeo $(skopeo --version | awk '{ print $3 }') --"
	local ref=docker://$AUTH_CACHE/docker.io/library/alpine:3.20 out=$AUTH_D/out/skopeo
	if skopeo_run copy --quiet --src-creds "alice:$ALICE_PW" --src-cert-dir "$AUTH_D/certs" "$ref" "dir:$out"; then
		pass "skopeo copy --src-creds alice:… --src-cert-dir <CA> $ref dir:…"
		check_eq "skopeo copy as alice: manifest.json hashes to the upstream digest" \
			"$(sha <"$out/manifest.json")" "${UP_DIGEST[alpine]}"
	else
		fail "skopeo copy --src-creds alice:… --src-cert-dir <CA> $ref dir:…"
	fi
	rm -rf "$out"
	auth_refused "skopeo copy --src-creds alice:<wrong password> $ref" \
		skopeo_run copy --quiet --src-creds "alice:$WRONG_PW" --src-cert-dir "$AUTH_D/certs" "$ref" "dir:$out"
	rm -rf "$out"
	auth_refused "skopeo inspect without credentials $ref" \
		skopeo_run inspect --raw --cert-dir "$AUTH_D/certs" "$ref"
	auth_refused "skopeo inspect --creds bob:… $ref (no rule)" \
		skopeo_run inspect --raw --creds "bob:$BOB_PW" --cert-dir "$AUTH_D/certs" "$ref"
	if skopeo_run inspect --raw --creds "alice:$ALICE_PW" "$ref" >/dev/null; then
		fail "skopeo inspect --tls-verify (default) without the CA: refused"
	else
		check_eq "skopeo inspect --tls-verify (default) without the CA: refused (unknown authority)" \
			"$(grep -c 'certificate signed by unknown authority' "$LAST_ERR")" 1
	fi
	# The static token, sent as the Bearer itself (no token flow).
	ref=docker://$AUTH_CACHE/local/team/app:1.2
	check_eq "skopeo inspect --registry-token <ci token> $ref" \
		"$(skopeo_run inspect --raw --registry-token "$CI_TOKEN" --cert-dir "$AUTH_D/certs" "$ref" | sha)" "${UP_DIGEST[app]}"
	out=$AUTH_D/out/skopeo-multi
	ref=docker://$AUTH_CACHE/docker.io/library/multi:1
	if skopeo_run copy --quiet --all --preserve-digests --src-creds "ci:$CI_TOKEN" --src-cert-dir "$AUTH_D/certs" "$ref" "oci:$out:1"; then
		pass "skopeo copy --all --src-creds ci:<token> $ref oci:…"
		check_oci_layout "skopeo copy --all as ci $ref" "$out" multi
	else
		fail "skopeo copy --all --src-creds ci:<token> $ref oci:…"
	fi
	rm -rf "$out"
}

# auth_regctl: regctl with the CA set for the host, and its login (which
# pings the registry with the credentials).
auth_regctl() {
	log "-- regctl $REGCTL_VERSION --"
	local ref=$AUTH_CACHE/docker.io/library/alpine:3.20 out=$AUTH_D/out/regctl
	mkdir -p "$AUTH_D/regctl-docker"
	# Its own configuration, and an empty Docker one: no other login leaks in.
	regctl_auth() { REGCTL_CONFIG=$AUTH_D/regctl.json DOCKER_CONFIG=$AUTH_D/regctl-docker run regctl "$@"; }
	if ! regctl_auth registry set "$AUTH_CACHE" --cacert "$(cat "$AUTH_CA")" --skip-check >/dev/null; then
		fail "regctl registry set $AUTH_CACHE --cacert <CA> --skip-check"
		return 0
	fi
	auth_refused "regctl image digest $ref without logging in" regctl_auth image digest "$ref"
	auth_refused "regctl registry login -u alice with a wrong password" \
		regctl_auth registry login "$AUTH_CACHE" -u alice --pass-stdin <<<"$WRONG_PW"
	if regctl_auth registry login "$AUTH_CACHE" -u alice --pass-stdin <<<"$ALICE_PW" >/dev/null; then
		pass "regctl registry login $AUTH_CACHE -u alice --pass-stdin"
	else
		fail "regctl registry login $AUTH_CACHE -u alice --pass-stdin"
	fi
	check_eq "regctl image digest $ref as alice" "$(regctl_auth image digest "$ref")" "${UP_DIGEST[alpine]}"
	ref=$AUTH_CACHE/docker.io/library/multi:1
	if regctl_auth image copy "$ref" "ocidir://$out:1" >/dev/null; then
		pass "regctl image copy $ref ocidir://… as alice"
		check_oci_layout "regctl image copy $ref as alice" "$out" multi
	else
		fail "regctl image copy $ref ocidir://… as alice"
	fi
	rm -rf "$out"
	auth_refused "regctl manifest get $AUTH_CACHE/local/team/app:1.2 as alice (no rule)" \
		regctl_auth manifest get "$AUTH_CACHE/local/team/app:1.2"
	regctl_auth registry logout "$AUTH_CACHE" >/dev/null || true
	auth_refused "regctl image digest $ref after regctl registry logout" regctl_auth image digest "$ref"
}

# auth_ctr: ctr pulls with --user through a hosts dir whose host for
# docker.io and local is the second Entrepot, its CA in hosts.toml
# (containerd's hosts.toml holds no credentials).
auth_ctr() {
	log "-- containerd $(containerd --version | awk '{ print $3 }') --"
	if [[ -z ${CTR_PID:-} ]] || ! kill -0 "$CTR_PID" 2>/dev/null; then
		start_containerd || return 0
	fi
	local ns hosts=$AUTH_D/certs.d
	for ns in docker.io local; do
		mkdir -p "$hosts/$ns"
		cat >"$hosts/$ns/hosts.toml" <<-EOF
			server = "http://127.0.0.1:1"

			[host."https://$AUTH_CACHE"]
			  capabilities = ["pull", "resolve"]
			  ca = "$AUTH_CA"
		EOF
	done
	# A namespace of its own; ctr_auth runs under run (stderr in $LAST_ERR).
	ctr_auth() {
		run ctr --address "$CTR_SOCK" --namespace auth images pull --hosts-dir "$hosts" \
			--snapshotter "$CTR_SNAPSHOTTER" "$@"
	}
	local ref=docker.io/library/alpine:3.20
	auth_refused "ctr images pull $ref without --user" ctr_auth "$ref"
	auth_refused "ctr images pull --user alice:<wrong password> $ref" ctr_auth --user "alice:$WRONG_PW" "$ref"
	if ctr_auth --user "alice:$ALICE_PW" --http-dump "$ref" >/dev/null; then
		pass "ctr images pull --user alice:… --hosts-dir <ca in hosts.toml> $ref"
	else
		fail "ctr images pull --user alice:… --hosts-dir <ca in hosts.toml> $ref"
	fi
	# containerd asks for its token with the OAuth2 password grant (POST).
	if grep -qF 'msg="POST /token HTTP/1.1"' "$LAST_ERR"; then
		pass "ctr as alice: containerd fetched its token with POST /token (password grant)"
	else
		fail "ctr as alice: containerd fetched its token with POST /token (password grant)" \
			"requests seen: $(grep -oE 'msg="(HEAD|GET|POST) [^ ]*' "$LAST_ERR" | head -n 4 | tr '\n' ' ')"
	fi
	: >"$LAST_ERR" # the dump holds the password: keep it nowhere
	check_eq "ctr images ls: $ref (as alice) has the upstream digest" \
		"$(run ctr --address "$CTR_SOCK" --namespace auth images ls | awk -v r="$ref" '$1 == r { print $3 }')" "${UP_DIGEST[alpine]}"
	auth_refused "ctr images pull --user alice:… local/team/app:1.2 (no rule)" ctr_auth --user "alice:$ALICE_PW" local/team/app:1.2
	ref=local/team/app:1.2
	if ctr_auth --user "ci:$CI_TOKEN" "$ref" >/dev/null; then
		pass "ctr images pull --user ci:<token> $ref"
	else
		fail "ctr images pull --user ci:<token> $ref"
	fi
	check_eq "ctr images ls: $ref (as ci) has the upstream digest" \
		"$(run ctr --address "$CTR_SOCK" --namespace auth images ls | awk -v r="$ref" '$1 == r { print $3 }')" "${UP_DIGEST[app]}"
}

# auth_docker: docker login and pull, the CLI's credentials in a config
# directory of its own. dockerd counts 127.0.0.0/8 among its insecure
# registries whatever its configuration, so it speaks TLS to a loopback
# registry without checking the certificate (a CA in
# /etc/docker/certs.d/HOST/ would change nothing): what is checked is that
# it spoke https, and that the credentials were needed.
auth_docker() {
	log "-- dockerd $(dockerd --version | awk '{ print $3 }' | tr -d ,) --"
	if [[ -z ${CTR_PID:-} ]] || ! kill -0 "$CTR_PID" 2>/dev/null; then
		start_containerd || return 0
	fi
	if [[ -z ${DOCKERD_PID:-} ]] || ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
		start_dockerd || return 0
	fi
	local cfg=$AUTH_D/docker repo=$AUTH_CACHE/docker.io/library/alpine from
	mkdir -p "$cfg"
	docker_auth() { docker_cli --config "$cfg" "$@"; }
	from=$(($(wc -l <"$WORK/logs/dockerd.log") + 1))
	auth_refused "docker pull $repo:3.20 without docker login" docker_auth pull --quiet "$repo:3.20"
	auth_refused "docker login $AUTH_CACHE -u alice with a wrong password" \
		docker_auth login -u alice --password-stdin "$AUTH_CACHE" <<<"$WRONG_PW"
	if docker_auth login -u alice --password-stdin "$AUTH_CACHE" <<<"$ALICE_PW" >/dev/null; then
		pass "docker login $AUTH_CACHE -u alice --password-stdin"
	else
		fail "docker login $AUTH_CACHE -u alice --password-stdin"
	fi
	check_eq "docker login: the credentials are in the CLI's own config.json" \
		"$(jq -r --arg h "$AUTH_CACHE" '.auths[$h].auth // empty' "$cfg/config.json" 2>/dev/null | base64 -d 2>/dev/null | cut -d: -f1)" alice
	if docker_auth pull --quiet "$repo:3.20" >/dev/null; then
		pass "docker pull $repo:3.20 as alice"
	else
		fail "docker pull $repo:3.20 as alice"
	fi
	check_eq "docker image inspect $repo:3.20: its RepoDigest has the upstream digest" \
		"$(docker_auth image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repo:3.20" | awk -F@ -v r="$repo" '$1 == r { print $2 }')" \
		"${UP_DIGEST[alpine]}"
	local tried
	tried=$(tail -n "+$from" "$WORK/logs/dockerd.log" | grep -oE "Trying to pull $repo from [^ ]+" | awk '{ print $NF }' | sort -u | tr '\n' ' ')
	check_eq "dockerd pulled $repo from https://$AUTH_CACHE only, and both logins went there first" \
		"$tried$(tail -n "+$from" "$WORK/logs/dockerd.log" | grep -cE "v2 login to registry endpoint https://$AUTH_CACHE/v2/")" \
		"https://$AUTH_CACHE 2"
	auth_refused "docker pull $AUTH_CACHE/local/team/app:1.2 as alice (no rule)" docker_auth pull --quiet "$AUTH_CACHE/local/team/app:1.2"
	if docker_auth logout "$AUTH_CACHE" >/dev/null; then
		pass "docker logout $AUTH_CACHE"
	else
		fail "docker logout $AUTH_CACHE"
	fi
	docker_auth image rm "$repo:3.20" >/dev/null || true
	auth_refused "docker pull $repo:3.20 after docker logout" docker_auth pull --quiet "$repo:3.20"
}

# auth_podman: rootful podman (its store, configuration and locks under
# $AUTH_D, as in clientconfig) with the CA in --cert-dir and an auth file
# of its own.
auth_podman() {
	local d=$AUTH_D/podman ref=$AUTH_CACHE/docker.io/library/alpine:3.20
	mkdir -p "$d/root" "$d/runroot" "$d/tmp"
	cat >"$d/containers.conf" <<-EOF
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "none"
		lock_type = "file"
		tmp_dir = "$d/tmp"
	EOF
	cat >"$d/storage.conf" <<-EOF
		[storage]
		driver = "vfs"
		graphroot = "$d/root"
		runroot = "$d/runroot"
	EOF
	echo 'unqualified-search-registries = []' >"$d/registries.conf"
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$d/policy.json"
	echo '{"auths":{}}' >"$d/auth.json"
	podman_auth() {
		REGISTRY_AUTH_FILE=$d/auth.json CONTAINERS_REGISTRIES_CONF=$d/registries.conf CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf \
			run podman --root "$d/root" --runroot "$d/runroot" --storage-driver vfs --tmpdir "$d/tmp" "$@"
	}
	# Rootful podman keeps a blob info cache in /var/lib/containers/cache
	# whatever its --root: take away what this run made there.
	local made_varlib=0
	[[ -e /var/lib/containers ]] || made_varlib=1
	log "-- podman $(podman --version | awk '{ print $3 }') --"
	local pull=(pull --signature-policy "$d/policy.json" --cert-dir "$AUTH_D/certs")
	auth_refused "podman pull $ref without podman login" podman_auth "${pull[@]}" "$ref"
	auth_refused "podman login -u alice with a wrong password" \
		podman_auth login --cert-dir "$AUTH_D/certs" -u alice --password-stdin "$AUTH_CACHE" <<<"$WRONG_PW"
	if podman_auth login --cert-dir "$AUTH_D/certs" -u alice --password-stdin "$AUTH_CACHE" <<<"$ALICE_PW" >/dev/null; then
		pass "podman login --cert-dir <CA> $AUTH_CACHE -u alice --password-stdin"
	else
		fail "podman login --cert-dir <CA> $AUTH_CACHE -u alice --password-stdin"
	fi
	if podman_auth "${pull[@]}" "$ref" >/dev/null; then
		pass "podman pull --cert-dir <CA> $ref as alice"
	else
		fail "podman pull --cert-dir <CA> $ref as alice"
	fi
	check_eq "podman $ref: the image has the upstream digest" \
		"$(podman_auth image inspect --format '{{.Digest}}' "$ref")" "${UP_DIGEST[alpine]}"
	auth_refused "podman pull $AUTH_CACHE/local/team/app:1.2 as alice (no rule)" podman_auth "${pull[@]}" "$AUTH_CACHE/local/team/app:1.2"
	if podman_auth logout "$AUTH_CACHE" >/dev/null; then
		pass "podman logout $AUTH_CACHE"
	else
		fail "podman logout $AUTH_CACHE"
	fi
	podman_auth rmi "$ref" >/dev/null || true
	auth_refused "podman pull $ref after podman logout" podman_auth "${pull[@]}" "$ref"
	((made_varlib)) && rm -rf /var/lib/containers
	return 0
}

