#!/usr/bin/env bash
# The one command that installs everything the tests need on a fresh machine
# (Node >= 22, npm packages, redis-server, helm, Python venvs for conformance)
# and runs every test: lint, format, typecheck, cycle check, unit, integration,
# the status page in headless Chromium (Debian's chromium), helm chart
# validation, the network-fault suite (Toxiproxy built from the Go
# module proxy, Redis Sentinel), the conformance suite against a real server, the
# chart on a real Kubernetes control plane (HPA included), the chart's alert rules
# under promtool (built from the same Prometheus module, so after the k8s suite it
# is mostly Go build-cache hits), and the container image built and run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$(scripts/ensure-node.sh):$PATH"
echo "node $(node --version), npm $(npm --version)"
npm ci --no-audit --no-fund --loglevel=error
scripts/ensure-redis.sh
bash scripts/ensure-helm.sh >/dev/null
npm test
npm run test:browser
npm run test:faults
npm run test:conformance
npm run test:k8s
npm run test:rules
npm run test:image
