# shellcheck shell=bash
# Installs the suite's tools, skipping whatever is already there:
#   - from Debian's packages: skopeo, containerd (with ctr), docker.io
#     (dockerd and the docker CLI), jq, curl, strace, podman when the
#     clientconfig or auth section runs (E2E_ONLY), and for auth openssl
#     (its CA and certificate) and apache2-utils (htpasswd -B);
#   - with `go install` at pinned versions (scripts/lib.sh, and regctl's
#     here), into $E2E_GOBIN: crane, regctl and the Distribution registry
#     (the suite's upstream); oras when the push section runs, versitygw
#     (an S3 server) when the redirect section runs.

REGCTL_VERSION=v0.11.7
ORAS_VERSION=v1.3.6
VERSITYGW_VERSION=v1.8.0

install_apt_packages() {
	local need=()
	command -v skopeo >/dev/null || need+=(skopeo)
	{ command -v containerd && command -v ctr; } >/dev/null || need+=(containerd)
	{ command -v dockerd && command -v docker; } >/dev/null || need+=(docker.io)
	command -v jq >/dev/null || need+=(jq)
	command -v curl >/dev/null || need+=(curl)
	command -v strace >/dev/null || need+=(strace)
	local only=" ${E2E_ONLY:-clientconfig auth} "
	if [[ $only == *" clientconfig "* || $only == *" auth "* ]]; then
		command -v podman >/dev/null || need+=(podman)
	fi
	if [[ $only == *" auth "* ]]; then
		command -v openssl >/dev/null || need+=(openssl)
		command -v htpasswd >/dev/null || need+=(apache2-utils)
	fi
	if ((${#need[@]} == 0)); then
		log "apt packages: all present"
		return 0
	fi
	log "apt packages: installing ${need[*]}"
	apt_install "$E2E_STATE/apt.log" "${need[@]}"
}

install_tools() {
	install_apt_packages
	go_tool "$E2E_GOBIN" crane github.com/google/go-containerregistry \
		github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
	go_tool "$E2E_GOBIN" regctl github.com/regclient/regclient \
		github.com/regclient/regclient/cmd/regctl "$REGCTL_VERSION"
	go_tool "$E2E_GOBIN" registry github.com/distribution/distribution/v3 \
		github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION"
	local only=" ${E2E_ONLY:-push redirect} "
	if [[ $only == *" push "* ]]; then
		go_tool "$E2E_GOBIN" oras oras.land/oras oras.land/oras/cmd/oras "$ORAS_VERSION"
	fi
	if [[ $only == *" redirect "* ]]; then
		go_tool "$E2E_GOBIN" versitygw github.com/versity/versitygw \
			github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
	fi
}
