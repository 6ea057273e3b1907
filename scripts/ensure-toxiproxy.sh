#!/usr/bin/env bash
# Prints the path of a toxiproxy server binary for the fault-injection suite,
# building it from the Go module proxy on first use and caching it under the
# git-ignored .cache/ (a cached build costs one stat). Also makes sure
# redis-sentinel (Debian package) is there for the Sentinel failover test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION="v2.12.0"
DIR=".cache/toxiproxy/${VERSION}"
BIN="${DIR}/server"
if [ ! -x "$BIN" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "ensure-toxiproxy: Go is needed to build toxiproxy ${VERSION}" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  echo "ensure-toxiproxy: building github.com/Shopify/toxiproxy/v2 ${VERSION} (first run only)" >&2
  # GOBIN must be absolute; GOFLAGS/GOWORK keep a caller's settings out of it.
  GOBIN="$(pwd)/${DIR}" GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 \
    go install -ldflags="-s -w" "github.com/Shopify/toxiproxy/v2/cmd/server@${VERSION}" >&2
fi
if ! command -v redis-sentinel >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends redis-sentinel >&2
  # The package starts a system sentinel; tests run their own.
  $SUDO service redis-sentinel stop >/dev/null 2>&1 || true
fi
echo "$(pwd)/${BIN}"
