#!/usr/bin/env bash
# Makes redis-server available for the test harness (which starts its own
# instance on a free port). Installs Debian's package when missing.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ -x /usr/bin/redis-server ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends redis-server >&2
# The package starts a system instance; tests use their own.
$SUDO service redis-server stop >/dev/null 2>&1 || true
command -v redis-server >/dev/null
