#!/usr/bin/env bash
# Builds kserve/rest-proxy (Go, grpc-gateway), the closest existing KServe v2
# REST -> gRPC proxy, as the benchmark's peer, and prints the binary's path.
# Nothing of it is committed: the source is checked out under the git-ignored
# .cache/rest-proxy and built with the Go toolchain from the module proxy.
# Cached: a second run with the same commit only prints the path.
#
# Usage: REST_PROXY_BIN="$(scripts/build-rest-proxy.sh)" npm run bench
#   REST_PROXY_GIT     where to clone from (default https://github.com/kserve/rest-proxy.git;
#                      a local mirror or bare git dir works too)
#   REST_PROXY_COMMIT  commit to build (default: the one the README figures were measured with)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
commit="${REST_PROXY_COMMIT:-fdf1d9ef24d47c3743412cd6d645d5bc6f8646b3}"
src="${REST_PROXY_GIT:-https://github.com/kserve/rest-proxy.git}"
dir="$root/.cache/rest-proxy"
bin="$dir/bin/rest-proxy-${commit:0:12}"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "build-rest-proxy: Go is needed (go.dev/dl or apt golang)" >&2; exit 1; }
if [ ! -d "$dir/src/.git" ]; then
  rm -rf "$dir/src"
  mkdir -p "$dir"
  git clone --quiet --no-checkout "$src" "$dir/src" >&2
fi
git -C "$dir/src" cat-file -e "$commit^{commit}" 2>/dev/null || git -C "$dir/src" fetch --quiet origin >&2
git -C "$dir/src" -c advice.detachedHead=false checkout --quiet --force "$commit" >&2
mkdir -p "$dir/bin"
# Its own go.mod pins every dependency; -trimpath keeps the build reproducible.
(cd "$dir/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$bin" ./proxy) >&2
echo "$bin"
