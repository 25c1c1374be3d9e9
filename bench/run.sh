#!/usr/bin/env bash
# Benchmark of Entrepot against its anchors, all on 127.0.0.1:
#
#   upstream      the Distribution registry v3 (filesystem storage) behind
#                 bench/cmd/countingproxy, which counts what the caches ask
#                 it ("direct" below means a client talking to this front)
#   entrepot      `entrepot serve --upstream docker.io=http://<front>`
#   distribution  the Distribution registry v3 in proxy mode, same front
#   nginx         nginx serving the same blob files with sendfile
#   entrepot-tls, nginx-tls  the same two over HTTPS, one self-signed
#                 certificate for both (bench/cmd/selfcert), for the tls
#                 measurement only (bench/tls.sh)
#   wan front     a second countingproxy in front of the same upstream that
#                 delays and caps its answers like a distant registry; for
#                 the wan measurement (bench/wan.sh), the caches use it as
#                 their upstream, and containerd (ctr) is one more client
#
# It installs what it needs at pinned versions, seeds the upstream
# (bench/cmd/seed), runs each measurement over several rounds with the
# systems interleaved (in the orders of a Williams design, see rotate), and writes
# bench/results/<UTC timestamp>/{results.md,results.json,ratios.png,raw.jsonl}.
# See bench/README.md for what each measurement means and its target.
#
# Environment:
#   BENCH_ROUNDS            rounds per measurement (default 5; 2 with BENCH_QUICK=1)
#   BENCH_QUICK=1           smaller blobs (64 and 256 MiB, layers of 1-5 MiB), 2 rounds
#   BENCH_ONLY              space-separated subset of: warm manifest cost tls crane cold scale wan
#                           (tls: warm throughput and CPU per GiB over HTTPS, next to plain HTTP;
#                           wan: cold pulls from a shaped, distant-looking upstream)
#   BENCH_MANIFEST_SECONDS  length of each manifest load run (default 2)
#   BENCH_SCALE_EARLY_SECONDS  length of the load run right after each scale start (default 40; 20 with BENCH_QUICK=1)
#   BENCH_WAN_DELAY         wan: delay before each response's headers (default 25ms)
#   BENCH_WAN_RATE          wan: cap on each response body, bytes/s (default 32MiB)
#   BENCH_WAN_TOTAL         wan: cap on all response bodies together, bytes/s (default 256MiB)
#   BENCH_RESULTS           parent folder of the results (default bench/results)
#   BENCH_SKIP_INSTALL=1    install nothing (the tools must be on PATH)
#   BENCH_GOBIN             where go-installed tools go (default $(go env GOPATH)/bin)
#   BENCH_KEEP=1            keep the work directory (stores, logs) after the run
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

command -v go >/dev/null || die "go is not on PATH"

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ $BENCH_QUICK == 1 ]]; then
	BENCH_ROUNDS=${BENCH_ROUNDS:-2}
	SMALL_MIB=64 LARGE_MIB=256 LAYER_MAX_MIB=5
else
	BENCH_ROUNDS=${BENCH_ROUNDS:-5}
	SMALL_MIB=256 LARGE_MIB=1024 LAYER_MAX_MIB=20
fi
BENCH_ONLY=${BENCH_ONLY:-warm manifest cost tls crane cold scale wan}
BENCH_MANIFEST_SECONDS=${BENCH_MANIFEST_SECONDS:-2}
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_GOBIN=${BENCH_GOBIN:-$(go env GOPATH)/bin}
export PATH=$BENCH_GOBIN:$PATH
# Loopback only: no client of ours may go through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy

# Pinned versions (crane's and Distribution's are in scripts/lib.sh); the
# Debian versions are bookworm's.
HEY_VERSION=v0.1.5
NGINX_DEB_VERSION=1.22.1-9+deb12u11
WRK_DEB_VERSION=4.1.0-3+b2
CONTAINERD_DEB_VERSION=1.6.20~ds1-1+deb12u3

# shellcheck source=bench/install.sh
source "$BENCH_DIR/install.sh"

in_only() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

RUN_START=$(now_ns)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH_RESULTS/$STAMP
WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-bench.XXXXXX")
# nginx's workers may run as another user: they must reach the blob files.
chmod 755 "$WORK"
mkdir -p "$OUT" "$WORK/bin" "$WORK/logs"
RAW=$OUT/raw.jsonl
: >"$RAW"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	if ((rc != 0)); then
		log "failed (exit $rc); last lines of the server logs:"
		local f
		for f in "$WORK"/logs/*.log; do
			[[ -s $f ]] || continue
			echo "---- $f" >&2
			tail -n 15 "$f" >&2
		done
	fi
	if [[ $BENCH_KEEP == 1 ]]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ ${BENCH_SKIP_INSTALL:-0} == 1 ]] || install_all

log "building Entrepot and the benchmark's programs"
(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/entrepot" ./cmd/entrepot) || die "go build ./cmd/entrepot failed"
for p in countingproxy seed fetch mload procmon waitready fillstore report selfcert; do
	(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/$p" "./bench/cmd/$p") || die "go build ./bench/cmd/$p failed"
done
BIN=$WORK/bin
# What this build of Entrepot offers, from its help (held in a variable:
# grep -q on a pipe may end the writer early, and pipefail then says no).
ENTREPOT_HELP=$({ "$BIN/entrepot" --help; "$BIN/entrepot" serve --help; } 2>&1 || true)
# Entrepot fills a fetched manifest's blobs in the background by default
# (--prefetch N, when this build has it): the crane measurement also runs it
# with --prefetch 0, and the scale measurement primes its stores with it.
HAS_PREFETCH=0
[[ $ENTREPOT_HELP == *--prefetch* ]] && HAS_PREFETCH=1
# Builds with an admin API listen on 127.0.0.1:5001 unless told: a free
# port each, so that instances never collide (the flag is in serve's help
# in later builds, in the top-level help in earlier ones).
ADMIN_FLAG=()
[[ $ENTREPOT_HELP == *--admin-listen* ]] && ADMIN_FLAG=(--admin-listen 127.0.0.1:0)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# rec SECTION CASE SYSTEM ROUND METRIC VALUE: one raw figure.
rec() {
	[[ $6 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "rec $*: not a number"
	printf '{"section":"%s","case":"%s","system":"%s","round":%d,"metric":"%s","value":%s}\n' "$@" >>"$RAW"
}

# rotate ROUND ITEM...: the items in the order of row ROUND of a Williams
# design: over as many rounds as there are items (twice as many for an odd
# count, whose second half runs the rows backwards), each item runs first
# once and right after each of the others equally often. Rotating the list
# would not do: it keeps every item behind the same neighbour, and a system
# that always runs right after the heaviest one (the upstream direct, two
# processes copying every byte) is always measured in that one's wake.
rotate() {
	local r=$(($1 - 1)) n=$(($# - 1)) items=("${@:2}") j k order=()
	for ((j = 0; j < n; j++)); do
		# offsets 0, 1, n-1, 2, n-2, ...
		if ((j % 2)); then k=$(((j + 1) / 2)); else k=$(((n - j / 2) % n)); fi
		order+=("${items[(r + k) % n]}")
	done
	if ((n % 2 && r / n % 2)); then
		for ((j = n - 1; j >= 0; j--)); do printf '%s\n' "${order[j]}"; done
	else
		printf '%s\n' "${order[@]}"
	fi
}

# ---- servers -------------------------------------------------------------

pick_port UP_PORT
pick_port FRONT_PORT
pick_port E_PORT
pick_port D_PORT
pick_port N_PORT
pick_port ET_PORT
pick_port NT_PORT
FRONT=http://127.0.0.1:$FRONT_PORT
# The front the caches use as their upstream: the counting front, except
# in the wan measurement (bench/wan.sh), which points them at its shaped one.
CACHE_UPSTREAM=$FRONT
declare -A BASE=(
	[direct]=$FRONT
	[entrepot]=http://127.0.0.1:$E_PORT
	[distribution]=http://127.0.0.1:$D_PORT
	[nginx]=http://127.0.0.1:$N_PORT
	[entrepot-noprefetch]=http://127.0.0.1:$E_PORT
	[entrepot-tls]=https://127.0.0.1:$ET_PORT
	[nginx-tls]=https://127.0.0.1:$NT_PORT
)
# The tls measurement's certificate, key and the authority its clients
# trust (bench/cmd/selfcert writes them there).
TLS_DIR=$WORK/tls

# registry_config FILE ROOTDIR PORT [PROXY_URL]: a Distribution config with
# filesystem storage, quiet logs (no access log, as nginx has none).
registry_config() {
	cat >"$1" <<-EOF
		version: 0.1
		log:
		  level: error
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $2
		  cache:
		    blobdescriptor: inmemory
		  delete:
		    enabled: true
		  maintenance:
		    uploadpurging:
		      enabled: false
		http:
		  addr: 127.0.0.1:$3
		  secret: entrepot-bench-only
	EOF
	if [[ -n ${4:-} ]]; then
		printf 'proxy:\n  remoteurl: %s\n' "$4" >>"$1"
	fi
}

# start_registry NAME CONFIG PORT: sets BG_PID and STARTUP_MS.
start_registry() {
	local t0
	t0=$(now_ns)
	# OTEL_*: no tracing exporter, so the registry dials nothing.
	start_bg "$1" "$WORK/logs/$1.log" env OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true registry serve "$2"
	STARTUP_MS=$("$BIN/waitready" --url "http://127.0.0.1:$3/v2/" --since-ns "$t0" --pid "$BG_PID" --timeout 60s) ||
		die "$1 did not start"
}

# start_entrepot DATA [FLAG...]: Entrepot on DATA with its default
# settings (plus FLAGs); sets E_PID and STARTUP_MS (to the first 200 on /v2/).
start_entrepot() {
	local t0 data=$1
	shift
	t0=$(now_ns)
	start_bg entrepot "$WORK/logs/entrepot.log" "$BIN/entrepot" serve --listen "127.0.0.1:$E_PORT" \
		--data "$data" --upstream "docker.io=$CACHE_UPSTREAM" "${ADMIN_FLAG[@]}" "$@"
	E_PID=$BG_PID
	STARTUP_MS=$("$BIN/waitready" --url "${BASE[entrepot]}/v2/" --since-ns "$t0" --pid "$E_PID" --timeout 60s) ||
		die "entrepot did not start"
}

# start_distribution DATA: the Distribution proxy on DATA; sets D_PID.
start_distribution() {
	registry_config "$WORK/distribution.yml" "$1" "$D_PORT" "$CACHE_UPSTREAM"
	start_registry distribution "$WORK/distribution.yml" "$D_PORT"
	D_PID=$BG_PID
}

# restart_cold SYSTEM: restarts a cache on a new, empty data directory.
restart_cold() {
	case $1 in
	entrepot)
		stop_named entrepot
		rm -rf "$WORK/entrepot-data"
		start_entrepot "$WORK/entrepot-data"
		;;
	entrepot-noprefetch)
		stop_named entrepot
		rm -rf "$WORK/entrepot-data"
		start_entrepot "$WORK/entrepot-data" --prefetch 0
		;;
	distribution)
		stop_named distribution
		rm -rf "$WORK/distribution-data"
		start_distribution "$WORK/distribution-data"
		;;
	esac
}

# start_nginx NAME PORT [tls|ktls]: nginx on PORT serving the blob files
# (and the manifest) from its own folder $WORK/NAME; sets BG_PID. With tls,
# HTTPS with the certificate of $TLS_DIR; ktls also asks OpenSSL for kernel
# TLS, so that sendfile carries on under TLS where the kernel and OpenSSL
# allow it (bench/tls.sh tells whether it did). Fails when nginx does not
# answer on /v2/.
start_nginx() {
	local name=$1 port=$2 mode=${3:-} d=$WORK/$1
	mkdir -p "$d/tmp"
	local user="" listen="listen 127.0.0.1:$port;" ssl=""
	[[ $(id -u) == 0 ]] && user="user root;"
	if [[ -n $mode ]]; then
		listen="listen 127.0.0.1:$port ssl;"
		ssl="ssl_certificate $TLS_DIR/cert.pem; ssl_certificate_key $TLS_DIR/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"
		[[ $mode == ktls ]] && ssl+=" ssl_conf_command Options KTLS;"
	fi
	cat >"$d/nginx.conf" <<-EOF
		$user
		worker_processes auto;
		daemon off;
		pid $d/nginx.pid;
		error_log $WORK/logs/$name.log warn;
		events { worker_connections 4096; }
		http {
		  access_log off;
		  sendfile on;
		  tcp_nopush on;
		  keepalive_requests 1000000;
		  client_body_temp_path $d/tmp/body;
		  proxy_temp_path $d/tmp/proxy;
		  fastcgi_temp_path $d/tmp/fastcgi;
		  uwsgi_temp_path $d/tmp/uwsgi;
		  scgi_temp_path $d/tmp/scgi;
		  types { }
		  default_type application/octet-stream;
		  server {
		    $listen
		    $ssl
		    location ~ "^/v2/.+/blobs/sha256:(?<hex>[0-9a-f]{64})\$" {
		      alias $WORK/blobs/\$hex;
		    }
		    location ~ "^/v2/.+/manifests/sha256:(?<hex>[0-9a-f]{64})\$" {
		      default_type application/vnd.oci.image.manifest.v1+json;
		      add_header Docker-Content-Digest sha256:\$hex;
		      alias $WORK/manifests/\$hex;
		    }
		    location = /v2/ { return 200 "{}"; }
		  }
		}
	EOF
	start_bg "$name" "$WORK/logs/$name.log" nginx -p "$d" -c "$d/nginx.conf"
	"$BIN/waitready" --url "${BASE[$name]}/v2/" --ca "$TLS_DIR/ca.pem" --pid "$BG_PID" --timeout 30s >/dev/null
}

log "work directory $WORK; results in $OUT"
mkdir -p "$WORK/upstream"
registry_config "$WORK/upstream.yml" "$WORK/upstream" "$UP_PORT"
start_registry upstream "$WORK/upstream.yml" "$UP_PORT"
UP_PID=$BG_PID
start_bg countingproxy "$WORK/logs/countingproxy.log" "$BIN/countingproxy" --listen "127.0.0.1:$FRONT_PORT" --upstream "http://127.0.0.1:$UP_PORT"
FRONT_PID=$BG_PID
"$BIN/waitready" --url "$FRONT/v2/" --pid "$BG_PID" --timeout 30s >/dev/null || die "countingproxy did not start"

log "seeding the upstream: ${SMALL_MIB} MiB, ${LARGE_MIB} MiB and 40 layers of 1-${LAYER_MAX_MIB} MiB"
t0=$(now_ns)
timeout 900 "$BIN/seed" --registry "127.0.0.1:$UP_PORT" --blob-dir "$WORK/blobs" \
	--small-mib "$SMALL_MIB" --large-mib "$LARGE_MIB" --layers 40 --layer-max-mib "$LAYER_MAX_MIB" \
	>"$OUT/seed.json" 2>"$WORK/logs/seed.log" || die "seeding failed: $(tail -n 3 "$WORK/logs/seed.log")"
log "seeded in $((($(now_ns) - t0) / 1000000)) ms"
sed 's/^/  /' "$WORK/logs/seed.log" >&2
chmod -R a+rX "$WORK/blobs"

jqs() { jq -r "$1" "$OUT/seed.json"; }
SMALL_REPO=$(jqs .small.repo) SMALL_DIGEST=$(jqs '.small.layers[0].digest') SMALL_SIZE=$(jqs '.small.layers[0].size')
LARGE_REPO=$(jqs .large.repo) LARGE_DIGEST=$(jqs '.large.layers[0].digest') LARGE_SIZE=$(jqs '.large.layers[0].size')
LAYERS_REPO=$(jqs .layers.repo) LAYERS_MANIFEST=$(jqs .layers.manifest.digest)
MANIFEST_TYPE=$(jqs .layers.manifest.mediaType)
ACCEPT="Accept: $MANIFEST_TYPE, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

# blob_url SYSTEM small|large
blob_url() {
	if [[ $2 == small ]]; then
		echo "${BASE[$1]}/v2/$SMALL_REPO/blobs/$SMALL_DIGEST"
	else
		echo "${BASE[$1]}/v2/$LARGE_REPO/blobs/$LARGE_DIGEST"
	fi
}

# fetch_json OUTFILE ARGS...: one bounded fetch run; its JSON in OUTFILE.
fetch_json() {
	local out=$1
	shift
	timeout 900 "$BIN/fetch" --timeout 600s "$@" >"$out" 2>>"$WORK/logs/fetch.log" ||
		die "fetch $* failed: $(tail -n 2 "$WORK/logs/fetch.log")"
}

front_counts() { curl -sf "$FRONT/_counts"; }
front_reset() { curl -sf -X POST "$FRONT/_counts/reset" >/dev/null; }

# crane_pull SYSTEM [PIDS]: pulls the 40-layer image as an OCI layout;
# prints seconds. With PIDS, the CPU seconds of those processes and of crane
# go to $WORK/cpu-crane.json (procmon).
crane_pull() {
	local dir=$WORK/pull-$1 t0 t1 host=${BASE[$1]#http://} mon=()
	[[ -n ${2:-} ]] && mon=("$BIN/procmon" --pids "$2" --out "$WORK/cpu-crane.json" --)
	rm -rf "$dir"
	t0=$(now_ns)
	timeout 600 "${mon[@]}" crane pull --insecure --format oci "$host/$LAYERS_REPO:1" "$dir" 2>>"$WORK/logs/crane.log" ||
		die "crane pull via $1 failed: $(tail -n 3 "$WORK/logs/crane.log")"
	t1=$(now_ns)
	rm -rf "$dir"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}

# warm_cache SYSTEM: one full pull of everything through a cache, each
# blob checked against its digest.
warm_cache() {
	local f=$WORK/warm.json
	fetch_json "$f" --url "$(blob_url "$1" small)" --digest "$SMALL_DIGEST"
	fetch_json "$f" --url "$(blob_url "$1" large)" --digest "$LARGE_DIGEST"
	crane_pull "$1" >/dev/null
	local ref
	for ref in 1 "$LAYERS_MANIFEST"; do
		curl -sf -o /dev/null -H "$ACCEPT" "${BASE[$1]}/v2/$LAYERS_REPO/manifests/$ref" || die "GET manifest $ref via $1 failed"
		curl -sf -o /dev/null -I -H "$ACCEPT" "${BASE[$1]}/v2/$LAYERS_REPO/manifests/$ref" || die "HEAD manifest $ref via $1 failed"
	done
}

# nginx serves the 40-layer image's manifest by digest too, as a static
# file: the floor for answering a small request on this machine.
mkdir -p "$WORK/manifests"
curl -sf -H "$ACCEPT" -o "$WORK/manifests/${LAYERS_MANIFEST#sha256:}" "$FRONT/v2/$LAYERS_REPO/manifests/$LAYERS_MANIFEST" ||
	die "fetching the 40-layer manifest failed"
[[ "sha256:$(sha256sum "$WORK/manifests/${LAYERS_MANIFEST#sha256:}" | cut -d' ' -f1)" == "$LAYERS_MANIFEST" ]] ||
	die "the 40-layer manifest does not match its digest"
chmod -R a+rX "$WORK/manifests"
# The authority and certificate exist before any server starts (waitready
# is handed the authority, which only https URLs use).
timeout 60 "$BIN/selfcert" --dir "$TLS_DIR" || die "selfcert failed"
start_nginx nginx "$N_PORT" || die "nginx did not start"
N_PID=$BG_PID
# Check that every blob server serves the right bytes once.
for sys in nginx direct; do
	fetch_json "$WORK/check.json" --url "$(blob_url $sys small)" --digest "$SMALL_DIGEST"
	fetch_json "$WORK/check.json" --url "$(blob_url $sys large)" --digest "$LARGE_DIGEST"
done

# shellcheck source=bench/measure.sh
source "$BENCH_DIR/measure.sh"
# shellcheck source=bench/scale.sh
source "$BENCH_DIR/scale.sh"
# shellcheck source=bench/tls.sh
source "$BENCH_DIR/tls.sh"
# shellcheck source=bench/wan.sh
source "$BENCH_DIR/wan.sh"

if in_only warm || in_only manifest || in_only cost || in_only tls; then
	log "starting the caches on empty stores and warming them (one full pull each)"
	restart_cold entrepot
	restart_cold distribution
	warm_cache entrepot
	warm_cache distribution
fi
in_only warm && bench_warm
in_only manifest && bench_manifest
in_only cost && bench_cost
in_only tls && bench_tls
in_only crane && bench_crane
in_only cold && bench_cold
stop_named entrepot
stop_named distribution
in_only scale && bench_scale
in_only wan && bench_wan

# ---- the report ----------------------------------------------------------

ELAPSED_S=$((($(now_ns) - RUN_START) / 1000000000))
jq -n \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg nproc "$(nproc)" \
	--arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
	--arg kernel "$(uname -r)" \
	--arg mem "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
	--arg go "$(go env GOVERSION)" \
	--arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg dirty "$(git -C "$ROOT" status --porcelain -- cmd internal 2>/dev/null | wc -l)" \
	--arg nginx "$(nginx -v 2>&1 | sed 's/.*nginx\///')" \
	--arg wrk "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo unknown)" \
	--arg crane "$CRANE_VERSION" --arg distribution "$DISTRIBUTION_VERSION" --arg hey "$HEY_VERSION" \
	--argjson rounds "$BENCH_ROUNDS" --argjson quick "$BENCH_QUICK" \
	--argjson small "$SMALL_SIZE" --argjson large "$LARGE_SIZE" \
	--argjson manifest_seconds "$BENCH_MANIFEST_SECONDS" \
	--argjson elapsed "$ELAPSED_S" \
	--arg only "$BENCH_ONLY" \
	--argjson has_prefetch "$HAS_PREFETCH" \
	--arg load_start "$LOADAVG_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--slurpfile seed "$OUT/seed.json" \
	--argjson fill "$(cat "$WORK/fill.json" 2>/dev/null || echo null)" \
	--argjson scale "$(cat "$WORK/scale.json" 2>/dev/null || echo null)" \
	--argjson tls "$(cat "$WORK/tls.json" 2>/dev/null || echo null)" \
	--argjson wan "$(cat "$WORK/wan.json" 2>/dev/null || echo null)" \
	'{date: $date, machine: {nproc: $nproc, cpu: $cpu, kernel: $kernel, memory: $mem},
	  loadavg: {start: $load_start, end: $load_end},
	  go: $go, entrepot_commit: $commit, entrepot_uncommitted_files: ($dirty | tonumber),
	  entrepot_prefetch_flag: ($has_prefetch == 1),
	  versions: {nginx: $nginx, wrk: $wrk, crane: $crane, distribution: $distribution, hey: $hey},
	  rounds: $rounds, quick: ($quick == 1), only: $only, manifest_seconds: $manifest_seconds,
	  small_blob_bytes: $small, large_blob_bytes: $large, elapsed_s: $elapsed,
	  seed: $seed[0], fill: $fill, scale: $scale, tls: $tls, wan: $wan}' >"$OUT/meta.json"

"$BIN/report" --raw "$RAW" --meta "$OUT/meta.json" --out "$OUT" || die "report failed"
log "done in ${ELAPSED_S} s: $OUT/results.md"
cat "$OUT/results.md"
