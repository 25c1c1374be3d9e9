# shellcheck shell=bash
# Installs the benchmark's tools, skipping whatever is already there at the
# pinned version (set in run.sh and scripts/lib.sh):
#   - Debian packages: nginx, wrk (pinned), jq, curl, and containerd (pinned)
#     when the wan measurement runs;
#   - `go install` into $BENCH_GOBIN: crane, the Distribution registry, hey.

# deb_version PACKAGE: the installed version, or nothing (dpkg-query fails
# for a package dpkg has never heard of: under pipefail that would end the
# run on a bare machine).
deb_version() { { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } | awk '$3 == "installed" { print $4 }'; }

install_apt_packages() {
	local need=() pkg want have pkgs=("nginx=$NGINX_DEB_VERSION" "wrk=$WRK_DEB_VERSION" jq curl)
	# ctr is a client of the wan measurement only; installing it does not
	# start the system's containerd (apt_install sees to that).
	in_only wan && pkgs+=("containerd=$CONTAINERD_DEB_VERSION")
	for pkg in "${pkgs[@]}"; do
		want=${pkg#*=}
		[[ $want == "$pkg" ]] && want=""
		have=$(deb_version "${pkg%%=*}")
		if [[ -z $have || (-n $want && $have != "$want") ]]; then
			need+=("$pkg")
		fi
	done
	if ((${#need[@]} == 0)); then
		log "apt packages: all present"
		return 0
	fi
	log "apt packages: installing ${need[*]} (results.json records the versions that ran)"
	apt_install "$WORK/logs/apt.log" "${need[@]}"
}

install_all() {
	install_apt_packages
	go_tool "$BENCH_GOBIN" crane github.com/google/go-containerregistry \
		github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
	go_tool "$BENCH_GOBIN" registry github.com/distribution/distribution/v3 \
		github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION"
	go_tool "$BENCH_GOBIN" hey github.com/rakyll/hey github.com/rakyll/hey "$HEY_VERSION"
}
