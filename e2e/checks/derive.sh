# shellcheck shell=bash
# Derived images (the derive list): two Entrepots on the same upstream and
# the same derive list serve derived/<name>:<tag> with the same digests (the
# build is reproducible); crane, skopeo, containerd and dockerd pull them;
# podman runs one and sees each change (the environment, the volume, a
# directory of mode 0777, a file with its mode and content); when the base
# tag moves upstream, the derived tag follows and the previous derived
# digest still pulls; a run line is refused at start-up with what to use.
#
# The base is runnable: one static program (e2e/probe) that prints what it
# is asked about, as library/probe:1 (Docker types, linux/amd64) and, with
# a linux/arm64 copy, the index library/probe-multi:1.

# dv_conf FILE DATA PORT APORT [EXTRA]: an Entrepot configuration deriving
# from the probe images; EXTRA is appended to the first derive entry.
dv_conf() {
	cat >"$1" <<-EOF
		listen: 127.0.0.1:$3
		data: $2
		admin:
		  listen: 127.0.0.1:$4
		upstreams:
		  - name: docker.io
		    url: http://$UPSTREAM
		    ttl: 0s
		derive:
		  - name: probe
		    from: docker.io/library/probe:1
		    env: {MODE: derived}
		    volumes: [/etc/app]
		    files:
		      - {path: /etc/app, dir: true, mode: "0777"}
		      - {path: /etc/app/greeting, content: "hello\n", mode: "0640", uid: 10, gid: 20}
		      - {path: /usr/bin/probe, symlink: /probe}
		${5:-}
		  - name: probe-multi
		    from: docker.io/library/probe-multi:1
		    env: {MODE: derived}
		    files:
		      - {path: /etc/app, dir: true, mode: "0777"}
	EOF
}

# dv_start NAME: starts an Entrepot deriving from the probe images; sets
# DV_ADDR[NAME] and DV_PID[NAME].
dv_start() {
	local port aport dir=$WORK/derive/$1
	pick_port port
	pick_port aport
	mkdir -p "$dir/data"
	dv_conf "$dir/entrepot.yml" "$dir/data" "$port" "$aport"
	start_bg "entrepot-$1" "$WORK/logs/entrepot-derive-$1.log" "$WORK/bin/entrepot" serve --config "$dir/entrepot.yml"
	DV_PID[$1]=$BG_PID
	DV_ADDR[$1]=127.0.0.1:$port
	DV_ADMIN[$1]=http://127.0.0.1:$aport
	wait_until "entrepot ($1)" 60 "$BG_PID" curl -sf "http://127.0.0.1:$port/readyz"
}

# dv_seed: the runnable base images, pushed to the upstream with crane.
dv_seed() {
	local d=$WORK/derive up=$UPSTREAM/library
	mkdir -p "$d/root"
	(cd "$ROOT" && CGO_ENABLED=0 timeout 300 go build -o "$d/root/probe" ./e2e/probe) || return 1
	tar -C "$d/root" --owner=0 --group=0 -cf "$d/probe.tar" probe || return 1
	run crane append --insecure -f "$d/probe.tar" -t "$up/probe:build" >/dev/null &&
		run crane mutate --insecure --set-platform linux/amd64 -e MODE=base --entrypoint /probe -t "$up/probe:1" "$up/probe:build" >/dev/null &&
		run crane mutate --insecure --set-platform linux/arm64 -t "$up/probe:arm64" "$up/probe:1" >/dev/null &&
		run crane index append --insecure --docker-empty-base -m "$up/probe:1" -m "$up/probe:arm64" -t "$up/probe-multi:1" >/dev/null
}

# dv_podman ARGS...: rootful podman with a store of its own under $WORK
# (vfs), limits this sandbox lets it set, no network.
dv_podman() {
	local d=$WORK/derive/podman
	mkdir -p "$d/root" "$d/runroot" "$d/tmp"
	[[ -f $d/policy.json ]] || echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$d/policy.json"
	[[ -f $d/auth.json ]] || echo '{"auths":{}}' >"$d/auth.json"
	[[ -f $d/registries.conf ]] || echo 'unqualified-search-registries = []' >"$d/registries.conf"
	REGISTRY_AUTH_FILE=$d/auth.json CONTAINERS_REGISTRIES_CONF=$d/registries.conf \
		run podman --root "$d/root" --runroot "$d/runroot" --storage-driver vfs --tmpdir "$d/tmp" \
		--cgroup-manager cgroupfs --events-backend none "$@"
}

check_derive() {
	log "== derived images =="
	declare -gA DV_ADDR=() DV_PID=() DV_ADMIN=()
	if ! dv_seed; then
		fail "push the runnable base images (e2e/probe) to the upstream"
		return 0
	fi
	pass "push the runnable base images (e2e/probe) to the upstream"

	# A run line is refused at start-up, saying what to write instead.
	local bad=$WORK/derive/bad.yml out
	dv_conf "$bad" "$WORK/derive/bad-data" 1 2 "    run: mkdir /etc/app"
	if out=$(timeout 20 "$WORK/bin/entrepot" serve --config "$bad" 2>&1); then
		fail "entrepot serve refuses a derive entry with run"
	else
		check_eq "entrepot serve refuses run: the message says to declare files with a mode" \
			"$(grep -c 'derive\[probe\]: "run" would need to execute the image.*files (with mode' <<<"$out")" 1
	fi

	if ! dv_start a || ! dv_start b; then
		fail "two Entrepots with a derive list answer /readyz"
		return 0
	fi
	pass "two Entrepots with a derive list answer /readyz"
	local a=${DV_ADDR[a]} b=${DV_ADDR[b]} n da db
	for n in probe:1 probe-multi:1; do
		da=$(run crane digest --insecure "$a/derived/$n")
		db=$(run crane digest --insecure "$b/derived/$n")
		check_eq "derived/$n: both Entrepots derive the same digest (reproducible)" "$da" "$db"
		check "crane validate --remote $a/derived/$n (every blob pulls, every digest holds)" crane validate --insecure --remote "$a/derived/$n"
	done
	local probe multi
	probe=$(run crane digest --insecure "$a/derived/probe:1")
	multi=$(run crane digest --insecure "$a/derived/probe-multi:1")
	check_eq "derived/probe-multi:1 keeps the base's Docker manifest list type" \
		"$(run crane manifest --insecure "$a/derived/probe-multi:1" | jq -r .mediaType)" application/vnd.docker.distribution.manifest.list.v2+json
	check_eq "derived/probe-multi:1 lists both platforms" \
		"$(run crane manifest --insecure "$a/derived/probe-multi:1" | jq -r '[.manifests[].platform.architecture] | sort | join(",")')" amd64,arm64
	check_eq "derived/probe:1's config: the env set, the volume declared, the base's entrypoint kept" \
		"$(run crane config --insecure "$a/derived/probe:1" | jq -c '[(.config.Env | index("MODE=derived") != null), (.config.Volumes | has("/etc/app")), .config.Entrypoint]')" \
		'[true,true,["/probe"]]'
	check_eq "derived/probe:1's manifest names its base's digest" \
		"$(run crane manifest --insecure "$a/derived/probe:1" | jq -r '.annotations["org.opencontainers.image.base.digest"]')" \
		"$(run crane digest --insecure "$UPSTREAM/library/probe:1")"
	check_eq "derived/probe:1's extra layer: the directory 0777, the file 0640 owned 10/20, the symlink" \
		"$(run crane export --insecure "$a/derived/probe:1" - | tar -tv --numeric-owner | awk '$6 ~ /^(etc\/app|usr\/bin)/ { print $1, $2, $6 }' | tr '\n' ';')" \
		"drwxrwxrwx 0/0 etc/app;-rw-r----- 10/20 etc/app/greeting;lrwxrwxrwx 0/0 usr/bin/probe;"

	# skopeo, containerd and dockerd pull them.
	out=$WORK/out/derive-skopeo
	if skopeo_run copy --quiet --all --src-tls-verify=false "docker://$a/derived/probe-multi:1" "dir:$out"; then
		pass "skopeo copy --all docker://$a/derived/probe-multi:1 dir:…"
		check_eq "skopeo: the copied index is the derived one, byte for byte" "$(sha <"$out/manifest.json")" "$multi"
	else
		fail "skopeo copy --all docker://$a/derived/probe-multi:1 dir:…"
	fi
	if ctr_run images pull --plain-http --snapshotter "$CTR_SNAPSHOTTER" "$a/derived/probe:1" >/dev/null; then
		pass "ctr images pull $a/derived/probe:1"
		check_eq "ctr images ls: derived/probe:1 has the derived digest" \
			"$(ctr_run images ls | awk -v r="$a/derived/probe:1" '$1 == r { print $3 }')" "$probe"
	else
		fail "ctr images pull $a/derived/probe:1"
	fi
	if docker_cli pull -q "$a/derived/probe-multi:1" >/dev/null; then
		pass "docker pull $a/derived/probe-multi:1"
		check_eq "docker: the pulled image has the derived index's digest and the env" \
			"$(docker_cli image inspect --format '{{index .RepoDigests 0}} {{range .Config.Env}}{{.}} {{end}}' "$a/derived/probe-multi:1" | grep -c "@$multi .*MODE=derived")" 1
		docker_cli image rm "$a/derived/probe-multi:1" >/dev/null || true
	else
		fail "docker pull $a/derived/probe-multi:1"
	fi

	# podman runs it: each change as a runtime sees it.
	if out=$(dv_podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		--signature-policy "$WORK/derive/podman/policy.json" --tls-verify=false \
		"$a/derived/probe:1" MODE -- /etc/app /etc/app/greeting /usr/bin/probe); then
		pass "podman run $a/derived/probe:1"
		check_eq "podman run: the env set, /etc/app a directory of 0777, the file 0640 with its content, the symlink" \
			"$(tr '\n' ';' <<<"$out")" 'MODE=derived;/etc/app 0777 dir;/etc/app/greeting 0640 file "hello\n";/usr/bin/probe symlink /probe;'
		check_eq "podman inspect: the volume declared" \
			"$(dv_podman image inspect --format '{{json .Config.Volumes}}' "$a/derived/probe:1")" '{"/etc/app":{}}'
	else
		fail "podman run $a/derived/probe:1"
	fi

	# The base moves: the derived tag follows, the old digest still pulls.
	run crane mutate --insecure -e MOVED=1 -t "$UPSTREAM/library/probe:1" "$UPSTREAM/library/probe:1" >/dev/null
	local moved
	moved=$(run crane digest --insecure "$a/derived/probe:1")
	if [[ -n $moved && $moved != "$probe" ]]; then
		pass "the base tag moved: derived/probe:1 follows ($probe -> $moved)"
	else
		fail "the base tag moved: derived/probe:1 follows" "got: $moved" "was: $probe"
	fi
	check_eq "the new derived image has the base's new env" \
		"$(run crane config --insecure "$a/derived/probe:1" | jq -r '.config.Env | index("MOVED=1") != null')" true
	check "the previous derived digest still pulls whole" crane validate --insecure --remote "$a/derived/probe@$probe"
	check_eq "entrepot ls derived/probe: the tag, pinned, with its base" \
		"$(run "$WORK/bin/entrepot" ls --admin "${DV_ADMIN[a]}" derived/probe | grep -cE '^derived/probe +1 +sha256:.*pinned,base sha256:')" 1

	stop_pid entrepot-a "${DV_PID[a]}"
	stop_pid entrepot-b "${DV_PID[b]}"
}
