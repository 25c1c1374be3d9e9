# shellcheck shell=bash
# Section 6 of bench/run.sh: Entrepot on a store of 100,000 blobs next to an
# empty one, and on the same store under a bound (--max-size), well above
# its size (the blobs are counted in the background; nothing is evicted) and
# at half of it (eviction removes more than half of the store right after
# the start). Start-up time, the manifest's latency in the first seconds
# (while the store counts and evicts), the same once it is quiet, and how
# fast the eviction went. Every figure goes to $RAW through rec.

# The first seconds after a start: one client, from the first 200 on, for
# BENCH_SCALE_EARLY_SECONDS (40, 20 with BENCH_QUICK=1: a whole eviction
# takes about 45 s here), reported whole and in windows of SCALE_WINDOW_S.
BENCH_SCALE_EARLY_SECONDS=${BENCH_SCALE_EARLY_SECONDS:-$((BENCH_QUICK == 1 ? 20 : 40))}
SCALE_WINDOW_S=5
# The bounds, as multiples of the store's blob bytes: with the bound on,
# the content takes a quarter of it; evicting, twice the bound, and
# eviction takes it down to the low watermark (85 % of the bound, so 42.5 %
# of the content stays).
SCALE_BOUND_X=4
SCALE_EVICT_X=0.5

# blob_bytes DIR: the bytes of the blobs in data directory DIR.
blob_bytes() { find "$1/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'; }

# dur_s GO-DURATION (1m2.5s, 850ms, 23.722s): seconds.
dur_s() {
	LC_ALL=C awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+(h|ms|us|µs|ns|m|s)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u)
			if (u == "h") s += n * 3600; else if (u == "m") s += n * 60; else if (u == "s") s += n
			else if (u == "ms") s += n / 1e3; else if (u == "ns") s += n / 1e9; else s += n / 1e6
		}
		printf "%.6f\n", s
	}'
}

# log_lines: the lines in Entrepot's log so far (where the next start's
# lines begin).
log_lines() { wc -l <"$WORK/logs/entrepot.log" 2>/dev/null || echo 0; }

# log_since FROM: Entrepot's log lines after line FROM.
log_since() { tail -n +"$(($1 + 1))" "$WORK/logs/entrepot.log"; }

# scale_copy: a new copy of the filled store in $SCALE_RUN, on disk before
# anything is timed. Eviction changes the store: each evicting run starts on
# a copy of its own.
scale_copy() {
	local t0
	t0=$(now_ns)
	rm -rf "$SCALE_RUN"
	cp -a "$SCALE_PRISTINE" "$SCALE_RUN"
	settle
	log "  copied the store for the evicting run in $((($(now_ns) - t0) / 1000000)) ms"
}

bench_scale() {
	SCALE_PRISTINE=$WORK/scale-pristine SCALE_RUN=$WORK/scale-run
	local filled=$WORK/scale-filled empty0=$WORK/scale-empty0 noprefetch=()
	((HAS_PREFETCH)) && noprefetch=(--prefetch 0)
	SCALE_URL=${BASE[entrepot]}/v2/$LAYERS_REPO/manifests/$LAYERS_MANIFEST
	log "6. scale: filling a store with 100000 blobs and 10000 tags"
	rm -rf "$SCALE_PRISTINE" "$SCALE_RUN" "$filled" "$empty0"
	timeout 600 "$BIN/fillstore" --data "$SCALE_PRISTINE" --blobs 100000 --tags 10000 --repos 100 \
		--digests "$WORK/fill.digests" >"$WORK/fill.json" || die "fillstore failed"
	log "  filled: $(cat "$WORK/fill.json")"

	# Entrepot must serve the synthetic content as its own. Then both
	# stores get the bench manifest (its layers not prefetched: they
	# would not fit the bound), so that no start below asks the upstream
	# anything.
	start_entrepot "$SCALE_PRISTINE" "${noprefetch[@]}"
	local d tag_digest
	d=$(sed -n 5000p "$WORK/fill.digests")
	curl -sf -o /dev/null -H "$ACCEPT" "${BASE[entrepot]}/v2/library/fill-099/manifests/$d" ||
		die "Entrepot does not serve the synthetic manifest $d"
	# Image i has tag t<i> in repository fill-<i mod 100>: image 4999.
	tag_digest=$(curl -sf -D - -o /dev/null -H "$ACCEPT" "${BASE[entrepot]}/v2/library/fill-099/manifests/t04999" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
	[[ $tag_digest == "$d" ]] || die "synthetic tag t04999 resolves to '$tag_digest', want $d"
	curl -sf -o /dev/null -H "$ACCEPT" "$SCALE_URL" || die "GET $SCALE_URL failed"
	stop_named entrepot
	start_entrepot "$empty0" "${noprefetch[@]}"
	curl -sf -o /dev/null -H "$ACCEPT" "$SCALE_URL" || die "GET $SCALE_URL failed"
	stop_named entrepot
	cp -a "$SCALE_PRISTINE" "$filled"

	local bytes bound evict_at
	bytes=$(blob_bytes "$SCALE_PRISTINE")
	SCALE_BLOB_BYTES=$bytes
	bound=$(awk -v b="$bytes" -v x="$SCALE_BOUND_X" 'BEGIN { printf "%d", b * x }')
	SCALE_EVICT_AT=$(awk -v b="$bytes" -v x="$SCALE_EVICT_X" 'BEGIN { printf "%d", b * x }')
	evict_at=$SCALE_EVICT_AT
	declare -gA SCALE_ARGS=([empty]="" [100k]="" [100k-bound]="--max-size $bound" [100k-evict]="--max-size $evict_at")
	jq -n --argjson bytes "$bytes" --argjson bound "$bound" --argjson evict "$evict_at" \
		--argjson early "$BENCH_SCALE_EARLY_SECONDS" --argjson window "$SCALE_WINDOW_S" \
		'{blob_bytes: $bytes, bound_max_size: $bound, evict_max_size: $evict, early_s: $early, window_s: $window}' \
		>"$WORK/scale.json"
	log "  $bytes bytes of blobs; bound on: --max-size $bound; evicting: --max-size $evict_at"

	log "  start-up (3 per round), the first ${BENCH_SCALE_EARLY_SECONDS} s, then manifest latency: empty, 100k, 100k bound on, 100k evicting (${BENCH_ROUNDS} rounds)"
	front_reset
	local r variant
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for variant in $(rotate "$r" empty 100k 100k-bound 100k-evict); do
			case $variant in
			empty)
				rm -rf "$SCALE_RUN"
				cp -a "$empty0" "$SCALE_RUN"
				scale_variant "$variant" "$r" "$SCALE_RUN"
				;;
			100k-evict)
				scale_copy
				scale_variant "$variant" "$r" "$SCALE_RUN"
				;;
			*) scale_variant "$variant" "$r" "$filled" ;;
			esac
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
	local asked
	asked=$(front_counts | jq .requests)
	((asked == 0)) || log "  warning: the upstream was asked $asked times during the scale runs (the bench manifest was evicted?)"
}

# scale_variant VARIANT ROUND DIR: three starts on DIR (start-up time), the
# third followed by one client for the first seconds, then, once any
# eviction is over, the manifest load runs of a quiet server.
scale_variant() {
	local variant=$1 r=$2 dir=$3 sys=entrepot-$1 i from t0 args=()
	read -ra args <<<"${SCALE_ARGS[$variant]}"
	for i in 1 2 3; do
		settle
		from=$(log_lines)
		t0=$(now_ns)
		start_entrepot "$dir" "${args[@]}"
		rec scale startup "$sys" "$r" startup_ms "$STARTUP_MS"
		((i == 3)) && break
		stop_named entrepot
		# These starts end long before an eviction removes anything;
		# should one have, the next start needs a new copy.
		if [[ $variant == 100k-evict ]] && log_since "$from" | grep -q 'msg=evicted'; then
			log "  an eviction ended within the start-up run: copying the store again"
			scale_copy
		fi
	done

	local f=$WORK/early.json secs=$BENCH_SCALE_EARLY_SECONDS at rps p50 p99
	timeout $((secs + 60)) "$BIN/mload" --url "$SCALE_URL" --method GET --clients 1 \
		--duration "${secs}s" --window "${SCALE_WINDOW_S}s" --requests 50000000 \
		--header "$ACCEPT" --expect-digest "$LAYERS_MANIFEST" \
		>"$f" 2>>"$WORK/logs/mload.log" || log "  warning: $sys early: $(tail -n 1 "$WORK/logs/mload.log")"
	[[ -s $f ]] || die "mload $sys early gave no result"
	rec scale early-1c "$sys" "$r" rps "$(jq .rps "$f")"
	rec scale early-1c "$sys" "$r" p50_ms "$(jq .p50_ms "$f")"
	rec scale early-1c "$sys" "$r" p99_ms "$(jq .p99_ms "$f")"
	rec scale early-1c "$sys" "$r" errors "$(jq .errors "$f")"
	while read -r at rps p50 p99; do
		rec scale "early-1c-at$at" "$sys" "$r" rps "$rps"
		rec scale "early-1c-at$at" "$sys" "$r" p50_ms "$p50"
		rec scale "early-1c-at$at" "$sys" "$r" p99_ms "$p99"
	done < <(jq -r '.windows[] | "\(.from_s | floor) \(.rps) \(.p50_ms) \(.p99_ms)"' "$f")

	[[ $variant == 100k-evict ]] && scale_eviction "$r" "$from" "$t0"
	mload_run scale manifest-1c "$sys" "$r" "$SCALE_URL" GET 1
	mload_run scale manifest-16c "$sys" "$r" "$SCALE_URL" GET 16
	stop_named entrepot
	if [[ $variant == 100k-evict ]]; then
		rec evict 100k "$sys" "$r" left_x "$(awk -v b="$(blob_bytes "$dir")" -v m="$SCALE_EVICT_AT" 'BEGIN { print b / m }')"
	fi
}

# evicted_bytes FROM: the bytes the sweeps logged after line FROM removed.
evicted_bytes() {
	log_since "$1" | sed -n 's/.*msg=evicted .* bytes=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { printf "%d\n", s }'
}

# scale_eviction ROUND FROM T0: waits (at most 300 s) for the eviction the
# start at T0 (Unix ns) began, whose log lines follow line FROM, to have
# removed what takes the store down to the low watermark (85 %, the
# default), and records what it removed, how long its sweeps took by their
# own log lines, and when the last ended. Content first seen by a sweep may
# stay until the next one, so there can be several lines.
scale_eviction() {
	local r=$1 from=$2 t0=$3 i lines need sys=entrepot-100k-evict
	need=$(awk -v b="$SCALE_BLOB_BYTES" -v m="$SCALE_EVICT_AT" 'BEGIN { printf "%d", (b - 0.85 * m) * 0.99 }')
	for ((i = 0; i < 600; i++)); do
		(($(evicted_bytes "$from") >= need)) && break
		sleep 0.5
	done
	((i < 600)) || log "  warning: after 300 s the eviction had removed $(evicted_bytes "$from") of $need bytes"
	((i == 0)) || log "  waited $((i / 2)) s more for the eviction to end"
	lines=$(log_since "$from" | grep 'msg=evicted' || true)
	if [[ -z $lines ]]; then
		log "  warning: no eviction logged"
		return 0
	fi
	# One line a sweep: the removals of all of them, and when the last
	# ended.
	# Objects are the files removed from the content store: blobs
	# (configs and layers) and manifests, as BenchmarkEvict counts them.
	# The sweep that removed the most has its own rate too: the others
	# are mostly their catalog read.
	local objects=0 blobs=0 manifests=0 tags=0 bytes=0 took=0 n=0 line ts end o t main=0 main_s=1
	field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	while read -r line; do
		o=$(($(field blobs) + $(field manifests)))
		t=$(dur_s "$(field took)")
		objects=$((objects + o)) blobs=$((blobs + $(field blobs))) manifests=$((manifests + $(field manifests)))
		tags=$((tags + $(field tags))) bytes=$((bytes + $(field bytes)))
		took=$(awk -v a="$took" -v b="$t" 'BEGIN { print a + b }')
		((o > main)) && main=$o main_s=$t
		ts=$(sed -n 's/^time=\([^ ]*\) .*/\1/p' <<<"$line")
		n=$((n + 1))
	done <<<"$lines"
	end=$(date -d "$ts" +%s%N)
	local rate done_s
	rate=$(awk -v n="$objects" -v t="$took" 'BEGIN { printf "%.1f", n / t }')
	done_s=$(awk -v a="$t0" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	rec evict 100k "$sys" "$r" sweeps "$n"
	rec evict 100k "$sys" "$r" objects "$objects"
	rec evict 100k "$sys" "$r" blobs "$blobs"
	rec evict 100k "$sys" "$r" manifests "$manifests"
	rec evict 100k "$sys" "$r" tags "$tags"
	rec evict 100k "$sys" "$r" bytes "$bytes"
	rec evict 100k "$sys" "$r" took_s "$took"
	rec evict 100k "$sys" "$r" done_s "$done_s"
	rec evict 100k "$sys" "$r" objects_per_s "$rate"
	rec evict 100k "$sys" "$r" main_objects_per_s "$(awk -v n="$main" -v t="$main_s" 'BEGIN { printf "%.1f", n / t }')"
	rec evict 100k "$sys" "$r" main_took_s "$main_s"
	rec evict 100k "$sys" "$r" mib_per_s "$(awk -v n="$bytes" -v t="$took" 'BEGIN { printf "%.4f", n / t / 1048576 }')"
	rec evict 100k "$sys" "$r" gib_per_s "$(awk -v n="$bytes" -v t="$took" 'BEGIN { printf "%.7f", n / t / 1073741824 }')"
	log "  evicted $objects objects ($manifests manifests, $blobs blobs, $bytes bytes) in $n sweep(s) taking $took s: $rate objects/s; ended $done_s s after the start"
}
