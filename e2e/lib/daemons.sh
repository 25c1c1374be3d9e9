# shellcheck shell=bash
# Starts the suite's servers, each on loopback with all of its state under
# $WORK: the upstream (Distribution), Entrepot, containerd and dockerd.
# Every start records the PID for the EXIT trap (start_bg).

# start_upstream: the Distribution registry on 127.0.0.1:$UP_PORT with
# filesystem storage in $WORK/upstream.
start_upstream() {
	pick_port UP_PORT
	UPSTREAM=127.0.0.1:$UP_PORT
	mkdir -p "$WORK/upstream"
	cat >"$WORK/upstream.yml" <<-EOF
		version: 0.1
		log:
		  level: info
		  formatter: text
		storage:
		  filesystem:
		    rootdirectory: $WORK/upstream
		  delete:
		    enabled: true
		  maintenance:
		    uploadpurging:
		      enabled: false
		http:
		  addr: $UPSTREAM
		  secret: entrepot-e2e-only
	EOF
	# OTEL_*: no tracing exporter, so the registry dials nothing.
	start_bg upstream "$WORK/logs/upstream.log" \
		env OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true \
		registry serve "$WORK/upstream.yml"
	UP_PID=$BG_PID
	wait_until "upstream" 60 "$UP_PID" curl -sf "http://$UPSTREAM/v2/" ||
		die "the upstream registry did not start"
	log "upstream: http://$UPSTREAM"
}

# seed_upstream pushes the test images (e2e/seed) to the upstream.
seed_upstream() {
	(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/seed" ./e2e/seed) ||
		die "building e2e/seed failed"
	local t0
	t0=$(now)
	timeout 600 "$WORK/bin/seed" --registry "$UPSTREAM" --big-mib "$E2E_BIG_MIB" --burst-mib "$E2E_BURST_MIB" >"$WORK/seed.txt" ||
		die "seeding the upstream failed"
	log "seeded the upstream in $(elapsed "$t0") s:"
	sed 's/^/#   /' "$WORK/seed.txt"
}

# start_entrepot builds ./cmd/entrepot and serves it on 127.0.0.1:$CACHE_PORT
# with two names for the one upstream: docker.io (the default) and local.
# Returns non-zero when it cannot be built or does not answer /v2/.
start_entrepot() {
	pick_port CACHE_PORT
	CACHE=127.0.0.1:$CACHE_PORT
	pick_port ADMIN_PORT
	ADMIN=http://127.0.0.1:$ADMIN_PORT
	if ! (cd "$ROOT" && timeout 600 go build -o "$WORK/bin/entrepot" ./cmd/entrepot) >"$WORK/logs/build.log" 2>&1; then
		fail "build ./cmd/entrepot" "$(tail -n 5 "$WORK/logs/build.log")"
		return 1
	fi
	pass "build ./cmd/entrepot"
	start_cache entrepot
	if ! wait_until "entrepot" 60 "$CACHE_PID" curl -sf "http://$CACHE/v2/"; then
		fail "entrepot serve answers GET /v2/ with 200"
		return 1
	fi
	pass "entrepot serve answers GET /v2/ with 200"
}

# write_hosts_dir writes containerd's certs.d: every pull of docker.io/… and
# local/… goes to $CACHE (containerd adds ?ns=<registry>), and every pull of
# apps.example.test/… to $CACHE/v2/local with override_path, the path-prefix
# form. The fallback server is a closed loopback port, so a failure of the
# mirror can never send a request off the machine.
write_hosts_dir() {
	local ns prefixed=$CACHE/v2/local
	((E2E_DIRECT)) && prefixed=$CACHE/v2
	for ns in docker.io local; do
		mkdir -p "$WORK/certs.d/$ns"
		cat >"$WORK/certs.d/$ns/hosts.toml" <<-EOF
			server = "http://127.0.0.1:1"

			[host."http://$CACHE"]
			  capabilities = ["pull", "resolve"]
		EOF
	done
	mkdir -p "$WORK/certs.d/apps.example.test"
	cat >"$WORK/certs.d/apps.example.test/hosts.toml" <<-EOF
		server = "http://127.0.0.1:1"

		[host."http://$prefixed"]
		  capabilities = ["pull", "resolve"]
		  override_path = true
	EOF
}

# start_containerd runs containerd with root, state and sockets in $WORK and
# the plugins that need more than this machine has (CRI, btrfs, zfs,
# devmapper, aufs) turned off.
start_containerd() {
	local d=$WORK/containerd
	mkdir -p "$d/root" "$d/state" "$d/opt"
	CTR_SOCK=$d/containerd.sock
	cat >"$d/config.toml" <<-EOF
		version = 2
		root = "$d/root"
		state = "$d/state"
		disabled_plugins = [
		  "io.containerd.grpc.v1.cri",
		  "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.zfs",
		]

		[grpc]
		  address = "$CTR_SOCK"

		[ttrpc]
		  address = "$CTR_SOCK.ttrpc"

		[debug]
		  address = ""
		  level = "info"

		[metrics]
		  address = ""

		[plugins."io.containerd.internal.v1.opt"]
		  path = "$d/opt"
	EOF
	start_bg containerd "$WORK/logs/containerd.log" \
		containerd --config "$d/config.toml" --address "$CTR_SOCK"
	CTR_PID=$BG_PID
	if ! wait_until "containerd" 60 "$CTR_PID" ctr --address "$CTR_SOCK" version; then
		fail "containerd starts"
		return 1
	fi
	pass "containerd starts (socket $CTR_SOCK)"
}

# start_dockerd runs dockerd on our containerd, with Entrepot (or, with
# E2E_DIRECT=1, the upstream) as its only registry mirror. Its proxy
# variables point at a closed loopback port: dockerd's fallback to Docker Hub
# cannot leave the machine (loopback addresses never use a proxy).
start_dockerd() {
	local d=$WORK/docker
	mkdir -p "$d/data" "$d/exec"
	DOCKER_SOCK=$d/docker.sock
	# Its own config file, so the machine's /etc/docker/daemon.json is not
	# read; the trust key (a config-file-only key) goes to the work dir
	# rather than /etc/docker/key.json.
	printf '{"deprecated-key-path": "%s"}\n' "$d/key.json" >"$d/daemon.json"
	# dockerd makes /run/docker/plugins whatever its exec-root; remove_run_docker
	# takes it away again if this run made it.
	[[ -e /run/docker ]] || MADE_RUN_DOCKER=1
	start_bg dockerd "$WORK/logs/dockerd.log" \
		env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
		http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= \
		dockerd \
		--debug \
		--config-file "$d/daemon.json" \
		--storage-driver=vfs --bridge=none --iptables=false \
		--data-root "$d/data" \
		--exec-root "$d/exec" \
		--pidfile "$d/docker.pid" \
		-H "unix://$DOCKER_SOCK" \
		--containerd "$CTR_SOCK" \
		--registry-mirror "http://$CACHE" \
		--insecure-registry "$CACHE"
	DOCKERD_PID=$BG_PID
	if ! wait_until "dockerd" 90 "$DOCKERD_PID" docker_cli version; then
		fail "dockerd starts"
		return 1
	fi
	pass "dockerd starts (socket $DOCKER_SOCK, mirror http://$CACHE)"
}

# remove_run_docker removes the empty /run/docker/plugins (and /run/docker)
# that dockerd made, when the machine had no /run/docker before.
MADE_RUN_DOCKER=0
remove_run_docker() {
	if ((MADE_RUN_DOCKER)); then
		rmdir /run/docker/plugins /run/docker 2>/dev/null || true
	fi
}

# docker_cli runs the docker CLI against our dockerd only. Debian's CLI is
# preferred: it is the one built with this dockerd.
# It runs under `run`: bounded in time, stderr kept for fail.
docker_cli() {
	local cli=/usr/bin/docker
	[[ -x $cli ]] || cli=docker
	run "$cli" -H "unix://$DOCKER_SOCK" "$@"
}

# start_cache NAME: Entrepot on $CACHE with the run's data directory and the
# upstream as docker.io and local. Sets CACHE_PID.
start_cache() {
	start_bg "$1" "$WORK/logs/$1.log" \
		"$WORK/bin/entrepot" serve \
		--listen "$CACHE" \
		--admin-listen "127.0.0.1:$ADMIN_PORT" \
		--data "$WORK/data" \
		--upstream "docker.io=http://$UPSTREAM" \
		--upstream "local=http://$UPSTREAM"
	CACHE_PID=$BG_PID
}
