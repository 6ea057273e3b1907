#!/usr/bin/env bash
# Runs the chart against a real Kubernetes control plane, on this machine, without Docker:
# etcd, kube-apiserver, kube-controller-manager (HPA sync every 5 s) and kube-scheduler,
# with kwok standing in for kubelets (fake nodes; pods become Running, helm test pods
# Succeeded), Prometheus and prometheus-adapter serving custom.metrics.k8s.io.
# Then test/k8s/ installs every ci/*-values.yaml with `helm install --wait`, runs
# `helm test`, and drives the HPA 2 -> more -> 2 on triton_proxy_queue_depth scraped from
# real proxy processes (one per pod; see test/k8s/autoscale.test.ts), while Prometheus
# evaluates the release's PrometheusRule on their series.
#
# The binaries are built from the Go module proxy and cached under .cache/k8s (see
# scripts/k8s/ensure-k8s-tools.sh); helm and kubectl come from the npm package
# scripts/ensure-helm.sh uses. Everything listens on 127.0.0.1, and every process started
# here (and every proxy the tests start) is stopped by PID on exit, also on failure.
#
#   scripts/test-k8s.sh            # or: npm run test:k8s
#   KEEP_K8S_RUN=1 scripts/test-k8s.sh   keeps the run directory (logs, certs, data) afterwards
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"
export PATH="$(scripts/ensure-node.sh):$PATH"

started_at=$(date +%s)
log() { echo "test-k8s [$(($(date +%s) - started_at))s]: $*" >&2; }

helm_bin="$(bash scripts/ensure-helm.sh)"
kubectl_bin="$(bash scripts/k8s/ensure-kubectl.sh)"
log "building or reusing the control-plane binaries (.cache/k8s)"
bin_dir="$(scripts/k8s/ensure-k8s-tools.sh)"
crd_dir="${repo_root}/.cache/k8s/crds"
log "binaries ready"
# The tests run the proxy from dist/, as the image does.
npm run build --silent

run_dir="$(mktemp -d /tmp/triton-proxy-k8s.XXXXXX)"
pid_file="${run_dir}/pids"
: >"${pid_file}"
export HELM_CONFIG_HOME="${run_dir}/helm/config" HELM_CACHE_HOME="${run_dir}/helm/cache"
export HELM_DATA_HOME="${run_dir}/helm/data"

# Stops every recorded process (control plane and the tests' proxies) by PID, newest
# first, TERM then KILL after 10 s; prints the logs' tails when the run failed.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pids=() pid
  mapfile -t pids < <(tac "${pid_file}" 2>/dev/null || true)
  for pid in "${pids[@]}"; do
    [[ -n "${pid}" ]] && kill -TERM "${pid}" 2>/dev/null || true
  done
  local deadline=$(($(date +%s) + 10))
  for pid in "${pids[@]}"; do
    [[ -n "${pid}" ]] || continue
    while kill -0 "${pid}" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.2; done
    kill -KILL "${pid}" 2>/dev/null || true
  done
  if [[ ${status} -ne 0 ]]; then
    local f
    for f in "${run_dir}"/*.log; do
      [[ -f "${f}" ]] || continue
      echo "----- last lines of ${f##*/} -----" >&2
      tail -n 15 "${f}" >&2
    done
  fi
  if [[ -n "${KEEP_K8S_RUN:-}" ]]; then
    log "run directory kept: ${run_dir}"
  else
    rm -rf "${run_dir}"
  fi
  log "done (exit ${status})"
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start <name> <command...>: runs a component in the background, logs to <name>.log.
start() {
  local name="$1"
  shift
  "$@" >"${run_dir}/${name}.log" 2>&1 &
  echo $! >>"${pid_file}"
}

# wait_until <seconds> <what> <command...>
wait_until() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) >= deadline)); then
      log "timed out after ${seconds}s waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- certificates: a cluster CA, the front-proxy CA for API aggregation, the SA key ----
pki="${run_dir}/pki"
mkdir -p "${pki}"
openssl_quiet() { openssl "$@" 2>/dev/null; }
new_key() { openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$1"; }
new_ca() { # new_ca <name> <cn>
  new_key "${pki}/$1.key"
  openssl_quiet req -x509 -new -key "${pki}/$1.key" -subj "/CN=$2" -days 2 -out "${pki}/$1.crt"
}
new_cert() { # new_cert <name> <ca> <subject> <extensions>
  new_key "${pki}/$1.key"
  openssl_quiet req -new -key "${pki}/$1.key" -subj "$3" -out "${pki}/$1.csr"
  printf '%s\n' "$4" >"${pki}/$1.ext"
  openssl_quiet x509 -req -in "${pki}/$1.csr" -CA "${pki}/$2.crt" -CAkey "${pki}/$2.key" \
    -CAcreateserial -days 2 -extfile "${pki}/$1.ext" -out "${pki}/$1.crt"
}
new_ca ca triton-proxy-test-ca
new_ca front-proxy-ca triton-proxy-test-front-proxy-ca
new_cert apiserver ca /CN=kube-apiserver \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
new_cert admin ca "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
new_cert front-proxy-client front-proxy-ca /CN=front-proxy-client "extendedKeyUsage=clientAuth"
new_key "${pki}/sa.key"
openssl_quiet ec -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub"

etcd_port="$(free_port)"
etcd_peer_port="$(free_port)"
apiserver_port="$(free_port)"
prometheus_port="$(free_port)"
adapter_port="$(free_port)"

export KUBECONFIG="${run_dir}/admin.kubeconfig"
cat >"${KUBECONFIG}" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: https://127.0.0.1:${apiserver_port}
      certificate-authority: ${pki}/ca.crt
users:
  - name: admin
    user:
      client-certificate: ${pki}/admin.crt
      client-key: ${pki}/admin.key
contexts:
  - name: local
    context: { cluster: local, user: admin }
current-context: local
EOF
kubectl() { "${kubectl_bin}" "$@"; }

# ---- etcd and the control plane ----
log "starting etcd and kube-apiserver"
start etcd "${bin_dir}/etcd" --name default --data-dir "${run_dir}/etcd" \
  --listen-client-urls "http://127.0.0.1:${etcd_port}" \
  --advertise-client-urls "http://127.0.0.1:${etcd_port}" \
  --listen-peer-urls "http://127.0.0.1:${etcd_peer_port}" \
  --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer_port}" \
  --initial-cluster "default=http://127.0.0.1:${etcd_peer_port}" \
  --unsafe-no-fsync --log-level warn

# --endpoint-reconciler-type=none: the `kubernetes` Service cannot have a loopback endpoint.
# The requestheader/proxy-client flags let the aggregator call prometheus-adapter.
start kube-apiserver "${bin_dir}/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:${etcd_port}" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${apiserver_port}" \
  --cert-dir "${run_dir}/apiserver" \
  --tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
  --client-ca-file "${pki}/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "${pki}/sa.pub" --service-account-signing-key-file "${pki}/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --authorization-mode RBAC \
  --endpoint-reconciler-type none \
  --proxy-client-cert-file "${pki}/front-proxy-client.crt" \
  --proxy-client-key-file "${pki}/front-proxy-client.key" \
  --requestheader-client-ca-file "${pki}/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User \
  --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --profiling=false
wait_until 90 "kube-apiserver /readyz" kubectl get --raw /readyz
log "kube-apiserver ready"

# A kwok node heartbeat that comes late on a loaded box makes the node-lifecycle
# controller mark the node NotReady and every pod on it unready; kwok never sets a
# pod Ready again, so one late heartbeat would fail the rest of the suite. The fake
# node's heartbeat is not under test: give it 10 minutes of grace.
start kube-controller-manager "${bin_dir}/kube-controller-manager" \
  --kubeconfig "${KUBECONFIG}" --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
  --service-account-private-key-file "${pki}/sa.key" --root-ca-file "${pki}/ca.crt" \
  --horizontal-pod-autoscaler-sync-period 5s \
  --node-monitor-grace-period 10m \
  --profiling=false
start kube-scheduler "${bin_dir}/kube-scheduler" \
  --kubeconfig "${KUBECONFIG}" --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
  --profiling=false

# ---- kwok: one fake node; pod stages in test/k8s/kwok-stages.yaml ----
start kwok "${bin_dir}/kwok" --kubeconfig "${KUBECONFIG}" \
  --config "${repo_root}/test/k8s/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 10.244.0.0/16 --node-ip 127.0.0.1
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
EOF
# The TaintNodesByCondition admission plugin gives a new Node the not-ready taint; the
# node-lifecycle controller lifts it once kwok reports the node Ready.
wait_until 60 "kwok node Ready" kubectl wait --for=condition=Ready node/kwok-node-0 --timeout=5s
wait_until 60 "node taints lifted" bash -c \
  "[[ -z \"\$('${kubectl_bin}' get node kwok-node-0 -o jsonpath='{.spec.taints}')\" ]]"
wait_until 60 "default ServiceAccount" kubectl -n default get serviceaccount default
log "node kwok-node-0 Ready"

# ---- CRDs the chart's optional objects need ----
kubectl apply --server-side -f "${crd_dir}/monitoring.coreos.com_servicemonitors.yaml" >/dev/null
kubectl apply --server-side -f "${crd_dir}/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
kubectl apply --server-side -f "${crd_dir}/keda.sh_scaledobjects.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com \
  crd/scaledobjects.keda.sh >/dev/null

# ---- Prometheus: scrapes the autoscale namespace's pods at the proxy each pod maps to ----
autoscale_namespace=autoscale
mkdir -p "${run_dir}/prometheus/rules"
cat >"${run_dir}/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 1s
  evaluation_interval: 2s
# The autoscale test writes the chart's PrometheusRule groups here and reloads, as the
# Prometheus operator would.
rule_files:
  - ${run_dir}/prometheus/rules/*.yaml
scrape_configs:
  # kwok pods have fake IPs and no containers. The test runs one real proxy process per
  # pod on 127.0.0.1 and annotates the pod with that address; relabelling scrapes it as
  # the pod, with the namespace and pod labels the adapter rule maps to pods.
  - job_name: triton-proxy-pods
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: ${KUBECONFIG}
        namespaces:
          names: [${autoscale_namespace}]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_triton_proxy_test_local_address]
        regex: .+
        action: keep
      - source_labels: [__meta_kubernetes_pod_annotation_triton_proxy_test_local_address]
        target_label: __address__
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
EOF
start prometheus "${bin_dir}/prometheus" --config.file "${run_dir}/prometheus/prometheus.yml" \
  --storage.tsdb.path "${run_dir}/prometheus/data" \
  --web.listen-address "127.0.0.1:${prometheus_port}" --web.enable-lifecycle --log.level warn

# ---- prometheus-adapter with the rule the chart README documents ----
# examples/prometheus-adapter-values.yaml is values for the adapter's Helm chart; its
# rules.custom list is the adapter's own `rules:` config.
node -e '
  const yaml = require("js-yaml");
  const fs = require("fs");
  const values = yaml.load(fs.readFileSync(process.argv[1], "utf8"));
  fs.writeFileSync(process.argv[2], yaml.dump({ rules: values.rules.custom }));
' helm/triton-proxy/examples/prometheus-adapter-values.yaml "${run_dir}/adapter-config.yaml"
start prometheus-adapter "${bin_dir}/prometheus-adapter" \
  --secure-port "${adapter_port}" --bind-address 127.0.0.1 --cert-dir "${run_dir}/adapter-certs" \
  --lister-kubeconfig "${KUBECONFIG}" \
  --authentication-kubeconfig "${KUBECONFIG}" --authorization-kubeconfig "${KUBECONFIG}" \
  --prometheus-url "http://127.0.0.1:${prometheus_port}/" \
  --metrics-relist-interval 5s --config "${run_dir}/adapter-config.yaml"
# The aggregator reaches the adapter through an ExternalName Service (an Endpoints object may
# not hold a loopback address); the adapter's self-signed certificate is not verified.
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
---
apiVersion: v1
kind: Service
metadata:
  name: prometheus-adapter
  namespace: monitoring
spec:
  type: ExternalName
  externalName: localhost
  ports:
    - name: https
      port: ${adapter_port}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.custom.metrics.k8s.io
spec:
  group: custom.metrics.k8s.io
  version: v1beta1
  service:
    name: prometheus-adapter
    namespace: monitoring
    port: ${adapter_port}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
wait_until 90 "prometheus ready" curl -sf "http://127.0.0.1:${prometheus_port}/-/ready"
wait_until 120 "custom.metrics.k8s.io served" kubectl get --raw /apis/custom.metrics.k8s.io/v1beta1
log "control plane, kwok, prometheus and prometheus-adapter up"

# ---- the suites ----
export K8S_HELM="${helm_bin}" K8S_KUBECTL="${kubectl_bin}" K8S_RUN_DIR="${run_dir}"
export K8S_PID_FILE="${pid_file}" K8S_PROMETHEUS_URL="http://127.0.0.1:${prometheus_port}"
export K8S_AUTOSCALE_NAMESPACE="${autoscale_namespace}"
npx mocha --no-config -r tsx/cjs --extension ts --timeout 600000 --exit 'test/k8s/**/*.test.ts'
log "all k8s suites passed"
