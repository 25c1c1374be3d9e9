# shellcheck shell=bash
# Tags: tag lists (whole, and page by page following Link headers through the
# path prefix), and a tag that moves at the upstream: a second Entrepot with
# ttl 0 sees the move on the next pull; the main one (ttl 60s, the default)
# keeps serving what it checked within its TTL.

# tag_pages URL: follows rel="next" Link headers from URL, printing every
# tag of every page, then "pages=N links=L1,L2…" on stderr-free last line.
tag_pages() {
	local url=$1 pages=0 link links=() status
	while [[ -n $url ]] && ((pages < 20)); do
		status=$(http GET "$url")
		[[ $status == 200 ]] || { echo "status=$status"; return 0; }
		jq -r '.tags[]?' "$WORK/out/body"
		pages=$((pages + 1))
		link=$(header Link | sed -n 's/^<\([^>]*\)>.*rel="\{0,1\}next"\{0,1\}.*/\1/p')
		[[ -n $link ]] && links+=("$link")
		case $link in
		'') url= ;;
		http://* | https://*) url=$link ;;
		*) url=http://$CACHE$link ;;
		esac
	done
	echo "pages=$pages links=$(
		IFS=,
		echo "${links[*]}"
	)"
}

check_tags() {
	log "== tags: lists and a moved tag =="
	local repo=library/moving t
	# library/moving at the upstream: tags 1 and a…e, all on team/app's image.
	if ! run crane copy --insecure "$(up_ref app)" "$UPSTREAM/$repo:1" >/dev/null; then
		fail "crane copy team/app:1.2 to the upstream's $repo:1"
		return 0
	fi
	for t in a b c d e; do
		run crane tag --insecure "$UPSTREAM/$repo:1" "$t" >/dev/null || fail "crane tag $repo:1 $t at the upstream"
	done
	local want got prefix=docker.io/
	((E2E_DIRECT)) && prefix=
	want=$(run crane ls --insecure "$UPSTREAM/$repo" | sort | tr '\n' ' ')
	check_eq "crane ls $CACHE/$prefix$repo: the upstream's tags" \
		"$(run crane ls --insecure "$CACHE/$prefix$repo" | sort | tr '\n' ' ')" "$want"

	# Two tags a page: as many pages as the upstream gives, each Link
	# pointing back into the prefix.
	local pages up_pages
	up_pages=$(tag_pages "http://$UPSTREAM/v2/$repo/tags/list?n=2" | grep '^pages=')
	pages=$(tag_pages "http://$CACHE/v2/$prefix$repo/tags/list?n=2")
	got=$(grep -v '^pages=' <<<"$pages" | sort | tr '\n' ' ')
	check_eq "GET /v2/$prefix$repo/tags/list?n=2, following Link: every tag once" "$got" "$want"
	check_eq "tags/list?n=2: as many pages as the upstream (${up_pages% links=*}), every next Link under /v2/$prefix$repo/" \
		"$(grep '^pages=' <<<"$pages" | sed 's/ links=.*//') $(grep '^pages=' <<<"$pages" | sed 's/.* links=//' |
			tr ',' '\n' | grep -Evc "^(https?://$CACHE)?/v2/$prefix$repo/tags/list\?")" "${up_pages% links=*} 0"

	((E2E_DIRECT)) && return 0
	# The main Entrepot (ttl 60s) sees moving:1 before the move.
	check_eq "crane digest $CACHE/docker.io/$repo:1 before the move" \
		"$(run crane digest --insecure "$CACHE/docker.io/$repo:1")" "${UP_DIGEST[app]}"

	# A second Entrepot, from a config file: ttl 0 revalidates every pull.
	local port conf=$WORK/entrepot-ttl0.yml pid
	pick_port port
	cat >"$conf" <<-EOF
		listen: 127.0.0.1:$port
		data: $WORK/data-ttl0
		admin:
		  listen: 127.0.0.1:0
		upstreams:
		  - name: docker.io
		    url: http://$UPSTREAM
		    ttl: 0s
	EOF
	start_bg entrepot-ttl0 "$WORK/logs/entrepot-ttl0.log" "$WORK/bin/entrepot" serve --config "$conf"
	pid=$BG_PID
	if ! wait_until "entrepot (ttl 0)" 60 "$pid" curl -sf "http://127.0.0.1:$port/v2/"; then
		fail "entrepot serve --config (ttl: 0s) starts"
		return 0
	fi
	pass "entrepot serve --config (ttl: 0s) starts"
	local ttl0=127.0.0.1:$port/docker.io/$repo:1
	check_eq "ttl 0: crane digest $ttl0 before the move" \
		"$(run crane digest --insecure "$ttl0")" "${UP_DIGEST[app]}"

	# Move the tag at the upstream.
	run crane copy --insecure "$(up_ref alpine)" "$UPSTREAM/$repo:1" >/dev/null || fail "crane copy alpine to $repo:1"
	check_eq "ttl 0: crane digest $ttl0 after the move: the new image" \
		"$(run crane digest --insecure "$ttl0")" "${UP_DIGEST[alpine]}"
	check_eq "ttl 0: crane manifest $ttl0 after the move: the new image's bytes" \
		"$(run crane manifest --insecure "$ttl0" | sha)" "${UP_DIGEST[alpine]}"
	check_eq "ttl 60s: crane digest $CACHE/docker.io/$repo:1 right after the move: still what it checked" \
		"$(run crane digest --insecure "$CACHE/docker.io/$repo:1")" "${UP_DIGEST[app]}"
	stop_pid entrepot-ttl0 "$pid"
}
