# shellcheck shell=bash
# Installs the benchmark's tools, skipping whatever is already there at the
# pinned version (the versions are set in run.sh):
#   - Debian packages: nginx, wrk (pinned), jq, curl;
#   - `go install` into $BENCH_GOBIN: crane, the Distribution registry, hey.

as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

# deb_version PACKAGE: the installed version, or nothing.
deb_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '$3 == "installed" { print $4 }'; }

install_apt_packages() {
	local need=() pkg want have
	for pkg in "nginx=$NGINX_DEB_VERSION" "wrk=$WRK_DEB_VERSION" jq curl; do
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
	log "apt packages: installing ${need[*]}"
	# Installing nginx must not start the system's own nginx: a
	# policy-rc.d that answers 101 forbids it. Keep one the machine has.
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		made_policy=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q >/dev/null || rc=$?
	if ((rc == 0)); then
		as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
			apt-get install -y -q --no-install-recommends "${need[@]}" >"$WORK_LOGS/apt.log" 2>&1 || rc=$?
		if ((rc != 0)); then
			# A pinned version that a security update has replaced is
			# no longer offered: take the current one, and say so
			# (results.json records the version that ran).
			log "apt: pinned versions unavailable; installing the current ones (see results.json)"
			rc=0
			as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
				apt-get install -y -q --no-install-recommends "${need[@]%%=*}" >"$WORK_LOGS/apt.log" 2>&1 || rc=$?
		fi
	fi
	((made_policy)) && as_root rm -f "$policy"
	if ((rc != 0)); then
		tail -n 20 "$WORK_LOGS/apt.log" >&2
		die "apt-get install ${need[*]} failed (exit $rc)"
	fi
}

# go_tool BIN MODULE PACKAGE VERSION: installs PACKAGE@VERSION unless
# $BENCH_GOBIN/BIN was already built from MODULE at VERSION.
go_tool() {
	local bin=$1 module=$2 pkg=$3 version=$4 have
	have=$(go version -m "$BENCH_GOBIN/$bin" 2>/dev/null | awk '$1 == "mod" { print $2 " " $3; exit }') || true
	if [[ $have == "$module $version" ]]; then
		log "$bin $version: present"
		return 0
	fi
	log "$bin $version: go install $pkg@$version"
	GOBIN=$BENCH_GOBIN timeout 900 go install "$pkg@$version" || die "go install $pkg@$version failed"
}

install_all() {
	WORK_LOGS=$WORK/logs
	install_apt_packages
	mkdir -p "$BENCH_GOBIN"
	go_tool crane github.com/google/go-containerregistry \
		github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
	go_tool registry github.com/distribution/distribution/v3 \
		github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION"
	go_tool hey github.com/rakyll/hey github.com/rakyll/hey "$HEY_VERSION"
}
