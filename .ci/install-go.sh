#!/usr/bin/env bash
# Installs the Go toolchain that go.mod names into $1 (default /usr/local/go)
# on a Debian machine that has none. Debian's own Go is too old to build
# Entrepot, but it knows where the Go module proxy is, and the proxy serves
# every Go release as the module golang.org/toolchain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=${1:-/usr/local/go}
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

want=$(awk '$1 == "toolchain" { sub(/^go/, "", $2); print $2; exit } $1 == "go" { v = $2 } END { if (v) print v }' go.mod | head -n1)
arch=$(dpkg --print-architecture)
echo "install-go: installing Go $want ($arch) into $dest"

$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go curl unzip ca-certificates >/dev/null
proxy=$(/usr/lib/go/bin/go env GOPROXY 2>/dev/null || go env GOPROXY)
proxy=${proxy%%,*}
[ -n "$proxy" ] && [ "$proxy" != direct ] && [ "$proxy" != off ] || { echo "install-go: no module proxy configured" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mod="v0.0.1-go$want.linux-$arch"
curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/$mod.zip"
unzip -q "$tmp/go.zip" -d "$tmp/x"
# Module zips keep no file modes: restore the executables.
root="$tmp/x/golang.org/toolchain@$mod"
chmod +x "$root"/bin/* "$root"/pkg/tool/*/*
$sudo rm -rf "$dest"
$sudo mkdir -p "$(dirname "$dest")"
$sudo mv "$root" "$dest"
"$dest/bin/go" version
