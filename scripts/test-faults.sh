#!/usr/bin/env bash
# The fault-injection suite: real Toxiproxy (built from the Go module proxy and
# cached under .cache/ by ensure-toxiproxy.sh) between the proxy and fake
# Tritons and between the proxy and Redis, plus a Redis Sentinel failover with
# real redis-server and redis-sentinel processes. Bounded: about a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$(scripts/ensure-node.sh):$PATH"
scripts/ensure-redis.sh
TOXIPROXY_BIN="$(scripts/ensure-toxiproxy.sh)"
export TOXIPROXY_BIN FAULTS_REQUIRED=1
exec npx mocha --no-config --require tsx/cjs --timeout 90000 --exit 'test/faults/**/*.test.ts'
