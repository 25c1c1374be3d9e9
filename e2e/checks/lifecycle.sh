# shellcheck shell=bash
# Cache lifecycle, through the admin API and its command line (entrepot ls,
# warm, freeze, unfreeze, purge), checked with real pulls:
#   - the main Entrepot (admin API on loopback, no token): a warm-up by tag
#     pattern and platform, after which crane pulls without a blob GET at the
#     upstream, and a second warm-up fetches 0 B; ls and ls --json against
#     crane digest; purge of a tag and of a repository, then a fresh pull;
#   - a second Entrepot (admin token, ttl 0s, --max-size of about three
#     images, a pin, warm.images at start-up): a frozen tag keeps its digest
#     when the upstream moves it, and follows again once unfrozen (on the
#     main one too, despite its 60 s TTL); more images pulled than fit are
#     evicted to the high watermark, and what ls still holds pulls without
#     the upstream; the token is required (401), and the CLI says so;
#   - refusals: a non-loopback admin address without a token, and the CLI
#     pointed at a closed port.

# The second Entrepot's bound: three 1 MiB fill images fit under the high
# watermark, four do not.
LC_MAX_SIZE=4MiB LC_MAX_BYTES=$((4 << 20)) LC_HIGH=90 LC_LOW=70

# entrepot_cli ADMIN TOKEN CMD [ARGS...]: `entrepot CMD --admin ADMIN ARGS`
# with ENTREPOT_ADMIN_TOKEN=TOKEN (empty: none), under run (bounded, stderr
# in $LAST_ERR).
entrepot_cli() {
	local admin=$1 token=$2 cmd=$3
	shift 3
	run env ENTREPOT_ADMIN_TOKEN="$token" "$WORK/bin/entrepot" "$cmd" --admin "$admin" "$@"
}

# upstream_blob_gets REPO: how many blob GETs of REPO the upstream has
# answered so far; upstream_all_blob_gets: of every repository.
upstream_blob_gets() {
	grep -F 'msg="response completed"' "$WORK/logs/upstream.log" |
		grep -F 'http.request.method=GET ' |
		grep -cF "http.request.uri=\"/v2/$1/blobs/" || true
}
upstream_all_blob_gets() {
	grep -F 'msg="response completed"' "$WORK/logs/upstream.log" |
		grep -F 'http.request.method=GET ' |
		grep -cE 'http\.request\.uri="/v2/[^"]+/blobs/' || true
}

# lc_tag_field ADMIN TOKEN SOURCE/REPO TAG FIELD: FIELD (jq path) of TAG in
# `entrepot ls --json SOURCE/REPO`, or empty.
lc_tag_field() {
	entrepot_cli "$1" "$2" ls --json "$3" |
		jq -r --arg repo "${3#*/}" --arg tag "$4" \
			".[] | select(.repository == \$repo) | .tags[] | select(.tag == \$tag) | $5 // empty" || true
}

# lc_ls_row ADMIN TOKEN SOURCE/REPO TAG: the row of TAG in `entrepot ls`'s
# table, as "REPOSITORY TAG DIGEST … STATE".
lc_ls_row() {
	entrepot_cli "$1" "$2" ls "$3" | awk -v r="$3" -v t="$4" '$1 == r && $2 == t' || true
}

# lc_short DIGEST: sha256:<first 12 hex>, as entrepot ls prints it.
lc_short() { printf '%s\n' "${1:0:19}"; }

# lc_refusals: the admin API's loopback rule and the CLI without a server.
lc_refusals() {
	# (Not p: pick_port's own local would take the value.)
	local reg_port adm_port rc=0 out=$WORK/out/lc-refused
	pick_port reg_port
	pick_port adm_port
	timeout --kill-after=5 10 "$WORK/bin/entrepot" serve --listen "127.0.0.1:$reg_port" --admin-listen "0.0.0.0:$adm_port" \
		--data "$WORK/data-refused" --upstream "docker.io=http://$UPSTREAM" >"$out" 2>&1 </dev/null || rc=$?
	check_eq "entrepot serve --admin-listen 0.0.0.0:… without a token: refuses to start, naming the flag and admin.token_env" \
		"$((rc != 0 && rc != 124)) $(grep -c -e '--admin-listen.*not a loopback address.*admin.token_env' "$out")" "1 1"
	[[ $rc == 124 ]] && log "it served for 10 s on 0.0.0.0:$adm_port until timeout stopped it"

	local closed cmd
	pick_port closed
	for cmd in "ls" "warm docker.io/library/lifecycle:1.0" "purge docker.io/library/lifecycle"; do
		rc=0
		# shellcheck disable=SC2086 # cmd is the command and its arguments
		entrepot_cli "http://127.0.0.1:$closed" "" $cmd >/dev/null || rc=$?
		check_eq "entrepot ${cmd%% *} --admin http://127.0.0.1:$closed (closed): exit 1, \"cannot reach the admin API\"" \
			"$rc $(grep -c 'cannot reach the admin API at http://127.0.0.1:'"$closed" "$LAST_ERR")" "1 1"
	done
	local status
	status=$(http GET "http://$CACHE/api/v1/images")
	check_eq "GET /api/v1/images on the registry listener: 404 (the admin API has its own)" "$status" "404"
}

# lc_warm: warm-up by tag pattern on the main Entrepot.
lc_warm() {
	local pattern="docker.io/library/lifecycle:1.*" out=$WORK/out/lc-warm rc=0 d
	local amd64 arm64 arm64_blobs=() gets before row
	amd64=$(run crane manifest --insecure "$(up_ref lc11)" |
		jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest') || true
	arm64=$(run crane manifest --insecure "$(up_ref lc11)" |
		jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest') || true
	mapfile -t arm64_blobs < <(run crane manifest --insecure "$UPSTREAM/${REPO[lc11]}@$arm64" |
		jq -r '.config.digest, .layers[].digest')

	entrepot_cli "$ADMIN" "" warm --platform linux/amd64 "$pattern" >"$out" || rc=$?
	sed 's/^/#   warm: /' "$out"
	check_eq "entrepot warm --platform linux/amd64 $pattern: exit 0, a ✓ line for 1.0 and 1.1 with their digests" \
		"$rc $(grep -c "^✓ docker.io/library/lifecycle:1.0  $(lc_short "${UP_DIGEST[lc10]}")  " "$out") $(grep -c "^✓ docker.io/library/lifecycle:1.1  $(lc_short "${UP_DIGEST[lc11]}")  " "$out") $(wc -l <"$out")" \
		"0 1 1 2"
	# Both images are cold: what the warm-up fetched is all of them, also
	# the blobs that the prefetch its own manifest fetch starts filled first.
	check_eq "warm of cold images: each line's fetched bytes are its total bytes" \
		"$(sed -nE 's/^✓ .*, ([0-9.]+ [KMG]?i?B) \(fetched \1\)$/same/p' "$out" | tr '\n' ' ')" "same same "
	row=$(lc_ls_row "$ADMIN" "" docker.io/library/lifecycle 2.0)
	check_eq "warm $pattern: 2.0 does not match, and is not listed" "${row:-none}" none
	check_eq "warm --platform linux/amd64: no blob of the arm64 child was fetched" \
		"$(for d in "${arm64_blobs[@]}"; do upstream_requests GET "/v2/${REPO[lc11]}/blobs/$d"; done | sort -u | tr '\n' ' ')" "0 "

	rc=0
	entrepot_cli "$ADMIN" "" warm --platform linux/amd64 "$pattern" >"$out" || rc=$?
	check_eq "a second entrepot warm of $pattern: exit 0, both fetched 0 B" \
		"$rc $(grep -c '^✓ .*(fetched 0 B)$' "$out")" "0 2"

	before=$(upstream_blob_gets "${REPO[lc10]}")
	local lay=$WORK/out/lc-pull
	if run crane pull --insecure --format oci "$(cache_ref lc10)" "$lay"; then
		check_oci_layout "after warm-up: crane pull $(cache_ref lc10)" "$lay" lc10
	else
		fail "after warm-up: crane pull --format oci $(cache_ref lc10)"
	fi
	rm -rf "$lay"
	if run crane pull --insecure --format oci --platform linux/amd64 "$(cache_ref lc11)" "$lay"; then
		check_eq "after warm-up: crane pull --platform linux/amd64 $(cache_ref lc11): the amd64 child" \
			"$(jq -r '.manifests[0].digest' "$lay/index.json")" "$amd64"
	else
		fail "after warm-up: crane pull --platform linux/amd64 $(cache_ref lc11)"
	fi
	rm -rf "$lay"
	gets=$(upstream_blob_gets "${REPO[lc10]}")
	check_eq "after warm-up: those pulls made no blob GET at the upstream" "$((gets - before)) GET" "0 GET"

	rc=0
	entrepot_cli "$ADMIN" "" warm docker.io/library/lifecycle:9.9 >"$out" || rc=$?
	check_eq "entrepot warm of a tag the upstream lacks: exit 1, a ✗ line, \"1 of 1 images failed\"" \
		"$rc $(grep -c '^✗ docker.io/library/lifecycle:9.9: ' "$out") $(grep -c '1 of 1 images failed' "$LAST_ERR")" "1 1 1"
}

# lc_ls: entrepot ls and ls --json on the main Entrepot, against crane.
lc_ls() {
	local want row
	want=$(run crane digest --insecure "$(cache_ref lc10)") || true
	check_eq "crane digest $(cache_ref lc10) through the cache: the upstream's" "$want" "${UP_DIGEST[lc10]}"
	row=$(lc_ls_row "$ADMIN" "" docker.io/library/lifecycle 1.0)
	check_eq "entrepot ls docker.io/library/lifecycle: 1.0 with its short digest" \
		"$(awk '{ print $3 }' <<<"$row")" "$(lc_short "$want")"
	check_eq "entrepot ls --json docker.io/library/lifecycle: 1.0's digest is crane digest's, held" \
		"$(lc_tag_field "$ADMIN" "" docker.io/library/lifecycle 1.0 '"\(.digest) \(.held)"')" "$want true"
	check_eq "entrepot ls --json docker.io/library/lifecycle: 1.1 (warmed for one platform) has the index digest" \
		"$(lc_tag_field "$ADMIN" "" docker.io/library/lifecycle 1.1 .digest)" "${UP_DIGEST[lc11]}"
	check_eq "entrepot ls --json (everything): valid JSON that lists docker.io library/lifecycle" \
		"$(entrepot_cli "$ADMIN" "" ls --json | jq -r '.[] | select(.source == "docker.io" and .repository == "library/lifecycle") | .repository')" \
		"library/lifecycle"
	check_eq "entrepot ls docker.io/library/lifecycle:1.0 (a tag: lists its repository)" \
		"$(entrepot_cli "$ADMIN" "" ls docker.io/library/lifecycle:1.0 | awk '$2 == "1.0" { print $3 }')" "$(lc_short "$want")"
	check_eq "GET $ADMIN/api/v1/images?repository=docker.io/library/lifecycle (curl): 1.0's digest" \
		"$(run curl -sf "$ADMIN/api/v1/images?repository=docker.io/library/lifecycle" |
			jq -r '.[].tags[] | select(.tag == "1.0") | .digest')" "$want"
}

# lc_purge: purge a tag, then the repository, on the main Entrepot.
lc_purge() {
	local out rc=0 before nblobs files
	nblobs=$(grep -vxc "${UP_DIGEST[lc10]}" "$WORK/expect/lc10") || true
	files=$(find "$WORK/data/blobs" -type f | wc -l)
	out=$(entrepot_cli "$ADMIN" "" purge docker.io/library/lifecycle:1.0) || rc=$?
	log "purge: $out"
	# The store keeps manifests as blobs too: the files that left blobs/
	# are its manifest and its $nblobs blobs (config and layers).
	check_eq "entrepot purge docker.io/library/lifecycle:1.0: exit 0; 1 tag, 1 manifest and its $nblobs blobs, as many files as left blobs/" \
		"$rc $(sed -nE 's/^purged [^ ]+: ([0-9]+) tags?, ([0-9]+) manifests?, ([0-9]+) blobs?, .*/\1 \2 \3/p' <<<"$out") $((files - $(find "$WORK/data/blobs" -type f | wc -l)))" \
		"0 1 1 $nblobs $((nblobs + 1))"
	check_eq "after purge: entrepot ls lists no 1.0, still 1.1" \
		"$(lc_ls_row "$ADMIN" "" docker.io/library/lifecycle 1.0 | wc -l) $(lc_ls_row "$ADMIN" "" docker.io/library/lifecycle 1.1 | wc -l)" "0 1"
	before=$(upstream_blob_gets "${REPO[lc10]}")
	local lay=$WORK/out/lc-pull
	if run crane pull --insecure --format oci "$(cache_ref lc10)" "$lay"; then
		check_oci_layout "after purge: crane pull $(cache_ref lc10)" "$lay" lc10
	else
		fail "after purge: crane pull --format oci $(cache_ref lc10)"
	fi
	rm -rf "$lay"
	check_eq "after purge: the pull fetched each of its blobs afresh from the upstream" \
		"$(($(upstream_blob_gets "${REPO[lc10]}") - before)) GET" "$nblobs GET"
	check_eq "after the pull: entrepot ls lists 1.0 again" \
		"$(lc_tag_field "$ADMIN" "" docker.io/library/lifecycle 1.0 .digest)" "${UP_DIGEST[lc10]}"

	rc=0
	out=$(entrepot_cli "$ADMIN" "" purge docker.io/library/lifecycle) || rc=$?
	log "purge: $out"
	check_eq "entrepot purge docker.io/library/lifecycle (the repository): exit 0, then ls --json lists nothing of it" \
		"$rc $(entrepot_cli "$ADMIN" "" ls --json docker.io/library/lifecycle | jq -c '[.[] | select(.repository == "library/lifecycle")]')" "0 []"
	rc=0
	entrepot_cli "$ADMIN" "" purge quay.io/library/lifecycle:1.0 >/dev/null || rc=$?
	check_eq "entrepot purge of an upstream not configured (quay.io): exit 1, naming the configured ones" \
		"$rc $(grep -c 'no upstream "quay.io" is configured (configured: docker.io, local)' "$LAST_ERR")" "1 1"
}

# lc_start_second: the second Entrepot, from a config file and --max-size.
# Sets LC_CACHE, LC_ADMIN, LC_TOKEN, LC_DATA and LC_PID.
lc_start_second() {
	local port aport conf=$WORK/entrepot-lifecycle.yml
	pick_port port
	pick_port aport
	LC_CACHE=127.0.0.1:$port LC_ADMIN=http://127.0.0.1:$aport LC_DATA=$WORK/data-lifecycle
	LC_TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	cat >"$conf" <<-EOF
		listen: $LC_CACHE
		data: $LC_DATA
		storage:
		  high_watermark: $LC_HIGH%
		  low_watermark: $LC_LOW%
		  pin:
		    - docker.io/library/fill:1
		warm:
		  images:
		    - image: docker.io/library/lifecycle:2.0
		      platforms: [linux/amd64]
		admin:
		  listen: 127.0.0.1:$aport
		  token_env: E2E_LIFECYCLE_TOKEN
		upstreams:
		  - name: docker.io
		    url: http://$UPSTREAM
		    ttl: 0s
	EOF
	# The token reaches the server through its environment only, not its
	# command line.
	E2E_LIFECYCLE_TOKEN=$LC_TOKEN start_bg entrepot-lifecycle "$WORK/logs/entrepot-lifecycle.log" \
		"$WORK/bin/entrepot" serve --config "$conf" --max-size "$LC_MAX_SIZE"
	LC_PID=$BG_PID
	if ! wait_until "entrepot (lifecycle)" 60 "$LC_PID" curl -sf "http://$LC_CACHE/v2/"; then
		fail "entrepot serve --config (admin token, ttl 0s) --max-size $LC_MAX_SIZE starts"
		return 1
	fi
	pass "entrepot serve --config (admin token, ttl 0s) --max-size $LC_MAX_SIZE starts"
	if wait_until "warm.images at start-up" 20 "$LC_PID" lc_held "$LC_ADMIN" "$LC_TOKEN" docker.io/library/lifecycle 2.0; then
		pass "warm.images at start-up: ls lists docker.io/library/lifecycle:2.0 held, before any pull"
	else
		fail "warm.images at start-up: ls lists docker.io/library/lifecycle:2.0 held, before any pull"
	fi
}

# lc_held ADMIN TOKEN SOURCE/REPO TAG: true when ls --json says TAG is held.
lc_held() {
	[[ $(lc_tag_field "$@" .held) == true ]]
}

# lc_freeze: a tag frozen on both Entrepots while the upstream moves it.
lc_freeze() {
	local repo=library/lc-frozen out rc
	local main=$CACHE/docker.io/$repo second=$LC_CACHE/docker.io/$repo
	if ! run crane copy --insecure "$(up_ref lc20)" "$UPSTREAM/$repo:1" >/dev/null ||
		! run crane tag --insecure "$UPSTREAM/$repo:1" control >/dev/null; then
		fail "crane copy lifecycle:2.0 to the upstream's $repo:1 and :control"
		return 0
	fi
	check_eq "before the move: crane digest $main:1, $second:1 and $second:control" \
		"$(run crane digest --insecure "$main:1") $(run crane digest --insecure "$second:1") $(run crane digest --insecure "$second:control")" \
		"${UP_DIGEST[lc20]} ${UP_DIGEST[lc20]} ${UP_DIGEST[lc20]}"
	rc=0
	out=$(entrepot_cli "$ADMIN" "" freeze "docker.io/$repo:1") || rc=$?
	check_eq "entrepot freeze docker.io/$repo:1 (main)" "$rc $out" "0 frozen docker.io/$repo:1 at ${UP_DIGEST[lc20]}"
	rc=0
	out=$(entrepot_cli "$LC_ADMIN" "$LC_TOKEN" freeze "docker.io/$repo:1") || rc=$?
	check_eq "entrepot freeze docker.io/$repo:1 (second, with the token)" "$rc $out" "0 frozen docker.io/$repo:1 at ${UP_DIGEST[lc20]}"
	check_eq "entrepot ls: docker.io/$repo 1 is frozen (table and --json)" \
		"$(lc_ls_row "$ADMIN" "" "docker.io/$repo" 1 | awk '{ print $NF }') $(lc_tag_field "$ADMIN" "" "docker.io/$repo" 1 .frozen)" "frozen true"

	# Move both tags at the upstream to team/app's image.
	if ! run crane copy --insecure "$(up_ref app)" "$UPSTREAM/$repo:1" >/dev/null ||
		! run crane tag --insecure "$UPSTREAM/$repo:1" control >/dev/null; then
		fail "crane copy team/app:1.2 to the upstream's $repo:1 and :control"
		return 0
	fi
	check_eq "moved: crane digest $second:control (ttl 0s, not frozen) follows the upstream" \
		"$(run crane digest --insecure "$second:control")" "${UP_DIGEST[app]}"
	check_eq "moved: crane digest $second:1 (ttl 0s, frozen) keeps the frozen digest" \
		"$(run crane digest --insecure "$second:1")" "${UP_DIGEST[lc20]}"
	check_eq "moved: crane manifest $second:1 (frozen): the frozen image's bytes" \
		"$(run crane manifest --insecure "$second:1" | sha)" "${UP_DIGEST[lc20]}"
	check_eq "moved: crane digest $main:1 (frozen) keeps the frozen digest" \
		"$(run crane digest --insecure "$main:1")" "${UP_DIGEST[lc20]}"

	rc=0
	out=$(entrepot_cli "$LC_ADMIN" "$LC_TOKEN" unfreeze "docker.io/$repo:1") || rc=$?
	check_eq "entrepot unfreeze docker.io/$repo:1 (second)" "$rc $out" "0 unfrozen docker.io/$repo:1 at ${UP_DIGEST[lc20]}"
	check_eq "unfrozen: crane digest $second:1 follows the upstream again" \
		"$(run crane digest --insecure "$second:1")" "${UP_DIGEST[app]}"
	rc=0
	out=$(entrepot_cli "$ADMIN" "" unfreeze "docker.io/$repo:1") || rc=$?
	check_eq "entrepot unfreeze docker.io/$repo:1 (main)" "$rc $out" "0 unfrozen docker.io/$repo:1 at ${UP_DIGEST[lc20]}"
	check_eq "unfrozen: crane digest $main:1 revalidates at once (within its 60 s TTL)" \
		"$(run crane digest --insecure "$main:1")" "${UP_DIGEST[app]}"
	rc=0
	entrepot_cli "$ADMIN" "" unfreeze "docker.io/$repo:1" >/dev/null || rc=$?
	check_eq "entrepot unfreeze of a tag that is not frozen: exit 1, saying so" \
		"$rc $(grep -c 'is not frozen' "$LAST_ERR")" "1 1"
}

# lc_blobs_bytes DIR: du -sb of DIR (apparent sizes, directories included,
# so never less than what the store counts).
lc_blobs_bytes() { du -sb "$1" | cut -f1; }
lc_blobs_at_most() { (($(lc_blobs_bytes "$1") <= $2)); }

# lc_evict: more fill images than fit, pulled through the second Entrepot.
lc_evict() {
	local high=$((LC_MAX_BYTES * LC_HIGH / 100)) i bad=0
	local tar=$WORK/out/lc-fill.tar
	for i in 1 2 3 4 5; do
		if ! run crane pull --insecure "$LC_CACHE/docker.io/library/fill:$i" "$tar"; then
			bad=$((bad + 1))
			log "crane pull fill:$i failed: $(tail -n 1 "$LAST_ERR")"
		fi
		log "after fill:$i: du -sb blobs/ = $(lc_blobs_bytes "$LC_DATA/blobs")"
	done
	rm -f "$tar"
	check_eq "crane pull of 5 × 1 MiB images through an Entrepot bounded to $LC_MAX_SIZE: all pulled" "$bad failed" "0 failed"
	if wait_until "eviction" 20 "$LC_PID" lc_blobs_at_most "$LC_DATA/blobs" "$high"; then
		pass "within 20 s, du -sb blobs/ is at or below the high watermark ($(lc_blobs_bytes "$LC_DATA/blobs") <= $high, $LC_HIGH% of $LC_MAX_SIZE)"
	else
		fail "within 20 s, du -sb blobs/ is at or below the high watermark" \
			"du -sb: $(lc_blobs_bytes "$LC_DATA/blobs"), high watermark: $high"
	fi

	local json held=() ref before
	json=$(entrepot_cli "$LC_ADMIN" "$LC_TOKEN" ls --json) || true
	log "held: $(jq -r '[.[] | .source + "/" + .repository + ":" + (.tags[] | select(.held) | .tag)] | join(" ")' <<<"$json")"
	check_eq "after eviction: fill:1 (pinned) and fill:5 (pulled last) held; fewer than 5 fill images held" \
		"$(jq -r '[.[] | select(.repository == "library/fill") | .tags[] | select(.held)] |
			"\(map(select(.tag == "1" and .pinned)) | length) \(map(select(.tag == "5")) | length) \(length < 5)"' <<<"$json")" \
		"1 1 true"
	mapfile -t held < <(jq -r '.[] | .source + "/" + .repository + ":" + (.tags[] | select(.held) | .tag)' <<<"$json")
	before=$(upstream_all_blob_gets)
	bad=0
	for ref in "${held[@]}"; do
		if ! run crane validate --remote "$LC_CACHE/$ref" --insecure >/dev/null; then
			bad=$((bad + 1))
			log "crane validate --remote $LC_CACHE/$ref failed: $(tail -n 1 "$LAST_ERR")"
		fi
	done
	check_eq "crane validate --remote of each of the ${#held[@]} images ls holds: all whole" "$bad failed" "0 failed"
	check_eq "those pulls made no blob GET at the upstream" "$(($(upstream_all_blob_gets) - before)) GET" "0 GET"

	# An evicted image (one of 2…4, which ls no longer holds) pulls again,
	# its layer fetched afresh.
	local evicted
	evicted=$(jq -r '[.[] | select(.repository == "library/fill") | .tags[] | select(.held) | .tag] as $held |
		["2", "3", "4"] - $held | first // empty' <<<"$json")
	if [[ -n $evicted ]]; then
		before=$(upstream_blob_gets library/fill)
		check "an evicted image pulls again: crane validate --remote $LC_CACHE/docker.io/library/fill:$evicted" \
			crane validate --remote "$LC_CACHE/docker.io/library/fill:$evicted" --insecure
		check_eq "the evicted image's config and layer came from the upstream again" \
			"$(($(upstream_blob_gets library/fill) - before)) GET" "2 GET"
	fi
}

# lc_token: the second Entrepot's admin API wants its token.
lc_token() {
	local url=$LC_ADMIN/api/v1/images rc
	check_eq "curl GET /api/v1/images: 401 without a token, 401 with a wrong one, 200 with the right one" \
		"$(http GET "$url") $(http GET "$url" -H 'Authorization: Bearer wrong') $(http GET "$url" -H "Authorization: Bearer $LC_TOKEN")" \
		"401 401 200"
	check_eq "curl POST /api/v1/purge without the token: 401, and fill:1 is still held" \
		"$(http POST "$LC_ADMIN/api/v1/purge" -H 'Content-Type: application/json' -d '{"image":"docker.io/library/fill:1"}') $(lc_tag_field "$LC_ADMIN" "$LC_TOKEN" docker.io/library/fill 1 .held)" \
		"401 true"
	rc=0
	entrepot_cli "$LC_ADMIN" wrong ls >/dev/null || rc=$?
	check_eq "ENTREPOT_ADMIN_TOKEN=wrong entrepot ls: exit 1, naming ENTREPOT_ADMIN_TOKEN" \
		"$rc $(grep -c 'refused.*ENTREPOT_ADMIN_TOKEN' "$LAST_ERR")" "1 1"
	rc=0
	entrepot_cli "$LC_ADMIN" "" purge docker.io/library/fill:1 >/dev/null || rc=$?
	check_eq "entrepot purge without ENTREPOT_ADMIN_TOKEN: exit 1, naming it; fill:1 is still held" \
		"$rc $(grep -c 'refused.*ENTREPOT_ADMIN_TOKEN' "$LAST_ERR") $(lc_tag_field "$LC_ADMIN" "$LC_TOKEN" docker.io/library/fill 1 .held)" \
		"1 1 true"
}

check_lifecycle() {
	((E2E_DIRECT)) && return 0
	log "== lifecycle: warm, ls, freeze, purge, eviction, the admin token =="
	lc_refusals
	lc_warm
	lc_ls
	lc_purge
	lc_start_second || return 0
	lc_freeze
	lc_evict
	lc_token
	stop_pid entrepot-lifecycle "$LC_PID"
}
