#!/usr/bin/env bash
# Installs and starts the proxy with its embedded default: the built-in demo
# Triton backend (in-process fake) and in-memory model state. Listens on PORT
# (default 8000) and GRPC_PORT (default 8001, Triton's gRPC port; 0 turns the
# gRPC front end off) and prints a curl command that runs an inference.
# Ctrl-C stops it at once (the shutdown delay does not apply to the demo).
# `npm run demo` runs this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$(scripts/ensure-node.sh):$PATH"
# Install only when node_modules is missing or older than the lock file, so a
# second run starts in seconds (npm ci would delete and reinstall everything).
# DEMO_SKIP_INSTALL=1 never installs: the test suite runs the demo while its
# own node_modules is in use, and a reinstall there would pull it from under it.
if [ "${DEMO_SKIP_INSTALL:-}" != 1 ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
export DEMO_BACKEND=true
export LOG_FORMAT="${LOG_FORMAT:-pretty}"
exec node dist/src/main.js
