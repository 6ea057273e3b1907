#!/usr/bin/env bash
# Creates the conformance suite's Python environment under the cache dir, or
# reuses it when the pinned requirements, this script and the interpreter are
# unchanged. FRESH=1 (run.sh --fresh) wipes the venv and pip's wheel cache
# first, so the first-time cost can be measured and a broken cache repaired.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CONFORMANCE_CACHE_DIR:?CONFORMANCE_CACHE_DIR must be set}"
PYTHON="${CONFORMANCE_PYTHON:-python3}"
VENV="$CACHE/venv"
FRESH="${FRESH:-0}"

if [[ "$FRESH" == "1" ]]; then
  rm -rf "$VENV" "$CACHE/pip-cache"
fi

stamp="$(
  {
    cat "$HERE/requirements.txt" "$HERE/server-requirements.txt" "$HERE/setup-venv.sh" "$HERE/harness/layout.py"
    "$PYTHON" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
)"

if [[ -f "$VENV/.stamp" && "$(cat "$VENV/.stamp")" == "$stamp" ]]; then
  exit 0
fi

echo "conformance: creating Python venv in $VENV (pinned, wheels only)"
started=$(date +%s)
rm -rf "$VENV"
mkdir -p "$CACHE"
"$PYTHON" -m venv "$VENV"
export PIP_CACHE_DIR="$CACHE/pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$VENV/bin/python" -m pip install --quiet --only-binary=:all: -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --only-binary=:all: --no-deps -r "$HERE/server-requirements.txt"
# Links the bundled tritonserver, Python backend stub and perf_analyzer's
# libraries into place and proves with ldd that every binary resolves.
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$HERE" "$VENV/bin/python" -m harness.layout prepare "$VENV"
echo "$stamp" >"$VENV/.stamp"

elapsed=$(($(date +%s) - started))
echo "conformance: venv ready in ${elapsed}s, $(du -sh "$VENV" | cut -f1) on disk"
