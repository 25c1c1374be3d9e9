# shellcheck shell=bash
# Client authentication and access rules, with real clients logging in over
# TLS. A second Entrepot (its own port and data directory) serves HTTPS with
# a certificate for 127.0.0.1 and localhost from a CA made here, users of a
# htpasswd file (htpasswd -B), a static token, access rules and an audit
# trail:
#   - alice (htpasswd) may pull docker.io/library/*; the ci token may pull
#     everything; bob (htpasswd too) nothing: no rule names him;
#   - the answers themselves (curl): the challenge, the token endpoint (GET
#     with basic auth, POST with the password grant), basic auth and the
#     static token on the API, 403 DENIED naming the rule;
#   - crane, skopeo, regctl, ctr, dockerd and podman (auth_clients.sh) log
#     in and pull, the digests checked against the upstream's; without
#     credentials, with a wrong password, or for a repository no rule
#     grants, each is refused;
#   - the audit trail: a JSON line per manifest request and per refusal,
#     reopened on SIGHUP; no password or token in Entrepot's log or trail.
# The passwords and the token are random for each run, so that finding one
# in a log means it was logged.

# auth_secret: 24 random hex characters.
auth_secret() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }

# auth_setup makes the CA and the server's certificate, the htpasswd and
# tokens files and the configuration, under $AUTH_D.
auth_setup() {
	AUTH_D=$WORK/auth
	mkdir -p "$AUTH_D/certs" "$AUTH_D/out"
	ALICE_PW=$(auth_secret) BOB_PW=$(auth_secret) WRONG_PW=$(auth_secret)
	CI_TOKEN=ci-$(auth_secret)
	AUTH_SECRETS=("$ALICE_PW" "$BOB_PW" "$WRONG_PW" "$CI_TOKEN"
		"$(printf 'alice:%s' "$ALICE_PW" | base64 -w0)" "$(printf 'bob:%s' "$BOB_PW" | base64 -w0)")
	local d=$AUTH_D
	if ! {
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=Entrepot e2e CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=127.0.0.1" -keyout "$d/tls.key" -out "$d/tls.csr" &&
			printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
				"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" >"$d/tls.ext" &&
			openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
				-CAcreateserial -CAserial "$d/ca.srl" -days 2 -extfile "$d/tls.ext" -out "$d/tls.crt"
	} >"$d/openssl.log" 2>&1; then
		fail "openssl: a CA and a certificate for 127.0.0.1 and localhost" "$(tail -n 3 "$d/openssl.log")"
		return 1
	fi
	AUTH_CA=$d/ca.crt
	# A certificate directory as skopeo and podman read it (*.crt: CAs).
	cp "$AUTH_CA" "$d/certs/ca.crt"
	# htpasswd -i reads the password from stdin, keeping it off the
	# command line.
	if ! { htpasswd -B -i -c "$d/htpasswd" alice <<<"$ALICE_PW" && htpasswd -B -i "$d/htpasswd" bob <<<"$BOB_PW"; } >"$d/htpasswd.log" 2>&1; then
		fail "htpasswd -B: users alice and bob" "$(tail -n 3 "$d/htpasswd.log")"
		return 1
	fi
	check_eq "htpasswd -B wrote bcrypt hashes for alice and bob" \
		"$(cut -d: -f1,2 "$d/htpasswd" | sed -E 's/:\$2[aby]\$.*/:bcrypt/' | tr '\n' ' ')" "alice:bcrypt bob:bcrypt "
	(umask 077 && printf '# the CI runners\nci:%s\n' "$CI_TOKEN" >"$d/tokens")

	local port aport
	pick_port port
	pick_port aport
	AUTH_CACHE=127.0.0.1:$port
	AUTH_AUDIT=$d/audit.jsonl
	AUTH_LOG=$WORK/logs/entrepot-auth.log
	cat >"$d/entrepot.yml" <<-EOF
		listen: $AUTH_CACHE
		data: $WORK/data-auth
		admin:
		  listen: 127.0.0.1:$aport
		tls:
		  cert: $d/tls.crt
		  key: $d/tls.key
		auth:
		  htpasswd: $d/htpasswd
		  tokens_file: $d/tokens
		access:
		  - users: [alice]
		    repos: [docker.io/library/*]
		    actions: [pull]
		  - users: [ci]
		    repos: ["*"]
		    actions: [pull]
		audit:
		  file: $AUTH_AUDIT
		upstreams:
		  - name: docker.io
		    url: http://$UPSTREAM
		  - name: local
		    url: http://$UPSTREAM
	EOF
}

# auth_start runs the second Entrepot, logging at debug level so that the
# secrets check reads everything it logs.
auth_start() {
	start_bg entrepot-auth "$AUTH_LOG" "$WORK/bin/entrepot" serve --config "$AUTH_D/entrepot.yml" --log-level debug
	AUTH_PID=$BG_PID
	if ! wait_until "entrepot (auth)" 60 "$AUTH_PID" curl -sf --cacert "$AUTH_CA" "https://$AUTH_CACHE/healthz"; then
		fail "entrepot serve with tls, auth, access and audit starts (https://$AUTH_CACHE)"
		return 1
	fi
	pass "entrepot serve with tls, auth, access and audit starts (https://$AUTH_CACHE)"
}

# auth_url PATH: the second Entrepot's URL of PATH.
auth_url() { printf 'https://%s%s\n' "$AUTH_CACHE" "$1"; }

# auth_manifest REPO TAG: the path of a manifest under the path prefix.
auth_manifest() { printf '/v2/%s/manifests/%s\n' "$1" "$2"; }

# auth_error: the code and message of the last answer's first OCI error.
auth_error() { jq -r '.errors[0] | "\(.code): \(.message)"' "$WORK/out/body" 2>/dev/null || true; }

# auth_token CURL_ARGS...: sets AUTH_TOKEN to the token the endpoint
# answered (empty if none), and adds it to the secrets no log may hold.
auth_token() {
	AUTH_TOKEN=$(run curl -sS --cacert "$AUTH_CA" "$@" | jq -r '.token // empty') || true
	if [[ -n $AUTH_TOKEN ]]; then AUTH_SECRETS+=("$AUTH_TOKEN"); fi
}

# auth_protocol: what Entrepot answers, request by request (curl).
auth_protocol() {
	local ca=(--cacert "$AUTH_CA") alpine tok status
	alpine=$(auth_manifest docker.io/library/alpine 3.20)
	local realm="Bearer realm=\"https://$AUTH_CACHE/token\",service=\"entrepot\""
	check_eq "GET /v2/ without credentials: 401, the token flow's challenge" \
		"$(http GET "$(auth_url /v2/)" "${ca[@]}") $(header WWW-Authenticate)" "401 $realm"
	check_eq "GET $alpine without credentials: 401 UNAUTHORIZED, the challenge names the repository's scope" \
		"$(http GET "$(auth_url "$alpine")" "${ca[@]}") $(header WWW-Authenticate) $(auth_error | cut -d: -f1)" \
		"401 $realm,scope=\"repository:docker.io/library/alpine:pull\" UNAUTHORIZED"
	check_eq "plain HTTP to the TLS listener: 400" "$(http GET "http://$AUTH_CACHE/v2/")" "400"
	if run curl -sS -o /dev/null "$(auth_url /healthz)"; then
		fail "curl without the CA: the certificate is not trusted"
	else
		pass "curl without the CA: the certificate is not trusted ($(grep -o 'self[- ]signed[^)]*\|unable to get local issuer[^)]*' "$LAST_ERR" | head -n 1))"
	fi

	check_eq "GET $alpine with alice's basic auth: 200, the upstream digest" \
		"$(http GET "$(auth_url "$alpine")" "${ca[@]}" -u "alice:$ALICE_PW" -H "Accept: $ACCEPT_ALL") $(header Docker-Content-Digest)" \
		"200 ${UP_DIGEST[alpine]}"
	check_eq "GET $alpine with a wrong password: 401" \
		"$(http GET "$(auth_url "$alpine")" "${ca[@]}" -u "alice:$WRONG_PW")" "401"
	check_eq "GET $alpine as bob (no rule names him): 403 DENIED, naming the missing rule" \
		"$(http GET "$(auth_url "$alpine")" "${ca[@]}" -u "bob:$BOB_PW") $(auth_error)" \
		"403 DENIED: bob may not pull docker.io/library/alpine: no access rule grants bob pull on docker.io/library/alpine"
	check_eq "HEAD $alpine as bob: 403 as GET" "$(http HEAD "$(auth_url "$alpine")" "${ca[@]}" -u "bob:$BOB_PW")" "403"
	check_eq "GET /v2/local/team/app/manifests/1.2 as alice (her rule is docker.io/library/*): 403 DENIED" \
		"$(http GET "$(auth_url "$(auth_manifest local/team/app 1.2)")" "${ca[@]}" -u "alice:$ALICE_PW") $(auth_error)" \
		"403 DENIED: alice may not pull local/team/app: no access rule grants alice pull on local/team/app"
	check_eq "the ci token as a Bearer on local/team/app: 200, the upstream digest" \
		"$(http GET "$(auth_url "$(auth_manifest local/team/app 1.2)")" "${ca[@]}" -H "Authorization: Bearer $CI_TOKEN" -H "Accept: $ACCEPT_ALL") $(header Docker-Content-Digest)" \
		"200 ${UP_DIGEST[app]}"
	check_eq "the ci token as a basic-auth password (any user name) on local/team/app: 200" \
		"$(http GET "$(auth_url "$(auth_manifest local/team/app 1.2)")" "${ca[@]}" -u "runner:$CI_TOKEN")" "200"

	# The token flow: the token grants what was asked and allowed, no more.
	auth_token -u "alice:$ALICE_PW" "$(auth_url '/token?service=entrepot&scope=repository:docker.io/library/alpine:pull')"
	tok=$AUTH_TOKEN
	check_eq "GET /token as alice for docker.io/library/alpine: a token that pulls it" \
		"$(http GET "$(auth_url "$alpine")" "${ca[@]}" -H "Authorization: Bearer $tok" -H "Accept: $ACCEPT_ALL") $(header Docker-Content-Digest)" \
		"200 ${UP_DIGEST[alpine]}"
	status=$(http GET "$(auth_url "$(auth_manifest docker.io/library/multi 1)")" "${ca[@]}" -H "Authorization: Bearer $tok")
	check_eq "that token on docker.io/library/multi (not in its scope): 401 insufficient_scope for that repository" \
		"$status $(header WWW-Authenticate)" \
		"401 $realm,scope=\"repository:docker.io/library/multi:pull\",error=\"insufficient_scope\""
	auth_token -u "alice:$ALICE_PW" "$(auth_url '/token?service=entrepot&scope=repository:local/team/app:pull')"
	tok=$AUTH_TOKEN
	check_eq "GET /token as alice for local/team/app: a token, without that scope (401 on the manifest)" \
		"$([[ -n $tok ]] && echo token) $(http GET "$(auth_url "$(auth_manifest local/team/app 1.2)")" "${ca[@]}" -H "Authorization: Bearer $tok")" \
		"token 401"
	auth_token -X POST --data-urlencode grant_type=password --data-urlencode service=entrepot \
		--data-urlencode username=alice --data-urlencode "password=$ALICE_PW" \
		--data-urlencode scope=repository:docker.io/library/multi:pull "$(auth_url /token)"
	tok=$AUTH_TOKEN
	check_eq "POST /token (password grant) as alice for docker.io/library/multi: a token that pulls it" \
		"$(http GET "$(auth_url "$(auth_manifest docker.io/library/multi 1)")" "${ca[@]}" -H "Authorization: Bearer $tok" -H "Accept: $ACCEPT_ALL") $(header Docker-Content-Digest)" \
		"200 ${UP_DIGEST[multi]}"
	check_eq "GET /token with a wrong password: 401 invalid_client" \
		"$(http GET "$(auth_url '/token?service=entrepot&scope=repository:docker.io/library/alpine:pull')" "${ca[@]}" -u "alice:$WRONG_PW") $(jq -r .error "$WORK/out/body" 2>/dev/null)" \
		"401 invalid_client"
}

# auth_lines FILTER [FILE]: how many lines of the audit trail (default: the
# current file) jq FILTER selects.
auth_lines() {
	jq -c "select($1)" "${2:-$AUTH_AUDIT}" 2>/dev/null | wc -l
}

# auth_audit: the trail's lines, and its reopening on SIGHUP.
auth_audit() {
	local total parsed n
	total=$(wc -l <"$AUTH_AUDIT")
	parsed=$(jq -c . "$AUTH_AUDIT" 2>/dev/null | wc -l) || true
	check_eq "audit.file: every one of its $total lines is a JSON object" "$parsed" "$total"
	n=$(auth_lines '.client == "alice" and .decision == "allowed" and .kind == "manifest" and .upstream == "docker.io" and .repo == "library/alpine" and .status == 200 and .rule == "access[0]"')
	check_eq "audit: alice's manifest pulls of docker.io library/alpine, allowed by access[0] (curl and 6 clients: at least 8; $n)" \
		"$((n >= 8))" 1
	check_eq "audit: alice's GETs of alpine:3.20 carry the digest served" \
		"$(jq -r 'select(.client == "alice" and .method == "GET" and .repo == "library/alpine" and .ref == "3.20" and .status == 200) | .digest' "$AUTH_AUDIT" | sort -u)" \
		"${UP_DIGEST[alpine]}"
	n=$(auth_lines '.client == "bob" and .decision == "denied" and .status == 403 and .result == "denied" and .rule == "no access rule grants bob pull on docker.io/library/alpine"')
	check_eq "audit: bob's basic-auth refusals (curl GET and HEAD): 403, with the rule that refused them ($n)" "$((n >= 2))" 1
	# Through the token flow bob's token grants nothing: the manifest
	# request is refused with 401, and the line names the token's scope.
	n=$(auth_lines '.client == "bob" and .decision == "denied" and .status == 401 and .rule == "the token does not grant pull on docker.io/library/alpine"')
	check_eq "audit: bob's token-flow refusal (skopeo --creds bob): 401, the token grants nothing ($n)" "$((n >= 1))" 1
	n=$(auth_lines '.client == "alice" and .decision == "denied" and .status == 403 and .repo == "team/app"')
	check_eq "audit: alice refused on local/team/app with basic auth (403; $n)" "$((n >= 1))" 1
	n=$(auth_lines '.client == "alice" and .decision == "denied" and .status == 401 and (.rule | startswith("the token does not grant pull on"))')
	check_eq "audit: alice's tokens refused outside their scope (401, the rule names the token; $n)" "$((n >= 1))" 1
	n=$(auth_lines '.client == "" and .decision == "denied" and .status == 401')
	check_eq "audit: anonymous refusals (401; $n)" "$((n >= 1))" 1
	n=$(auth_lines '.client == "ci" and .decision == "allowed" and .rule == "access[1]" and .upstream == "local"')
	check_eq "audit: the ci token's pulls of local/team/app, allowed by access[1] ($n)" "$((n >= 1))" 1
	check_eq "audit: no allowed line without a rule, no denied line with status other than 401 or 403" \
		"$(auth_lines '(.decision == "allowed" and (.rule // "") == "") or (.decision == "denied" and .status != 401 and .status != 403)')" 0

	# Rotation: the file moved away, SIGHUP, and the next lines go to a new
	# file at the configured path.
	local old=$AUTH_AUDIT.1 before id=e2e-audit-after-hup
	mv "$AUTH_AUDIT" "$old"
	before=$(wc -l <"$old")
	kill -HUP "$AUTH_PID"
	if ! wait_until "audit file reopened" 10 "$AUTH_PID" test -f "$AUTH_AUDIT"; then
		fail "kill -HUP: Entrepot opens a new audit file at $AUTH_AUDIT"
		mv "$old" "$AUTH_AUDIT"
		return 0
	fi
	pass "kill -HUP: Entrepot opens a new audit file at $AUTH_AUDIT"
	http GET "$(auth_url "$(auth_manifest docker.io/library/multi 1)")" --cacert "$AUTH_CA" -u "alice:$ALICE_PW" -H "X-Request-Id: $id" >/dev/null
	http GET "$(auth_url "$(auth_manifest docker.io/library/multi 1)")" --cacert "$AUTH_CA" -u "bob:$BOB_PW" -H "X-Request-Id: $id-bob" >/dev/null
	wait_until "audit lines in the new file" 10 "$AUTH_PID" test "$(wc -l <"$AUTH_AUDIT")" -ge 2 || true
	check_eq "after SIGHUP: the next requests' lines (alice allowed, bob denied) are in the new file, none in the moved one" \
		"$(jq -r 'select(.request_id | startswith("e2e-audit-after-hup")) | "\(.client):\(.decision)"' "$AUTH_AUDIT" | tr '\n' ' ')$(wc -l <"$old")" \
		"alice:allowed bob:denied $before"
}

# auth_no_secrets: no password, token or basic-auth value in Entrepot's
# log (debug level) or its audit trail.
auth_no_secrets() {
	local s f found=()
	for f in "$AUTH_LOG" "$AUTH_AUDIT" "$AUTH_AUDIT.1"; do
		[[ -f $f ]] || continue
		for s in "${AUTH_SECRETS[@]}"; do
			[[ -n $s ]] || continue
			grep -qF -- "$s" "$f" && found+=("${f##*/}: ${s:0:6}…")
		done
	done
	check_eq "no password, static token, issued token or basic-auth value (${#AUTH_SECRETS[@]} strings) in Entrepot's debug log or audit trail" \
		"${found[*]:-none}" none
	check_eq "Entrepot's log names users, and the refusals' rules" \
		"$(grep -c 'user=alice' "$AUTH_LOG" | awk '{ print ($1 > 0) }') $(grep -c 'rule="no access rule grants bob' "$AUTH_LOG" | awk '{ print ($1 > 0) }')" "1 1"
}

check_auth() {
	if ((E2E_DIRECT)); then
		log "== auth: skipped with E2E_DIRECT=1 (it configures Entrepot) =="
		return 0
	fi
	log "== auth: TLS, logins, access rules and the audit trail =="
	local tool
	for tool in openssl htpasswd podman; do
		if ! command -v "$tool" >/dev/null; then
			fail "$tool is on PATH (e2e/lib/install.sh installs it unless E2E_SKIP_INSTALL=1)"
			return 0
		fi
	done
	auth_setup || return 0
	auth_start || return 0
	auth_protocol
	auth_crane
	auth_skopeo
	auth_regctl
	auth_ctr
	auth_docker
	auth_podman
	auth_audit
	auth_no_secrets
	stop_pid entrepot-auth "$AUTH_PID"
}
