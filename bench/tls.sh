# shellcheck shell=bash
# The tls measurement of bench/run.sh (BENCH_ONLY tls): what TLS costs a
# warm blob. A second Entrepot and a second nginx serve HTTPS with one
# certificate (bench/cmd/selfcert wrote it to $TLS_DIR; the clients trust
# its authority), and the load of the warm measurement runs against the
# plain and the TLS servers in the same rounds, each run under procmon for
# the server's CPU seconds and the client's.
#
# Go has no kernel TLS: over TLS Entrepot copies every blob through user
# space, where plain HTTP goes out with sendfile. nginx is asked for kernel
# TLS (OpenSSL's KTLS option), which keeps sendfile under TLS where the
# kernel has its tls module and OpenSSL was built for it; $WORK/tls.json
# (meta.json's tls) records which mode nginx ran in, why, and what the
# client negotiated with each server.

# ktls_tx_total: the TLS transmit contexts the kernel has set up since it
# booted (TlsTxSw + TlsTxDevice of /proc/net/tls_stat); 0 without its tls
# module. Another tenant's kernel TLS would count too: none is expected on
# the benchmark's machine.
ktls_tx_total() {
	if [[ ! -r /proc/net/tls_stat ]]; then
		echo 0
		return
	fi
	awk '$1 == "TlsTxSw" || $1 == "TlsTxDevice" { n += $2 } END { print n + 0 }' /proc/net/tls_stat
}

# ktls_obstacles: why nginx cannot send with kernel TLS here, as far as the
# machine tells (nothing when the kernel and OpenSSL both can). Loads the
# kernel's tls module first when it is missing and modprobe is there.
ktls_obstacles() {
	local why=()
	if [[ ! -e /proc/net/tls_stat ]] && [[ $(id -u) == 0 ]] && command -v modprobe >/dev/null; then
		modprobe -q tls 2>/dev/null && log "  loaded the kernel's tls module"
	fi
	if [[ ! -e /proc/net/tls_stat ]]; then
		local config
		config=$(zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?CONFIG_TLS[= ]' || true)
		config=${config#\# } # "CONFIG_TLS is not set"
		why+=("the kernel has no tls module (no /proc/net/tls_stat${config:+; $config})")
	fi
	if ! command -v openssl >/dev/null; then
		why+=("no openssl tool to tell whether OpenSSL was built with kTLS")
	elif [[ $(openssl s_server -help 2>&1 || true) != *-sendfile* ]]; then
		why+=("OpenSSL was built without kTLS (openssl s_server has no -sendfile)")
	fi
	local out="" w
	for w in "${why[@]}"; do out+="${out:+; }$w"; done
	printf '%s' "$out"
}

# tls_start: Entrepot over TLS on its own empty store, warmed with one
# checked pull of each blob, and nginx over TLS; writes $WORK/tls.json.
tls_start() {
	local ca=$TLS_DIR/ca.pem check=$WORK/check.json
	start_bg entrepot-tls "$WORK/logs/entrepot-tls.log" "$BIN/entrepot" serve --listen "127.0.0.1:$ET_PORT" \
		--data "$WORK/entrepot-tls-data" --upstream "docker.io=$FRONT" "${ADMIN_FLAG[@]}" \
		--tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem"
	ET_PID=$BG_PID
	"$BIN/waitready" --url "${BASE[entrepot-tls]}/v2/" --ca "$ca" --pid "$ET_PID" --timeout 60s >/dev/null ||
		die "entrepot over TLS did not start"
	fetch_json "$check" --ca "$ca" --url "$(blob_url entrepot-tls small)" --digest "$SMALL_DIGEST"
	fetch_json "$check" --ca "$ca" --url "$(blob_url entrepot-tls large)" --digest "$LARGE_DIGEST"
	local entrepot_conn
	entrepot_conn=$(jq -r .conn "$check")

	local obstacles tx0 asked=true
	obstacles=$(ktls_obstacles)
	tx0=$(ktls_tx_total)
	if ! start_nginx nginx-tls "$NT_PORT" ktls; then
		# An nginx or OpenSSL that refuses the option: TLS without it.
		log "  nginx did not start with ssl_conf_command Options KTLS; again without it"
		stop_named nginx-tls
		asked=false
		obstacles+="${obstacles:+; }nginx did not start with ssl_conf_command Options KTLS"
		start_nginx nginx-tls "$NT_PORT" tls || die "nginx over TLS did not start"
	fi
	NT_PID=$BG_PID
	fetch_json "$check" --ca "$ca" --url "$(blob_url nginx-tls small)" --digest "$SMALL_DIGEST"
	fetch_json "$check" --ca "$ca" --url "$(blob_url nginx-tls large)" --digest "$LARGE_DIGEST"
	local nginx_conn tx
	nginx_conn=$(jq -r .conn "$check")
	tx=$(($(ktls_tx_total) - tx0))

	local mode="user-space TLS (SSL_write of buffers read from the file)"
	((tx > 0)) && mode="kernel TLS (SSL_sendfile)" obstacles=""
	log "  Entrepot over TLS: $entrepot_conn; nginx: $nginx_conn, $mode${obstacles:+ ($obstacles)}"
	jq -n --arg mode "$mode" --arg why "$obstacles" --argjson asked "$asked" --argjson tx "$tx" \
		--arg entrepot "$entrepot_conn" --arg nginx "$nginx_conn" \
		--arg openssl "$(openssl version 2>/dev/null || echo unknown)" \
		'{nginx_mode: $mode, nginx_ktls_asked: $asked, nginx_ktls_obstacles: $why,
		  kernel_tls_tx_contexts: $tx, entrepot_conn: $entrepot, nginx_conn: $nginx, openssl: $openssl}' \
		>"$WORK/tls.json"
}

bench_tls() {
	log "7. TLS: warm blob throughput and CPU per GiB, plain HTTP and HTTPS (${BENCH_ROUNDS} rounds)"
	if [[ $ENTREPOT_HELP != *--tls-cert* ]]; then
		log "  warning: this Entrepot build has no --tls-cert: no tls measurement"
		return 0
	fi
	tls_start
	local r size mib c n p passes sys pid children f=$WORK/m.json cpu=$WORK/cpu-tls.json gib
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for size in small large; do
			mib=$SMALL_MIB
			[[ $size == large ]] && mib=$LARGE_MIB
			for c in 1 16; do
				# The cases and passes of bench_warm.
				n=1 passes=1
				((c == 1 && mib < 2048)) && n=$((2048 / mib))
				((c == 1)) && passes=3
				for ((p = 1; p <= passes; p++)); do
					for sys in $(rotate "$(((r - 1) * passes + p))" entrepot entrepot-tls nginx nginx-tls); do
						children=()
						case $sys in
						entrepot) pid=$E_PID ;;
						entrepot-tls) pid=$ET_PID ;;
						nginx) pid=$N_PID children=(--children) ;;
						nginx-tls) pid=$NT_PID children=(--children) ;;
						esac
						timeout 900 "$BIN/procmon" --pids "$pid" "${children[@]}" --out "$cpu" -- \
							"$BIN/fetch" --timeout 600s --ca "$TLS_DIR/ca.pem" --url "$(blob_url "$sys" "$size")" \
							--clients "$c" --requests "$n" \
							>"$f" 2>>"$WORK/logs/fetch.log" || die "tls run via $sys failed: $(tail -n 2 "$WORK/logs/fetch.log")"
						gib=$(jq '.bytes / 1073741824' "$f")
						rec tls "$size-${c}c" "$sys" "$r" mbps "$(jq .mbps "$f")"
						rec tls "$size-${c}c" "$sys" "$r" cpu_s_per_gib "$(jq --argjson g "$gib" '.cpu_s / $g' "$cpu")"
						rec tls "$size-${c}c" "$sys" "$r" client_cpu_s_per_gib "$(jq --argjson g "$gib" '.command_cpu_s / $g' "$cpu")"
					done
				done
			done
		done
		log "  round $r/$BENCH_ROUNDS done"
	done
	stop_named entrepot-tls
	stop_named nginx-tls
	rm -rf "$WORK/entrepot-tls-data"
}
