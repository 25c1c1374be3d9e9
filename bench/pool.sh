#!/usr/bin/env bash
# bench/pool.sh RESULTS_DIR...: the warm-throughput figures of several runs
# together. One run's ratio for a lone client moves by a few percent with
# the machine's other tenants; pooled, the runs show where it sits.
#
# Two tables:
#   - pooled: per case and system, the median of every figure of every run,
#     and Entrepot's median over each anchor's;
#   - paired: per case and anchor, each Entrepot figure over the anchor's
#     figure of the same run, round and pass, with the median and the
#     quartiles (nearest rank) of those ratios. Pairing takes out the drift
#     between rounds and runs.
#
# The runs must have measured the same blob sizes (a quick run's "small" is
# not a full run's).
#
#   bench/pool.sh bench/results/20261122T164628Z bench/results/20261122T175828Z
set -euo pipefail

die() {
	echo "bench/pool.sh: $*" >&2
	exit 1
}

(($# > 0)) || {
	echo "usage: bench/pool.sh RESULTS_DIR..." >&2
	exit 2
}

declare -A seen
runs=() sizes=""
for d in "$@"; do
	d=${d%/}
	[[ -s $d/raw.jsonl && -s $d/meta.json ]] || die "$d has no raw.jsonl and meta.json"
	[[ -z ${seen[$d]:-} ]] || die "$d is given twice"
	seen[$d]=1
	s=$(jq -r '"\(.small_blob_bytes) \(.large_blob_bytes)"' "$d/meta.json")
	[[ -z $sizes || $s == "$sizes" ]] || die "$d measured blobs of $s bytes, the first run $sizes"
	sizes=$s
	jq -n -e 'any(inputs; .section == "warm")' "$d/raw.jsonl" >/dev/null || die "$d has no warm figures"
	runs+=("$d")
done

# One line per figure, in the order measured: run case round system MB/s
# (the run by its index, so that a path may hold spaces).
figures() {
	local i
	for i in "${!runs[@]}"; do
		jq -r --arg run "$i" \
			'select(.section == "warm" and .metric == "mbps") | "\($run) \(.case) \(.round) \(.system) \(.value)"' \
			"${runs[$i]}/raw.jsonl"
	done
}

# Lines "key value", sorted by key and value: "key count q25 median q75"
# per key (quartiles by nearest rank, the median the mean of the middle two
# for an even count).
stats() {
	awk '
		{ n[$1]++; v[$1, n[$1]] = $2 }
		END {
			for (k in n) {
				c = n[k]
				med = c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
				print k, c, v[k, int((c + 3) / 4)], med, v[k, int((3 * c + 3) / 4)]
			}
		}'
}

printf '%s runs: %s\n\n' "${#runs[@]}" "${runs[*]}"

echo 'Pooled: the median of every figure.'
echo
echo '| case | system | figures | median MB/s | Entrepot / system |'
echo '|---|---|---:|---:|---:|'
figures | awk '{ print $2 "/" $4, $5 }' | sort -k1,1 -k2,2g | stats |
	awk '
		{ split($1, p, "/"); n[$1] = $2; med[$1] = $4; cases[p[1]] }
		END {
			split("entrepot nginx distribution direct", order, " ")
			for (c in cases)
				for (i = 1; i <= 4; i++) {
					k = c "/" order[i]
					if (!(k in n)) continue
					r = order[i] == "entrepot" ? "" : sprintf("%.3f", med[c "/entrepot"] / med[k])
					printf "%s %d | %s | %s | %d | %.0f | %s |\n", c, i, c, order[i], n[k], med[k], r
				}
		}' | sort -k1,1 -k2,2n | cut -d' ' -f3-

echo
echo 'Paired: each Entrepot figure over the anchor figure of the same run, round and pass.'
echo
echo '| case | anchor | pairs | q25 | median | q75 |'
echo '|---|---|---:|---:|---:|---:|'
figures |
	awk '
		{ k = $1 " " $2 " " $3 " " $4; i = ++n[k]; v[k, i] = $5; groups[$1 " " $2 " " $3] }
		END {
			split("nginx distribution direct", anchors, " ")
			for (g in groups) {
				split(g, p, " ")
				e = g " entrepot"
				for (a = 1; a <= 3; a++) {
					o = g " " anchors[a]
					for (i = 1; i <= n[e] && i <= n[o]; i++)
						print p[2] "/" anchors[a], v[e, i] / v[o, i]
				}
			}
		}' |
	sort -k1,1 -k2,2g | stats |
	awk '{ split($1, p, "/"); printf "| %s | %s | %d | %.3f | %.3f | %.3f |\n", p[1], p[2], $2, $3, $4, $5 }' | sort
