#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the k8s suite runs (and, when
# asked by name, promtool for the rules suite), from the Go module proxy (the
# only reachable source here besides package registries), and caches them under
# <repo>/.cache/k8s/bin. Prints that directory on stdout.
# Usage: ensure-k8s-tools.sh [tool...]   (no tool: everything the k8s suite needs)
#
# Each binary is rebuilt only when its pinned version changes: <bin>.version
# beside it records what was built. `go install pkg@version` does not work for
# these modules (k8s.io/kubernetes ships without its staging/ tree, etcd and
# others point replace directives at sibling folders), so each module is
# fetched with `go mod download`, copied somewhere writable, its go.mod fixed
# up, and built there. See /work/shared/notes/k8s-control-plane.md.
#
# Builds are CPU heavy (about 12 min cold on 2 cores, seconds with a warm Go
# build cache), so they run under `nice` one at a time.
set -euo pipefail

readonly K8S_VERSION='v1.34.4'
readonly K8S_STAGING_VERSION='v0.34.4'
readonly ETCD_VERSION='v3.6.6'
readonly KWOK_VERSION='v0.7.0'
readonly PROMETHEUS_MODULE_VERSION='v0.316.0'
readonly ADAPTER_VERSION='v0.12.0'
readonly PROMETHEUS_OPERATOR_VERSION='v0.85.0'
readonly KEDA_VERSION='v2.16.1'

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${repo_root}/.cache/k8s"
bin_dir="${cache_dir}/bin"
crd_dir="${cache_dir}/crds"
src_dir="${cache_dir}/src"
mkdir -p "${bin_dir}" "${crd_dir}" "${src_dir}"

export GO111MODULE=on GOWORK=off CGO_ENABLED=0 GOFLAGS='-mod=mod -buildvcs=false'

log() { echo "ensure-k8s-tools: $*" >&2; }

# Two CI steps or developers may run this at once; one builds, the other waits.
exec 8>"${cache_dir}/.build.lock"
flock 8

have() { # have <binary> <version>
  [[ -x "${bin_dir}/$1" && -f "${bin_dir}/$1.version" && "$(cat "${bin_dir}/$1.version")" == "$2" ]]
}

# Prints the module's download directory (read-only, in GOMODCACHE).
module_dir() { # module_dir <module@version>
  (cd "${src_dir}" && go mod download -json "$1") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# Copies a module's source into a fresh writable folder and prints its path.
writable_copy() { # writable_copy <module@version> <name>
  local from to
  from="$(module_dir "$1")"
  [[ -n "${from}" && -d "${from}" ]] || { log "go mod download $1 gave no Dir"; return 1; }
  to="${src_dir}/$2"
  rm -rf "${to}"
  cp -r "${from}" "${to}"
  chmod -R u+w "${to}"
  rm -f "${to}/go.work" "${to}/go.work.sum"
  echo "${to}"
}

go_build() { # go_build <dir> <output> <package> [extra go build args...]
  local dir="$1" out="$2" pkg="$3"
  shift 3
  (cd "${dir}" && nice -n 10 go build -trimpath "$@" -o "${out}.partial" "${pkg}")
  mv -f "${out}.partial" "${out}"
}

build_etcd() {
  have etcd "${ETCD_VERSION}" && return 0
  log "building etcd ${ETCD_VERSION}"
  local dir
  dir="$(writable_copy "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" etcd)"
  # The published go.mod points the sibling etcd modules at ../; use the released ones.
  sed -i -E '/=>[[:space:]]*\.\.?\//d' "${dir}/go.mod"
  go_build "${dir}" "${bin_dir}/etcd" . -ldflags '-s -w'
  echo "${ETCD_VERSION}" >"${bin_dir}/etcd.version"
  rm -rf "${dir}"
}

build_kubernetes() {
  local all=1 b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    have "${b}" "${K8S_VERSION}" || all=0
  done
  [[ ${all} == 1 ]] && return 0
  log "building kube-apiserver, kube-controller-manager, kube-scheduler ${K8S_VERSION}"
  local dir
  dir="$(writable_copy "k8s.io/kubernetes@${K8S_VERSION}" kubernetes)"
  # The module zip has no staging/ tree: drop the replace block that points at it
  # and require the published staging modules at the matching version instead.
  sed -i -e '/^replace (/,/^)/d' -e '/^replace .*=> \.\/staging/d' "${dir}/go.mod"
  sed -i -E "s#^([[:space:]]+k8s\.io/[^[:space:]]+) v0\.0\.0\$#\1 ${K8S_STAGING_VERSION}#" "${dir}/go.mod"
  # Without the version stamped in, the apiserver reports v0.0.0 and helm's
  # kubeVersion check in Chart.yaml refuses to install.
  local minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  local ldflags='-s -w' p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
    ldflags+=" -X ${p}.gitTreeState=clean"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    go_build "${dir}" "${bin_dir}/${b}" "./cmd/${b}" -ldflags "${ldflags}"
    echo "${K8S_VERSION}" >"${bin_dir}/${b}.version"
  done
  rm -rf "${dir}"
}

build_kwok() {
  have kwok "${KWOK_VERSION}" && return 0
  log "building kwok ${KWOK_VERSION}"
  local dir
  dir="$(writable_copy "sigs.k8s.io/kwok@${KWOK_VERSION}" kwok)"
  go_build "${dir}" "${bin_dir}/kwok" ./cmd/kwok -ldflags "-s -w"
  echo "${KWOK_VERSION}" >"${bin_dir}/kwok.version"
  rm -rf "${dir}"
}

build_adapter() {
  have prometheus-adapter "${ADAPTER_VERSION}" && return 0
  log "building prometheus-adapter ${ADAPTER_VERSION}"
  local dir
  dir="$(writable_copy "sigs.k8s.io/prometheus-adapter@${ADAPTER_VERSION}" prometheus-adapter)"
  go_build "${dir}" "${bin_dir}/prometheus-adapter" ./cmd/adapter -ldflags "-s -w"
  echo "${ADAPTER_VERSION}" >"${bin_dir}/prometheus-adapter.version"
  rm -rf "${dir}"
}

build_prometheus() {
  have prometheus "${PROMETHEUS_MODULE_VERSION}" && return 0
  log "building prometheus (module ${PROMETHEUS_MODULE_VERSION})"
  local dir
  dir="$(writable_copy "github.com/prometheus/prometheus@${PROMETHEUS_MODULE_VERSION}" prometheus)"
  # Only Kubernetes service discovery is needed; leaving the other SDs out
  # roughly halves the build.
  go_build "${dir}" "${bin_dir}/prometheus" ./cmd/prometheus \
    -tags 'remove_all_sd,enable_kubernetes_sd' -ldflags "-s -w"
  echo "${PROMETHEUS_MODULE_VERSION}" >"${bin_dir}/prometheus.version"
  rm -rf "${dir}"
}

# promtool (rule checks and rule unit tests) from the same module, tags and
# flags as prometheus above, so after the prometheus build it is mostly Go
# build-cache hits.
build_promtool() {
  have promtool "${PROMETHEUS_MODULE_VERSION}" && return 0
  log "building promtool (module ${PROMETHEUS_MODULE_VERSION})"
  local dir
  dir="$(writable_copy "github.com/prometheus/prometheus@${PROMETHEUS_MODULE_VERSION}" prometheus)"
  go_build "${dir}" "${bin_dir}/promtool" ./cmd/promtool \
    -tags 'remove_all_sd,enable_kubernetes_sd' -ldflags "-s -w"
  echo "${PROMETHEUS_MODULE_VERSION}" >"${bin_dir}/promtool.version"
  rm -rf "${dir}"
}

# The CRDs the chart's optional objects need, from the projects' own published
# definitions (in their Go module zips).
fetch_crds() {
  local stamp="${crd_dir}/versions"
  local want="${PROMETHEUS_OPERATOR_VERSION} ${KEDA_VERSION} prometheusrules"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    return 0
  fi
  log "fetching ServiceMonitor, PrometheusRule and ScaledObject CRDs"
  local op keda
  op="$(module_dir "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}")"
  keda="$(module_dir "github.com/kedacore/keda/v2@${KEDA_VERSION}")"
  cp "${op}/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "${crd_dir}/"
  cp "${op}/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "${crd_dir}/"
  cp "${keda}/config/crd/bases/keda.sh_scaledobjects.yaml" "${crd_dir}/"
  chmod u+w "${crd_dir}"/*.yaml
  echo "${want}" >"${stamp}"
}

# A module context for `go mod download` outside any repo checkout.
if [[ ! -f "${src_dir}/go.mod" ]]; then
  printf 'module k8s-tools\n\ngo 1.24\n' >"${src_dir}/go.mod"
fi

# With arguments, only the named tools (e.g. `promtool` for the rules suite);
# without, everything the k8s suite runs.
if [[ $# -gt 0 ]]; then
  for tool in "$@"; do
    case "${tool}" in
      promtool) build_promtool ;;
      prometheus) build_prometheus ;;
      *)
        log "unknown tool ${tool} (known: promtool, prometheus)"
        exit 2
        ;;
    esac
  done
else
  fetch_crds
  build_etcd
  build_kubernetes
  build_kwok
  build_adapter
  build_prometheus
fi
echo "${bin_dir}"
