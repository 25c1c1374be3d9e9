#!/usr/bin/env bash
# bench/pool.sh RESULTS_DIR...: the warm-throughput figures of several runs
# together. One run's ratio for a lone client moves by a few percent with
# the machine's other tenants; pooled, the runs show where it sits.
#
# Two tables:
#   - pooled: per case and system, the median of every figure of every run,
#     and Entrepot's median over each anchor's;
#   - paired: per case and anchor, each Entrepot figure over the anchor's
#     figure of the same run, round and pass (run next to it, in the
#     balanced order), and the quartiles of those ratios. Pairing takes out
#     the drift between rounds and runs.
#
#   bench/pool.sh bench/results/20261122T1*
set -euo pipefail

(($# > 0)) || {
	echo "usage: bench/pool.sh RESULTS_DIR..." >&2
	exit 2
}
for d in "$@"; do
	[[ -s $d/raw.jsonl ]] || {
		echo "bench/pool.sh: $d has no raw.jsonl" >&2
		exit 1
	}
done

# One line per figure, in the order measured: run case round system MB/s.
figures() {
	local d
	for d in "$@"; do
		jq -r --arg run "$d" \
			'select(.section == "warm" and .metric == "mbps") | "\($run) \(.case) \(.round) \(.system) \(.value)"' \
			"$d/raw.jsonl"
	done
}

# Lines "key value", sorted by key and value: "key count median" per key.
medians() {
	awk '
		{ n[$1]++; v[$1, n[$1]] = $2 }
		END {
			for (k in n) {
				c = n[k]
				print k, c, c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
			}
		}'
}

printf '%s runs: %s\n\n' "$#" "$*"

echo 'Pooled: the median of every figure.'
echo
echo '| case | system | figures | median MB/s | Entrepot / system |'
echo '|---|---|---:|---:|---:|'
figures "$@" | awk '{ print $2 "/" $4, $5 }' | sort -k1,1 -k2,2g | medians |
	awk '
		{ split($1, p, "/"); n[$1] = $2; med[$1] = $3; cases[p[1]] }
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
echo 'Paired: Entrepot figure / the anchor figure of the same run, round and pass.'
echo
echo '| case | anchor | pairs | q25 | median | q75 |'
echo '|---|---|---:|---:|---:|---:|'
figures "$@" |
	awk '
		{ k = $1 " " $2 " " $3 " " $4; i = ++n[k]; v[k, i] = $5; keys[$1 " " $2 " " $3] }
		END {
			split("nginx distribution direct", anchors, " ")
			for (g in keys) {
				split(g, p, " ")
				e = g " entrepot"
				for (a = 1; a <= 3; a++) {
					o = g " " anchors[a]
					for (i = 1; i <= n[e] && i <= n[o]; i++)
						print p[2] "/" anchors[a], v[e, i] / v[o, i]
				}
			}
		}' |
	sort -k1,1 -k2,2g |
	awk '
		{ n[$1]++; v[$1, n[$1]] = $2 }
		END {
			for (k in n) {
				c = n[k]
				split(k, p, "/")
				printf "| %s | %s | %d | %.3f | %.3f | %.3f |\n", p[1], p[2], c,
					v[k, int((c + 3) / 4)], v[k, int((c + 1) / 2)], v[k, int((3 * c + 3) / 4)]
			}
		}' | sort
