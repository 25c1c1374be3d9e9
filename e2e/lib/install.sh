# shellcheck shell=bash
# Installs the suite's tools, skipping whatever is already there:
#   - from Debian's packages: skopeo, containerd (with ctr), docker.io
#     (dockerd and the docker CLI), jq, curl;
#   - with `go install` at pinned versions, into $E2E_GOBIN: crane, regctl
#     and the Distribution registry (the suite's upstream).

# Pinned versions. crane matches the go-containerregistry of Entrepot's go.mod.
CRANE_VERSION=v0.22.1
REGCTL_VERSION=v0.11.7
DISTRIBUTION_VERSION=v3.1.2

# as_root CMD...: runs CMD as root, through sudo when we are not root.
as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

install_apt_packages() {
	local need=()
	command -v skopeo >/dev/null || need+=(skopeo)
	{ command -v containerd && command -v ctr; } >/dev/null || need+=(containerd)
	{ command -v dockerd && command -v docker; } >/dev/null || need+=(docker.io)
	command -v jq >/dev/null || need+=(jq)
	command -v curl >/dev/null || need+=(curl)
	if ((${#need[@]} == 0)); then
		log "apt packages: all present"
		return 0
	fi
	log "apt packages: installing ${need[*]}"
	# Installing docker.io or containerd must not start the system's own
	# daemons (with /var/lib state and iptables rules): a policy-rc.d that
	# answers 101 forbids it. Keep one the machine already has.
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		made_policy=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q >/dev/null || rc=$?
	if ((rc == 0)); then
		as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
			apt-get install -y -q --no-install-recommends "${need[@]}" >"$E2E_STATE/apt.log" 2>&1 || rc=$?
	fi
	((made_policy)) && as_root rm -f "$policy"
	if ((rc != 0)); then
		tail -n 20 "$E2E_STATE/apt.log" 2>/dev/null | sed 's/^/#   /'
		die "apt-get install ${need[*]} failed (exit $rc)"
	fi
}

# go_tool BIN MODULE PACKAGE VERSION: installs PACKAGE@VERSION unless
# $E2E_GOBIN/BIN was already built from MODULE at VERSION.
go_tool() {
	local bin=$1 module=$2 pkg=$3 version=$4
	local have
	have=$(go version -m "$E2E_GOBIN/$bin" 2>/dev/null | awk '$1 == "mod" { print $2 " " $3; exit }') || true
	if [[ $have == "$module $version" ]]; then
		log "$bin $version: present"
		return 0
	fi
	log "$bin $version: go install $pkg@$version"
	GOBIN=$E2E_GOBIN timeout 900 go install "$pkg@$version" || die "go install $pkg@$version failed"
}

install_tools() {
	install_apt_packages
	mkdir -p "$E2E_GOBIN"
	go_tool crane github.com/google/go-containerregistry \
		github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
	go_tool regctl github.com/regclient/regclient \
		github.com/regclient/regclient/cmd/regctl "$REGCTL_VERSION"
	go_tool registry github.com/distribution/distribution/v3 \
		github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION"
}
