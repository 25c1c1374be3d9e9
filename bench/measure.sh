# shellcheck shell=bash
# The measurements of bench/run.sh, one function each. Every load run is
# bounded in time (timeout, and each tool's own limit) and in count; every
# figure goes to $RAW through rec. Systems run interleaved, in an order that
# changes every round (rotate, in bench/run.sh).

# settle: writes of the previous step (a cache's fill, a pull's layout)
# reach the disk before the next timed step starts.
settle() { sync; }

# ---- 1. warm blob throughput ---------------------------------------------

bench_warm() {
	log "1. warm blob throughput (${BENCH_ROUNDS} rounds)"
	local r size c sys n mib p passes f=$WORK/m.json
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for size in small large; do
			mib=$SMALL_MIB
			[[ $size == large ]] && mib=$LARGE_MIB
			for c in 1 16; do
				# One client pulls the blob over and over on its
				# connection, 2 GiB in all: one short GET alone is
				# too noisy to time. A lone stream is also the
				# figure that swings most with the machine's other
				# tenants, so it runs three times a round, each
				# time in another order.
				n=1 passes=1
				((c == 1 && mib < 2048)) && n=$((2048 / mib))
				((c == 1)) && passes=3
				for ((p = 1; p <= passes; p++)); do
					for sys in $(rotate "$(((r - 1) * passes + p))" entrepot nginx distribution direct); do
						fetch_json "$f" --url "$(blob_url "$sys" "$size")" --clients "$c" --requests "$n"
						rec warm "$size-${c}c" "$sys" "$r" mbps "$(jq .mbps "$f")"
					done
				done
			done
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
}

# ---- 3. manifests --------------------------------------------------------

# mload_run SECTION CASE SYSTEM ROUND URL METHOD CLIENTS [SECONDS]: one bounded
# load run of mload; records rps, p50_ms, p99_ms and errors.
mload_run() {
	local section=$1 case=$2 sys=$3 r=$4 url=$5 method=$6 c=$7 secs=${8:-$BENCH_MANIFEST_SECONDS}
	local f=$WORK/mload.json
	timeout $((secs + 60)) "$BIN/mload" --url "$url" --method "$method" --clients "$c" \
		--duration "${secs}s" --requests 5000000 --header "$ACCEPT" --expect-digest "$LAYERS_MANIFEST" \
		>"$f" 2>>"$WORK/logs/mload.log" || log "  warning: $sys $case: $(tail -n 1 "$WORK/logs/mload.log")"
	[[ -s $f ]] || die "mload $sys $case gave no result"
	rec "$section" "$case" "$sys" "$r" rps "$(jq .rps "$f")"
	rec "$section" "$case" "$sys" "$r" p50_ms "$(jq .p50_ms "$f")"
	rec "$section" "$case" "$sys" "$r" p99_ms "$(jq .p99_ms "$f")"
	rec "$section" "$case" "$sys" "$r" errors "$(jq .errors "$f")"
}

# to_ms VALUE-WITH-UNIT (wrk's 845.12us, 2.40ms, 1.02s): milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
		else if (v ~ /m$/) { sub(/m$/, "", v); print v * 60000 }
		else { sub(/s$/, "", v); print v * 1000 }
	}'
}

# crosscheck_run CASE SYSTEM ROUND URL: GET by digest at 64 clients with wrk
# and with hey, to show how much the client itself limits the figures.
crosscheck_run() {
	local case=$1 sys=$2 r=$3 url=$4 out=$WORK/cross.txt secs=$BENCH_MANIFEST_SECONDS
	timeout $((secs + 60)) wrk -t2 -c64 -d"${secs}s" --latency -H "$ACCEPT" "$url" >"$out" 2>&1 ||
		die "wrk via $sys failed: $(tail -n 3 "$out")"
	grep -q 'Non-2xx' "$out" && log "  warning: wrk via $sys: $(grep 'Non-2xx' "$out")"
	rec manifest "$case-wrk" "$sys" "$r" rps "$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
	rec manifest "$case-wrk" "$sys" "$r" p50_ms "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
	rec manifest "$case-wrk" "$sys" "$r" p99_ms "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
	timeout $((secs + 60)) hey -z "${secs}s" -c 64 -H "$ACCEPT" "$url" >"$out" 2>&1 ||
		die "hey via $sys failed: $(tail -n 3 "$out")"
	local bad
	bad=$(awk '$1 ~ /^\[[0-9]+\]$/ && $1 != "[200]" { n += $2 } END { print n + 0 }' "$out")
	((bad == 0)) || log "  warning: hey via $sys: $bad answers not 200"
	rec manifest "$case-hey" "$sys" "$r" rps "$(awk '/Requests\/sec:/ { print $2 }' "$out")"
	rec manifest "$case-hey" "$sys" "$r" p50_ms "$(awk '$1 ~ /^50%/ && $2 == "in" { print $3 * 1000 }' "$out")"
	rec manifest "$case-hey" "$sys" "$r" p99_ms "$(awk '$1 ~ /^99%/ && $2 == "in" { print $3 * 1000 }' "$out")"
}

bench_manifest() {
	log "3. manifests: HEAD and GET by tag and digest, 1/16/64 clients, ${BENCH_MANIFEST_SECONDS} s each (${BENCH_ROUNDS} rounds)"
	local r method ref c sys refval systems
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for method in HEAD GET; do
			for ref in tag digest; do
				refval=1 systems=(entrepot distribution)
				[[ $ref == digest ]] && refval=$LAYERS_MANIFEST systems+=(nginx)
				for c in 1 16 64; do
					for sys in $(rotate "$r" "${systems[@]}"); do
						mload_run manifest "$method-$ref-${c}c" "$sys" "$r" \
							"${BASE[$sys]}/v2/$LAYERS_REPO/manifests/$refval" "$method" "$c"
					done
				done
			done
		done
		for sys in $(rotate "$r" entrepot distribution nginx); do
			crosscheck_run GET-digest-64c "$sys" "$r" "${BASE[$sys]}/v2/$LAYERS_REPO/manifests/$LAYERS_MANIFEST"
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
}

# ---- 5. cost -------------------------------------------------------------

bench_cost() {
	log "5. cost: warm pulls, 1 and 50 clients of the ${SMALL_MIB} MiB blob, 50 of the ${LARGE_MIB} MiB one (${BENCH_ROUNDS} rounds)"
	local r sys pid children f=$WORK/m.json cost=$WORK/cost.json cs size c
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		# Memory that grows with the blob or with the clients shows
		# between these cases; a fixed buffer per stream does not.
		for cs in small-1c small-50c large-50c; do
			size=${cs%-*} c=${cs#*-}
			c=${c%c}
			for sys in $(rotate "$r" entrepot distribution nginx); do
				children=()
				case $sys in
				entrepot) pid=$E_PID ;;
				distribution) pid=$D_PID ;;
				nginx) pid=$N_PID children=(--children) ;;
				esac
				settle
				timeout 900 "$BIN/procmon" --pids "$pid" "${children[@]}" --out "$cost" -- \
					"$BIN/fetch" --timeout 600s --url "$(blob_url "$sys" "$size")" --clients "$c" \
					>"$f" 2>>"$WORK/logs/fetch.log" || die "cost run via $sys failed: $(tail -n 2 "$WORK/logs/fetch.log")"
				local peak
				peak=$(jq 'if .hwm_reset then .hwm_sum_mib else .peak_rss_mib end' "$cost")
				rec cost "$cs" "$sys" "$r" peak_rss_mib "$peak"
				rec cost "$cs" "$sys" "$r" sampled_rss_mib "$(jq .peak_rss_mib "$cost")"
				rec cost "$cs" "$sys" "$r" cpu_s_per_gib "$(jq -n --slurpfile c "$cost" --slurpfile m "$f" '$c[0].cpu_s / ($m[0].bytes / 1073741824)')"
				rec cost "$cs" "$sys" "$r" mbps "$(jq .mbps "$f")"
			done
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
}

# ---- 4. the 40-layer image with crane ------------------------------------

# upstream_x BYTES: upstream blob bytes (GET blob at the front) since the
# last front_reset, as a multiple of BYTES.
upstream_x() {
	sleep 0.3 # the front counts a response once its handler returns
	front_counts | jq --argjson size "$1" '(.endpoints["GET blob"].bytes // 0) / $size'
}

bench_crane() {
	local image_bytes
	image_bytes=$(jqs '[.layers.layers[].size] | add + 0')
	log "4. crane pull --format oci of the 40-layer image ($((image_bytes >> 20)) MiB), cold then warm (${BENCH_ROUNDS} rounds)"
	local r sys s pids systems=(entrepot distribution direct)
	((HAS_PREFETCH)) && systems+=(entrepot-noprefetch)
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for sys in $(rotate "$r" "${systems[@]}"); do
			[[ $sys == direct ]] || restart_cold "$sys"
			settle
			front_reset
			pids=$UP_PID,$FRONT_PID
			case $sys in
			entrepot*) pids+=,$E_PID ;;
			distribution) pids+=,$D_PID ;;
			esac
			s=$(crane_pull "$sys" "$pids")
			rec crane cold "$sys" "$r" seconds "$s"
			rec crane cold "$sys" "$r" upstream_x "$(upstream_x "$image_bytes")"
			rec crane cold "$sys" "$r" cpu_s "$(jq '.cpu_s + .command_cpu_s' "$WORK/cpu-crane.json")"
			rec crane cold "$sys" "$r" busy "$(jq --argjson n "$(nproc)" '(.cpu_s + .command_cpu_s) / (.wall_s * $n)' "$WORK/cpu-crane.json")"
			settle
			s=$(crane_pull "$sys")
			rec crane warm "$sys" "$r" seconds "$s"
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
}

# ---- 2. cold large blob --------------------------------------------------

bench_cold() {
	log "2. cold ${SMALL_MIB} MiB blob: 1 client, then 20 concurrent clients (${BENCH_ROUNDS} rounds)"
	local r sys cache_pid f=$WORK/m.json
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for sys in $(rotate "$r" entrepot distribution direct); do
			[[ $sys == direct ]] || restart_cold "$sys"
			settle
			front_reset
			# CPU seconds during the pull: of the upstream side (the
			# registry and the counting front), and of the cache.
			cache_pid=$E_PID
			[[ $sys == distribution ]] && cache_pid=$D_PID
			[[ $sys == direct ]] && cache_pid=$FRONT_PID # a placeholder: not recorded
			timeout 900 "$BIN/procmon" --pids "$UP_PID,$FRONT_PID" --out "$WORK/cpu-up.json" -- \
				"$BIN/procmon" --pids "$cache_pid" --out "$WORK/cpu-cache.json" -- \
				"$BIN/fetch" --timeout 600s --url "$(blob_url "$sys" small)" --clients 1 \
				>"$f" 2>>"$WORK/logs/fetch.log" || die "cold pull via $sys failed: $(tail -n 2 "$WORK/logs/fetch.log")"
			rec cold small-1c "$sys" "$r" upstream_cpu_s "$(jq .cpu_s "$WORK/cpu-up.json")"
			rec cold small-1c "$sys" "$r" client_cpu_s "$(jq .command_cpu_s "$WORK/cpu-cache.json")"
			[[ $sys == direct ]] || rec cold small-1c "$sys" "$r" cache_cpu_s "$(jq .cpu_s "$WORK/cpu-cache.json")"
			rec cold small-1c "$sys" "$r" ttfb_ms "$(jq '.ttfb_median_s * 1000' "$f")"
			rec cold small-1c "$sys" "$r" total_s "$(jq .wall_s "$f")"
			rec cold small-1c "$sys" "$r" upstream_x "$(upstream_x "$SMALL_SIZE")"

			[[ $sys == direct ]] || restart_cold "$sys"
			settle
			front_reset
			fetch_json "$f" --url "$(blob_url "$sys" small)" --clients 20
			rec cold20 small-20c "$sys" "$r" wall_s "$(jq .wall_s "$f")"
			rec cold20 small-20c "$sys" "$r" ttfb_ms "$(jq '.ttfb_median_s * 1000' "$f")"
			rec cold20 small-20c "$sys" "$r" upstream_x "$(upstream_x "$SMALL_SIZE")"
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
}
