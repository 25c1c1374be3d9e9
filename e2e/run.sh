#!/usr/bin/env bash
# End-to-end suite for Entrepot: installs what it needs, starts a Distribution
# registry as the upstream, seeds it with made-up images, runs `entrepot
# serve` in front of it, and pulls every image through Entrepot with real
# clients (crane, skopeo, regctl, containerd, dockerd), checking each digest
# against what the upstream itself says. Everything listens on 127.0.0.1 and
# lives in one `mktemp -d` directory; nothing contacts a public registry.
#
# Output is TAP-like (`ok N - …` / `not ok N - …`), then a summary; the exit
# status is non-zero when any check failed.
#
# Environment:
#   E2E_DIRECT=1       point the clients at the upstream itself instead of
#                      Entrepot: tests the harness, not Entrepot
#   E2E_SKIP_INSTALL=1 do not install anything (tools must be on PATH)
#   E2E_GOBIN          where go-installed tools go (default: $(go env GOPATH)/bin)
#   E2E_BIG_MIB        size of the big layer in MiB (default 256)
#   E2E_BURST_MIB      size of the fill-once check's layer in MiB (default 32)
#   E2E_BURST_CLIENTS  concurrent clients of the fill-once check (default 6)
#   E2E_TIMEOUT        seconds allowed to each client command (default 300)
#   E2E_RESULTS        file for the timing results (default: $WORK/results.txt)
#   E2E_KEEP=1         keep the work directory after the run
#   E2E_ONLY           space-separated subset of: timing fill crane http cachestatus tags referrers
#                      sendfile skopeo regctl lifecycle containerd docker redirect push
#                      derive clientconfig auth outage
#                      (default: all)
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/.." && pwd)

# dockerd and containerd need root: re-run the whole suite under sudo.
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null || { echo "e2e/run.sh: needs root (or sudo)" >&2; exit 1; }
	# Without a terminal (CI) sudo must not wait for a password.
	sudo_flags=(--preserve-env)
	[[ -t 0 ]] || sudo_flags+=(--non-interactive)
	exec sudo "${sudo_flags[@]}" env "PATH=$PATH" bash "$0" "$@"
fi

command -v go >/dev/null || { echo "e2e/run.sh: go is not on PATH" >&2; exit 1; }

E2E_DIRECT=${E2E_DIRECT:-0}
E2E_BIG_MIB=${E2E_BIG_MIB:-256}
E2E_BURST_MIB=${E2E_BURST_MIB:-32}
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
E2E_KEEP=${E2E_KEEP:-0}
E2E_ONLY=${E2E_ONLY:-timing fill crane http cachestatus tags skopeo regctl referrers sendfile lifecycle containerd docker redirect push derive clientconfig auth outage}
E2E_GOBIN=${E2E_GOBIN:-$(go env GOPATH)/bin}

# shellcheck source=scripts/lib.sh
source "$E2E_DIR/../scripts/lib.sh"
# shellcheck source=e2e/lib/common.sh
source "$E2E_DIR/lib/common.sh"
# shellcheck source=e2e/lib/install.sh
source "$E2E_DIR/lib/install.sh"
# shellcheck source=e2e/lib/daemons.sh
source "$E2E_DIR/lib/daemons.sh"
# shellcheck source=e2e/lib/images.sh
source "$E2E_DIR/lib/images.sh"
for f in "$E2E_DIR"/checks/*.sh; do
	# shellcheck source=/dev/null
	source "$f"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/entrepot-e2e.XXXXXX")
E2E_STATE=$WORK
E2E_RESULTS=${E2E_RESULTS:-$WORK/results.txt}
LAST_ERR=$WORK/last.err
mkdir -p "$WORK/bin" "$WORK/logs" "$WORK/out" "$WORK/home"
: >"$LAST_ERR"
START=$(now)

summary() {
	echo
	echo "# ---- summary ----"
	if ((${#TIMES[@]} > 0)); then
		local kept="set E2E_RESULTS=FILE to keep them"
		[[ -f $E2E_RESULTS ]] && kept="also in $E2E_RESULTS"
		echo "# crane blob of the ${E2E_BIG_MIB} MiB layer, seconds ($kept):"
		printf '#   %s\n' "${TIMES[@]}"
	fi
	local f
	for f in "${FAILURES[@]}"; do echo "# failed: $f"; done
	echo "# wall time: $(elapsed "$START") s"
	echo "1..$CHECKS"
	echo "e2e: $PASSED passed, $FAILED failed"
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM ERR
	if ((rc != 0 && FAILED == 0)); then
		# Stopped early with no failed check (a signal, an unexpected error):
		# count that as a failure, so the summary cannot read as a pass.
		FAILED=1
		FAILURES+=("the run stopped early (exit $rc); not every check ran")
	fi
	((FAILED > 0)) && show_logs
	stop_all
	remove_run_docker
	unmount_under "$WORK"
	if ((E2E_KEEP)); then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	summary
	((rc == 0 && FAILED > 0)) && rc=1
	exit "$rc"
}
trap cleanup EXIT
# An unexpected failure (not a failed check) stops the run under set -e; say
# where. Subshells ($(…)) inherit the trap (-E) but stay quiet.
set -E
on_err() {
	((BASH_SUBSHELL == 0)) || return 0
	printf 'Bail out! unexpected failure (exit %s) at %s: %s\n' "$1" "$2" "$3"
	[[ -s $LAST_ERR ]] && tail -n 5 "$LAST_ERR" | sed 's/^/#   stderr: /'
	return 0
}
trap 'on_err $? "${BASH_SOURCE[0]}:$LINENO" "$BASH_COMMAND"' ERR
trap 'echo "Bail out! interrupted (SIGINT)"; exit 130' INT
trap 'echo "Bail out! terminated (SIGTERM)"; exit 143' TERM

# Tools run with a HOME of their own: no credentials or settings of the
# machine's user leak in. The Go caches stay where they are.
export GOPATH GOCACHE GOMODCACHE
GOPATH=$(go env GOPATH) GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE)
export PATH="$E2E_GOBIN:$PATH"
export HOME=$WORK/home DOCKER_CONFIG=$WORK/home/.docker
unset XDG_CONFIG_HOME XDG_RUNTIME_DIR REGISTRY_AUTH_FILE

log "work dir: $WORK"
if [[ ${E2E_SKIP_INSTALL:-0} == 1 ]]; then
	for tool in skopeo containerd ctr dockerd docker jq curl crane regctl registry; do
		command -v "$tool" >/dev/null || die "E2E_SKIP_INSTALL=1 but $tool is not on PATH"
	done
else
	install_tools
fi

# The closed loopback ports that the mirrors' fallbacks point at.
port_closed 1 || die "127.0.0.1:1 accepts connections; containerd's fallback needs it closed"
port_closed 9 || die "127.0.0.1:9 accepts connections; dockerd's proxy needs it closed"

start_upstream
seed_upstream
read_upstream

if ((E2E_DIRECT)); then
	log "E2E_DIRECT=1: clients talk to the upstream itself (harness self-test)"
	CACHE=$UPSTREAM
	CACHE_PID=$UP_PID
else
	start_entrepot || die "Entrepot is not running; no client check can run"
fi

only() { [[ " $E2E_ONLY " == *" $1 "* ]]; }
only timing && check_timing
only fill && check_fill
only crane && check_crane
only http && check_http
only cachestatus && check_cachestatus
only tags && check_tags
only skopeo && check_skopeo
only regctl && check_regctl
only referrers && check_referrers
only sendfile && check_sendfile
only lifecycle && check_lifecycle
if only containerd || only docker || only redirect || only push || only derive; then
	write_hosts_dir
	if start_containerd; then
		only containerd && check_containerd
		# redirect and push use dockerd too.
		if only docker || only redirect || only push || only derive; then
			if start_dockerd; then only docker && check_docker; fi
		fi
		only redirect && check_redirect
		only push && check_push
		# derive uses containerd and dockerd, and podman.
		only derive && check_derive
	fi
fi
only clientconfig && check_clientconfig
# Before outage, which stops the upstream.
only auth && check_auth
only outage && check_outage
exit 0
