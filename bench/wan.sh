# shellcheck shell=bash
# The wan measurement of bench/run.sh (BENCH_ONLY wan): cold pulls from an
# upstream that is far away. A second counting front (bench/cmd/countingproxy
# with --delay, --rate and --total-rate) stands in front of the same
# upstream registry and plays a distant one: every response's headers wait
# a round trip, every response body is capped, and so are all of them
# together. Entrepot and the Distribution proxy use that shaped front as
# their upstream, and "direct" is a client talking to it.
#
# Every round, each case runs once per system, the caches restarted on
# empty stores before each pull (the cases share blobs: the blob image's
# layer is the fetched blob, and the index's images are in both index
# cases), and the clients' own stores empty too (crane writes a new
# layout; containerd is restarted on an empty root before each ctr pull):
#
#   blob-fetch    the blob of library/wan-blob, one sequential GET (fetch)
#   blob-crane    crane pull --format oci of library/wan-blob:1
#   layers-crane  crane pull --format oci of library/wan-layers:1
#   layers-ctr    ctr image pull --plain-http of library/wan-layers:1, with
#                 $WAN_CTR_DOWNLOADS concurrent downloads (CRI's default);
#                 its time includes the unpacking, the same work whatever
#                 served the bytes
#   index-one     crane pull --platform linux/arm64 of library/wan-multi:1
#   index-all     crane pull --format oci of the whole index (every platform)
#
# The cases whose client has work of its own besides fetching
# (WAN_FLOOR_CASES: crane writes the layout, ctr ingests and unpacks) are
# also timed through Entrepot warm (system entrepot-warm), right after their
# cold pull there and on the same store: the cache holds every blob, so the
# link plays no part, and what is left is the client's own cost, the floor
# no cache can go under.
#
# Figures: seconds, the blob bytes the shaped front sent as a multiple of
# the bytes the case needs (upstream_x), how many blob GETs it answered
# (a cache that fetches a blob in ranged parts asks more than once), and
# how many requests of any kind (upstream_requests: 0 for a warm pull the
# cache answered from its store).
# $WORK/wan.json (meta.json's wan) records the shaping, the sizes and
# containerd's version.

BENCH_WAN_DELAY=${BENCH_WAN_DELAY:-25ms}
BENCH_WAN_RATE=${BENCH_WAN_RATE:-32MiB}
BENCH_WAN_TOTAL=${BENCH_WAN_TOTAL:-256MiB}
WAN_BLOB_MIB=$((BENCH_QUICK == 1 ? 64 : 256))
WAN_LAYERS=12
WAN_LAYER_MIB=8
WAN_INDEX_LAYERS=4
# The kubelet's pulls go through CRI, whose max_concurrent_downloads is 3;
# ctr alone would not bound them.
WAN_CTR_DOWNLOADS=3
WAN_CASES=(blob-fetch blob-crane layers-crane layers-ctr index-one index-all)
WAN_FLOOR_CASES=(blob-crane layers-crane layers-ctr)

# wan_base SYSTEM: the base URL a client of SYSTEM uses in this section
# (direct is the shaped front, not the plain one; entrepot-warm is Entrepot).
# shellcheck disable=SC2153 # BASE is run.sh's
wan_base() {
	case $1 in
	direct) echo "$WAN_FRONT" ;;
	entrepot-warm) echo "${BASE[entrepot]}" ;;
	*) echo "${BASE[$1]}" ;;
	esac
}

# wan_floor CASE: whether CASE is also timed through Entrepot warm.
wan_floor() { [[ " ${WAN_FLOOR_CASES[*]} " == *" $1 "* ]]; }

# wan_counts: the shaped front's counts since its last reset, in
# $WORK/wan-counts.json.
wan_counts() {
	sleep 0.5 # the front counts a response once its handler returns
	curl -sf -o "$WORK/wan-counts.json" "$WAN_FRONT/_counts" || die "reading the shaped front's counts failed"
}

# wan_start_front: the shaped front on its own port; sets WAN_FRONT.
wan_start_front() {
	pick_port WAN_FRONT_PORT
	WAN_FRONT=http://127.0.0.1:$WAN_FRONT_PORT
	start_bg wan-front "$WORK/logs/wan-front.log" "$BIN/countingproxy" --listen "127.0.0.1:$WAN_FRONT_PORT" \
		--upstream "http://127.0.0.1:$UP_PORT" \
		--delay "$BENCH_WAN_DELAY" --rate "$BENCH_WAN_RATE" --total-rate "$BENCH_WAN_TOTAL"
	"$BIN/waitready" --url "$WAN_FRONT/v2/" --pid "$BG_PID" --timeout 30s >/dev/null || die "the shaped front did not start"
}

# wan_seed: pushes the section's images to the upstream (bench/cmd/seed
# --set wan) and reads their digests and sizes.
wan_seed() {
	local t0 s=$OUT/wan-seed.json
	t0=$(now_ns)
	timeout 900 "$BIN/seed" --set wan --registry "127.0.0.1:$UP_PORT" --blob-dir "$WORK/wan-blobs" \
		--wan-blob-mib "$WAN_BLOB_MIB" --wan-layers "$WAN_LAYERS" --wan-layer-mib "$WAN_LAYER_MIB" \
		--wan-index-layers "$WAN_INDEX_LAYERS" >"$s" 2>"$WORK/logs/wan-seed.log" ||
		die "seeding the wan images failed: $(tail -n 3 "$WORK/logs/wan-seed.log")"
	log "  seeded in $((($(now_ns) - t0) / 1000000)) ms"
	sed 's/^/    /' "$WORK/logs/wan-seed.log" >&2
	# The blobs are in the upstream now: the files are not needed.
	rm -rf "$WORK/wan-blobs"
	wjq() { jq -r "$1" "$s"; }
	WAN_BLOB_REPO=$(wjq .blob.repo) WAN_BLOB_DIGEST=$(wjq '.blob.layers[0].digest') WAN_BLOB_SIZE=$(wjq '.blob.layers[0].size')
	WAN_LAYERS_REPO=$(wjq .layers.repo) WAN_INDEX_REPO=$(wjq .index.repo)
	# The bytes each case needs, config blobs included (they are blobs
	# too, and count at the front as GET blob).
	declare -gA WAN_NEED=(
		[blob-fetch]=$WAN_BLOB_SIZE
		[blob-crane]=$(wjq .blob.bytes)
		[layers-crane]=$(wjq .layers.bytes)
		[layers-ctr]=$(wjq .layers.bytes)
		[index-one]=$(wjq '.index.images[] | select(.manifest.platform.architecture == "arm64") | .bytes')
		[index-all]=$(wjq .index.bytes)
	)
}

# wan_containerd_fresh: (re)starts containerd on an empty root and state,
# its own socket, no proxies and no CRI; sets CTR_SOCK.
wan_containerd_fresh() {
	local d=$WORK/containerd i
	stop_named containerd
	rm -rf "$d"
	mkdir -p "$d/root" "$d/state" "$d/opt"
	CTR_SOCK=$d/containerd.sock
	cat >"$d/config.toml" <<-EOF
		version = 2
		disabled_plugins = [
		  "io.containerd.grpc.v1.cri",
		  "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.zfs",
		]
		[ttrpc]
		  address = "$CTR_SOCK.ttrpc"
		[debug]
		  address = ""
		[metrics]
		  address = ""
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$d/opt"
	EOF
	# No proxy variables: run.sh unset them for the whole run.
	start_bg containerd "$WORK/logs/containerd.log" containerd --config "$d/config.toml" \
		--address "$CTR_SOCK" --root "$d/root" --state "$d/state"
	for ((i = 0; i < 150; i++)); do
		ctr -a "$CTR_SOCK" version >/dev/null 2>&1 && return 0
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.2
	done
	die "containerd did not start: $(tail -n 3 "$WORK/logs/containerd.log")"
}

# wan_pull CASE SYSTEM: one cold pull of CASE through SYSTEM; sets WAN_S to
# its seconds. Not to be run in a subshell: it (re)starts containerd, which
# the EXIT trap must know of.
wan_pull() {
	local c=$1 sys=$2 base host dir=$WORK/wan-pull t0 t1 f=$WORK/wan-fetch.json
	base=$(wan_base "$sys")
	host=${base#http://}
	rm -rf "$dir"
	[[ $c == layers-ctr ]] && wan_containerd_fresh
	settle
	t0=$(now_ns)
	case $c in
	blob-fetch)
		fetch_json "$f" --url "$base/v2/$WAN_BLOB_REPO/blobs/$WAN_BLOB_DIGEST" --clients 1
		;;
	blob-crane) wan_crane "$sys" "$host/$WAN_BLOB_REPO:1" "$dir" ;;
	layers-crane) wan_crane "$sys" "$host/$WAN_LAYERS_REPO:1" "$dir" ;;
	index-one) wan_crane "$sys" "$host/$WAN_INDEX_REPO:1" "$dir" --platform linux/arm64 ;;
	index-all) wan_crane "$sys" "$host/$WAN_INDEX_REPO:1" "$dir" ;;
	layers-ctr)
		# Its progress table goes nowhere; what it says on failure to
		# the log.
		timeout 600 ctr -a "$CTR_SOCK" -n wan images pull --plain-http \
			--max-concurrent-downloads "$WAN_CTR_DOWNLOADS" "$host/$WAN_LAYERS_REPO:1" \
			>/dev/null 2>>"$WORK/logs/wan-ctr.log" ||
			die "ctr pull via $sys failed: $(tail -n 3 "$WORK/logs/wan-ctr.log")"
		;;
	esac
	t1=$(now_ns)
	rm -rf "$dir"
	if [[ $c == blob-fetch ]]; then
		# The client's own clock: the GET alone, not its start-up.
		WAN_S=$(jq '.wall_s * 10000 | round / 10000' "$f")
	else
		WAN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
	fi
}

# wan_crane SYSTEM REF DIR [FLAG...]: crane pull --format oci of REF into
# the new layout DIR.
wan_crane() {
	local sys=$1 ref=$2 dir=$3
	shift 3
	timeout 600 crane pull --insecure --format oci "$@" "$ref" "$dir" 2>>"$WORK/logs/wan-crane.log" ||
		die "crane pull $* $ref via $sys failed: $(tail -n 3 "$WORK/logs/wan-crane.log")"
}

# wan_check: every image comes whole through every system once, before
# anything is timed (fetch checks the blob's digest, crane every blob's,
# containerd the layers' and their diff IDs when it unpacks).
wan_check() {
	local sys c
	for sys in direct entrepot distribution; do
		[[ $sys == direct ]] || restart_cold "$sys"
		fetch_json "$WORK/check.json" --url "$(wan_base "$sys")/v2/$WAN_BLOB_REPO/blobs/$WAN_BLOB_DIGEST" \
			--digest "$WAN_BLOB_DIGEST"
		for c in blob-crane layers-crane layers-ctr index-one index-all; do
			wan_pull "$c" "$sys"
		done
		if [[ $sys == entrepot ]]; then
			for c in "${WAN_FLOOR_CASES[@]}"; do
				wan_pull "$c" entrepot-warm
			done
		fi
	done
	log "  checked: every image pulls whole through every system"
}

# wan_measure CASE SYSTEM ROUND: one timed pull of CASE through SYSTEM and
# its figures; a cache starts on an empty store first, except entrepot-warm,
# which is Entrepot as the last pull left it.
wan_measure() {
	local c=$1 sys=$2 r=$3
	[[ $sys == direct || $sys == entrepot-warm ]] || restart_cold "$sys"
	curl -sf -X POST "$WAN_FRONT/_counts/reset" >/dev/null || die "resetting the shaped front's counts failed"
	wan_pull "$c" "$sys"
	rec wan "$c" "$sys" "$r" seconds "$WAN_S"
	wan_counts
	rec wan "$c" "$sys" "$r" upstream_x "$(jq --argjson size "${WAN_NEED[$c]}" \
		'(.endpoints["GET blob"].bytes // 0) / $size' "$WORK/wan-counts.json")"
	rec wan "$c" "$sys" "$r" upstream_blob_gets "$(jq '.endpoints["GET blob"].requests // 0' "$WORK/wan-counts.json")"
	rec wan "$c" "$sys" "$r" upstream_requests "$(jq '.requests // 0' "$WORK/wan-counts.json")"
}

# shellcheck disable=SC2034 # CACHE_UPSTREAM: read by start_entrepot and start_distribution (run.sh)
bench_wan() {
	log "8. wan: cold pulls from a shaped upstream (${BENCH_WAN_DELAY} per response, ${BENCH_WAN_RATE}/s each, ${BENCH_WAN_TOTAL}/s in all; ${BENCH_ROUNDS} rounds)"
	wan_start_front
	wan_seed
	# The caches' upstream is the shaped front for this section.
	CACHE_UPSTREAM=$WAN_FRONT
	wan_check
	local r c sys
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for c in "${WAN_CASES[@]}"; do
			for sys in $(rotate "$r" entrepot distribution direct); do
				wan_measure "$c" "$sys" "$r"
				# The floor: the same pull again, the cache now warm.
				if [[ $sys == entrepot ]] && wan_floor "$c"; then
					wan_measure "$c" entrepot-warm "$r"
				fi
			done
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
	stop_named containerd
	stop_named entrepot
	stop_named distribution
	stop_named wan-front
	CACHE_UPSTREAM=$FRONT
	jq -n --arg delay "$BENCH_WAN_DELAY" --arg rate "$BENCH_WAN_RATE" --arg total "$BENCH_WAN_TOTAL" \
		--argjson blob "$WAN_BLOB_SIZE" --argjson layers "$WAN_LAYERS" --argjson layer "$((WAN_LAYER_MIB << 20))" \
		--argjson index_layers "$WAN_INDEX_LAYERS" --argjson downloads "$WAN_CTR_DOWNLOADS" \
		--arg containerd "$(dpkg-query -W -f='${Version}' containerd 2>/dev/null || containerd --version)" \
		'{delay: $delay, rate: $rate, total_rate: $total, blob_bytes: $blob, layers: $layers, layer_bytes: $layer,
		  index_images: 2, index_layers: $index_layers, ctr_max_downloads: $downloads, containerd: $containerd}' \
		>"$WORK/wan.json"
}
