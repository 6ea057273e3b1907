{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "triton-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Truncated to 63 characters because some Kubernetes name fields are limited
to that (DNS-1123 labels); a release name that already contains the chart name is not repeated.
*/}}
{{- define "triton-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "triton-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. They never change across upgrades: a Deployment's selector is immutable.
*/}}
{{- define "triton-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "triton-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selects the proxy pods only (not the `helm test` pod, which shares name and instance labels).
*/}}
{{- define "triton-proxy.proxySelectorLabels" -}}
{{ include "triton-proxy.selectorLabels" . }}
app.kubernetes.io/component: proxy
{{- end }}

{{/*
Standard labels for every resource.
*/}}
{{- define "triton-proxy.labels" -}}
helm.sh/chart: {{ include "triton-proxy.chart" . }}
{{ include "triton-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: triton-proxy
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "triton-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "triton-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "triton-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
True ("true") when an autoscaler owns the replica count.
*/}}
{{- define "triton-proxy.autoscalingEnabled" -}}
{{- if or .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}true{{- end }}
{{- end }}

{{/*
The lowest replica count the release can run at: what decides whether a PDB is useful.
*/}}
{{- define "triton-proxy.minReplicas" -}}
{{- if include "triton-proxy.autoscalingEnabled" . }}
{{- .Values.autoscaling.minReplicas }}
{{- else }}
{{- .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
Seconds the shutdown sequence needs: preStop sleep, then the proxy's delay and drain windows.
*/}}
{{- define "triton-proxy.shutdownSeconds" -}}
{{- $delay := divf .Values.shutdown.delayMs 1000 | ceil | int }}
{{- $grace := divf .Values.shutdown.graceMs 1000 | ceil | int }}
{{- add (int .Values.shutdown.preStopSleepSeconds) $delay $grace }}
{{- end }}

{{- define "triton-proxy.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.shutdown.terminationGracePeriodSeconds }}
{{- add (include "triton-proxy.shutdownSeconds" . | int) 5 }}
{{- else }}
{{- .Values.shutdown.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/*
TRITON_SERVERS: name=host:port[@group],...
*/}}
{{- define "triton-proxy.tritonServers" -}}
{{- $entries := list }}
{{- range .Values.triton.servers }}
{{- $entry := printf "%s=%s:%d" .name .host (int .port) }}
{{- if .group }}
{{- $entry = printf "%s@%s" $entry .group }}
{{- end }}
{{- $entries = append $entries $entry }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/*
TRITON_ROUTES: pattern=group,...
*/}}
{{- define "triton-proxy.tritonRoutes" -}}
{{- $entries := list }}
{{- range .Values.triton.routes }}
{{- $entries = append $entries (printf "%s=%s" .pattern .group) }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/*
MODEL_LIMITS: model=inflight:queue,...
*/}}
{{- define "triton-proxy.modelLimits" -}}
{{- $entries := list }}
{{- range $model, $limits := .Values.config.modelLimits }}
{{- $entries = append $entries (printf "%s=%d:%d" $model (int $limits.maxInflight) (int $limits.maxQueue)) }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/*
Distinct Triton gRPC ports, for NetworkPolicy egress.
*/}}
{{- define "triton-proxy.tritonPorts" -}}
{{- $ports := list }}
{{- range .Values.triton.servers }}
{{- $ports = append $ports (int .port) }}
{{- end }}
{{- if .Values.triton.discovery.enabled }}
{{- $ports = append $ports (int .Values.triton.discovery.port) }}
{{- end }}
{{- toJson ($ports | uniq) }}
{{- end }}

{{/*
Distinct Redis ports (server and Sentinels), for NetworkPolicy egress.
*/}}
{{- define "triton-proxy.redisPorts" -}}
{{- $ports := list (int .Values.externalRedis.port) }}
{{- if .Values.externalRedis.sentinel.enabled }}
{{- range .Values.externalRedis.sentinel.hosts }}
{{- $ports = append $ports (int .port) }}
{{- end }}
{{- end }}
{{- toJson ($ports | uniq) }}
{{- end }}

{{- define "triton-proxy.redisUrl" -}}
{{- printf "%s://%s:%d/%d" (ternary "rediss" "redis" .Values.externalRedis.tls) .Values.externalRedis.host (int .Values.externalRedis.port) (int .Values.externalRedis.database) }}
{{- end }}

{{/*
Whether the chart's own Secret has anything to hold.
*/}}
{{- define "triton-proxy.chartSecretNeeded" -}}
{{- if or (and .Values.externalRedis.enabled .Values.externalRedis.password) .Values.auth.apiKeys }}true{{- end }}
{{- end }}

{{- define "triton-proxy.kedaQuery" -}}
{{- if .Values.autoscaling.keda.query }}
{{- .Values.autoscaling.keda.query }}
{{- else }}
{{- printf "sum(triton_proxy_queue_depth{namespace=%q,job=%q})" .Release.Namespace (include "triton-proxy.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Rendering-time checks for combinations the schema cannot express. Included by the Deployment,
which every install renders, so a bad combination fails `helm install` before anything is applied.
*/}}
{{- define "triton-proxy.validate" -}}
{{- $v := .Values }}
{{- if and $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are mutually exclusive: KEDA creates its own HPA for the Deployment, and two HPAs on one target fight over the replica count" }}
{{- end }}
{{- if and (include "triton-proxy.autoscalingEnabled" .) (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and (not $v.triton.servers) (not $v.triton.discovery.enabled) }}
{{- fail "configure at least one Triton endpoint: triton.servers, or triton.discovery.enabled with triton.discovery.service" }}
{{- end }}
{{- if and $v.triton.discovery.enabled (not $v.triton.discovery.service) }}
{{- fail "triton.discovery.service is required when triton.discovery.enabled is true" }}
{{- end }}
{{- if and $v.triton.tls.enabled $v.triton.tls.certKey (not $v.triton.tls.existingSecret) }}
{{- fail "triton.tls.existingSecret is required when triton.tls.certKey is set (the client certificate and key come from that Secret)" }}
{{- end }}
{{- if ne (empty $v.triton.tls.certKey) (empty $v.triton.tls.keyKey) }}
{{- fail "triton.tls.certKey and triton.tls.keyKey must be set together (mutual TLS needs both)" }}
{{- end }}
{{- if $v.externalRedis.enabled }}
{{- if and (not $v.externalRedis.host) (not $v.externalRedis.sentinel.enabled) }}
{{- fail "externalRedis.host is required when externalRedis.enabled is true" }}
{{- end }}
{{- if and $v.externalRedis.sentinel.enabled (not $v.externalRedis.sentinel.hosts) }}
{{- fail "externalRedis.sentinel.hosts must list at least one Sentinel when externalRedis.sentinel.enabled is true" }}
{{- end }}
{{- if and $v.externalRedis.password $v.externalRedis.existingSecret }}
{{- fail "set either externalRedis.password or externalRedis.existingSecret, not both" }}
{{- end }}
{{- end }}
{{- if and $v.priorityClass.create (not $v.priorityClassName) }}
{{- fail "priorityClassName is required when priorityClass.create is true (it names the PriorityClass the chart creates)" }}
{{- end }}
{{- if and $v.auth.apiKeys $v.auth.existingSecret }}
{{- fail "set either auth.apiKeys or auth.existingSecret, not both" }}
{{- end }}
{{- if not (kindIs "invalid" $v.shutdown.terminationGracePeriodSeconds) }}
{{- $needed := include "triton-proxy.shutdownSeconds" . | int }}
{{- if le (int $v.shutdown.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + delayMs + graceMs (%d s), or the kubelet kills pods mid-drain" (int $v.shutdown.terminationGracePeriodSeconds) $needed) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The keys files the proxy reads (AUTH_KEYS_FILE, comma-separated): one per configured
Secret, each mounted as a directory so Secret updates reach the running proxy.
*/}}
{{- define "triton-proxy.keysFiles" -}}
{{- $files := list }}
{{- range $kind := list "keysFile" "adminKeysFile" }}
{{- $f := index $.Values.auth $kind }}
{{- if or $f.existingSecret $f.clients }}
{{- $files = append $files (printf "/etc/triton-proxy/auth/%s/%s" ($kind | kebabcase) $f.key) }}
{{- end }}
{{- end }}
{{- join "," $files }}
{{- end }}

{{/*
A probe's handler. Over TLS the kubelet probes with HTTPS; with mutual TLS it cannot present
a client certificate, so the probe falls back to a TCP connect.
*/}}
{{- define "triton-proxy.probeHandler" -}}
{{- if .root.Values.tls.clientCaKey }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
  {{- if .root.Values.tls.existingSecret }}
  scheme: HTTPS
  {{- end }}
{{- end }}
{{- end }}
