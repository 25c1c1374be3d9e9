# shellcheck shell=bash
# entrepot client-config: the files it writes (--write) are used as they are
# by real clients, containerd (ctr --hosts-dir) and podman
# (CONTAINERS_REGISTRIES_CONF), whose pulls must all reach Entrepot and
# never the upstream, although each file names the upstream as fallback.

# upstream_clients FROM: the User-Agents of the clients other than Entrepot
# (whose User-Agent is "entrepot") that the upstream answered, from line
# FROM of its log on; space-separated.
upstream_clients() {
	tail -n "+$1" "$WORK/logs/upstream.log" | grep -F 'msg="response completed"' |
		grep -oE 'http\.request\.useragent=("[^"]*"|[^ ]*)' | sed 's/^http\.request\.useragent=//' |
		grep -vx -e entrepot -e '"entrepot"' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}

# clientconfig_hosts LOG PATTERN: the distinct hosts that a client's debug
# log shows requests to, space-separated; PATTERN matches "… [scheme://]host".
clientconfig_hosts() {
	grep -oE "$2" "$1" | awk '{ sub("^https?://", "", $NF); print $NF }' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}

# store_holds NAME: every config and layer blob of image NAME is in
# Entrepot's store (blobs/<alg>/<2 hex>/<hex>).
store_holds() {
	local d hex missing=()
	while read -r d; do
		hex=${d#sha256:}
		[[ -f $WORK/data/blobs/sha256/${hex:0:2}/$hex ]] || missing+=("$d")
	done < <(grep -vx "${UP_DIGEST[$1]}" "$WORK/expect/$1")
	echo "${missing[*]:-none}"
}

check_clientconfig() {
	if ((E2E_DIRECT)); then
		log "== client-config: skipped with E2E_DIRECT=1 (it configures Entrepot) =="
		return 0
	fi
	log "== entrepot client-config =="
	local dir=$WORK/client-config
	if run "$WORK/bin/entrepot" client-config --url "http://$CACHE" \
		--upstream "docker.io=http://$UPSTREAM" --upstream "local=http://$UPSTREAM" \
		--write "$dir" >"$WORK/logs/client-config.out"; then
		pass "entrepot client-config --url http://$CACHE --write DIR"
	else
		fail "entrepot client-config --url http://$CACHE --write DIR"
		return 0
	fi
	check_eq "client-config wrote the files of every client, one hosts.toml per upstream" \
		"$(cd "$dir" && find . -type f | sort | tr '\n' ' ')" \
		"./containerd/certs.d/docker.io/hosts.toml ./containerd/certs.d/local/hosts.toml ./containers/registries.conf.d/entrepot.conf ./docker/daemon.json ./rancher/k3s/registries.yaml "
	check_eq "daemon.json: Entrepot as Docker Hub's mirror, insecure (http)" \
		"$(jq -c . "$dir/docker/daemon.json")" \
		"{\"registry-mirrors\":[\"http://$CACHE\"],\"insecure-registries\":[\"$CACHE\"]}"
	check_eq "hosts.toml: the upstream is each registry's fallback server" \
		"$(cat "$dir"/containerd/certs.d/*/hosts.toml | grep '^server' | sort -u)" "server = \"http://$UPSTREAM\""

	# From here on the upstream must see no client but Entrepot.
	local from
	from=$(($(wc -l <"$WORK/logs/upstream.log") + 1))
	clientconfig_containerd "$dir/containerd/certs.d"
	if command -v podman >/dev/null; then
		clientconfig_podman "$dir/containers/registries.conf.d/entrepot.conf"
	else
		fail "podman is on PATH (e2e/lib/install.sh installs it unless E2E_SKIP_INSTALL=1)"
	fi
	local direct
	direct=$(upstream_clients "$from")
	check_eq "the upstream served no client directly, only Entrepot" "${direct:-none}" none
}

# clientconfig_containerd CERTS_D: ctr pulls with the generated hosts dir,
# in a namespace of its own.
clientconfig_containerd() {
	local certs=$1 entry n ref dump
	if [[ -z ${CTR_PID:-} ]] || ! kill -0 "$CTR_PID" 2>/dev/null; then
		start_containerd || return 0
	fi
	for entry in alpine=docker.io/library/alpine:3.20 multi=docker.io/library/multi:1 app=local/team/app:1.2; do
		n=${entry%%=*} ref=${entry#*=}
		dump=$WORK/logs/clientconfig-ctr-$n.log
		if run ctr --address "$CTR_SOCK" --namespace clientconfig images pull --hosts-dir "$certs" \
			--snapshotter "$CTR_SNAPSHOTTER" --all-platforms --http-dump "$ref" >/dev/null; then
			pass "ctr images pull --hosts-dir <client-config> $ref"
		else
			fail "ctr images pull --hosts-dir <client-config> $ref"
		fi
		cp "$LAST_ERR" "$dump"
		check_eq "ctr (client-config hosts.toml) $ref: the image has the upstream digest" \
			"$(run ctr --address "$CTR_SOCK" --namespace clientconfig images ls | awk -v r="$ref" '$1 == r { print $3 }')" \
			"${UP_DIGEST[$n]}"
		check_eq "ctr (client-config hosts.toml) $ref: every request went to Entrepot" \
			"$(clientconfig_hosts "$dump" 'msg="Host: [^"]*')" "$CACHE"
		if grep -qF "?ns=${ref%%/*} HTTP/1.1" "$dump"; then
			pass "ctr (client-config hosts.toml) $ref: requests carry ?ns=${ref%%/*}"
		else
			fail "ctr (client-config hosts.toml) $ref: requests carry ?ns=${ref%%/*}"
		fi
	done
}

# clientconfig_podman CONF: rootful podman with the generated registries.conf
# and a store, configuration and locks of its own under $WORK (vfs: no
# mounts), pulling by the images' own names.
clientconfig_podman() {
	local conf=$1 d=$WORK/podman n ref plog
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
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$d/policy.json"
	# An empty auth file: podman refuses one that is named
	# ($DOCKER_CONFIG/config.json) but missing.
	echo '{"auths":{}}' >"$d/auth.json"
	podman_run() {
		REGISTRY_AUTH_FILE=$d/auth.json CONTAINERS_REGISTRIES_CONF=$conf CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf \
			run podman --root "$d/root" --runroot "$d/runroot" --storage-driver vfs --tmpdir "$d/tmp" "$@"
	}
	# Rootful podman keeps its blob info cache in /var/lib/containers/cache
	# whatever its --root: take away what this run made there.
	local made_varlib=0
	[[ -e /var/lib/containers ]] || made_varlib=1
	log "podman $(podman --version | awk '{ print $3 }')"
	for ref in alpine=docker.io/library/alpine:3.20 multi=docker.io/library/multi:1; do
		n=${ref%%=*} ref=${ref#*=}
		plog=$WORK/logs/clientconfig-podman-$n.log
		if podman_run --log-level=debug pull --signature-policy "$d/policy.json" "$ref" >/dev/null; then
			pass "podman pull $ref (client-config registries.conf)"
		else
			fail "podman pull $ref (client-config registries.conf)"
		fi
		cp "$LAST_ERR" "$plog"
		check_eq "podman $ref: the image has the upstream digest" \
			"$(podman_run image inspect --format '{{.Digest}}' "$ref")" "${UP_DIGEST[$n]}"
		check_eq "podman $ref: every request went to Entrepot" \
			"$(clientconfig_hosts "$plog" '(GET|HEAD) https?://[^/ "]*')" "$CACHE"
		if grep -qE "GET https?://$CACHE/v2/docker.io/${REPO[$n]}/manifests/" "$plog"; then
			pass "podman $ref: asked Entrepot's docker.io prefix for the manifest"
		else
			fail "podman $ref: asked Entrepot's docker.io prefix for the manifest"
		fi
	done
	((made_varlib)) && rm -rf /var/lib/containers
	check_eq "Entrepot's store holds every config and layer blob of alpine" "$(store_holds alpine)" none
}
