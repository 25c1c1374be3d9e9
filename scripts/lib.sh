# shellcheck shell=bash
# What the end-to-end suite (e2e/) and the benchmark (bench/) share: the
# tool versions both pin, installing Debian packages and Go tools, and
# stopping the background processes they started. The caller defines log
# and die.

# Pinned versions. crane matches the go-containerregistry of go.mod.
CRANE_VERSION=v0.22.1
DISTRIBUTION_VERSION=v3.1.2

# as_root CMD...: runs CMD as root, through sudo when we are not root.
as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

# apt_install LOGFILE PKG[=VERSION]...: installs the packages with apt-get.
# Installing must not start the system's own daemons (nginx, dockerd,
# containerd): a policy-rc.d that answers 101 forbids it; one the machine
# already has is kept. A pinned version that a security update has replaced
# is no longer offered: then the current one is installed, and the caller
# records the version that ran.
apt_install() {
	local logfile=$1
	shift
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		made_policy=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q >/dev/null || rc=$?
	if ((rc == 0)); then
		as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
			apt-get install -y -q --no-install-recommends "$@" >"$logfile" 2>&1 || rc=$?
		if ((rc != 0)) && [[ "$*" == *=* ]]; then
			log "apt: pinned versions unavailable; installing the current ones"
			rc=0
			as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
				apt-get install -y -q --no-install-recommends "${@%%=*}" >"$logfile" 2>&1 || rc=$?
		fi
	fi
	((made_policy)) && as_root rm -f "$policy"
	if ((rc != 0)); then
		tail -n 20 "$logfile" >&2 2>/dev/null || true
		die "apt-get install $* failed (exit $rc)"
	fi
}

# go_tool GOBIN BIN MODULE PACKAGE VERSION: installs PACKAGE@VERSION into
# GOBIN unless GOBIN/BIN was already built from MODULE at VERSION.
go_tool() {
	local gobin=$1 bin=$2 module=$3 pkg=$4 version=$5 have
	have=$(go version -m "$gobin/$bin" 2>/dev/null | awk '$1 == "mod" { print $2 " " $3; exit }') || true
	if [[ $have == "$module $version" ]]; then
		log "$bin $version: present"
		return 0
	fi
	log "$bin $version: go install $pkg@$version"
	mkdir -p "$gobin"
	GOBIN=$gobin timeout 900 go install "$pkg@$version" || die "go install $pkg@$version failed"
}

# port_closed PORT: true when nothing accepts connections on 127.0.0.1:PORT.
port_closed() {
	! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# pick_port VAR: stores in VAR a loopback port that nothing listens on and
# that this run has not handed out yet. Ports come from below Linux's
# default ephemeral range (32768-60999), so that no outgoing connection
# takes one between this check and the server's bind.
USED_PORTS=" 1 9 "
pick_port() {
	local p _
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if port_closed "$p"; then
			USED_PORTS+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# Background processes started by this run, as NAME=PID, stopped in reverse
# order by stop_all. Only these PIDs are ever signalled.
PROCS=()

# stop_pid NAME PID: SIGTERM, up to 20 s of grace, then SIGKILL; reaps it
# when it is our child.
stop_pid() {
	local name=$1 pid=$2 i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	local i entry
	for ((i = ${#PROCS[@]} - 1; i >= 0; i--)); do
		entry=${PROCS[i]}
		stop_pid "${entry%%=*}" "${entry#*=}"
	done
	PROCS=()
}
