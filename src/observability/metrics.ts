import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HttpMetrics } from './http-metrics';
import { LeanHistogram } from './lean-histogram';
import { ModelGauge } from './model-gauge';
import { ModelLabels } from './model-labels';

export const METRIC_PREFIX = 'triton_proxy_';

/** Buckets from 250 µs to 60 s: sub-millisecond stages and slow LLM calls both resolve. */
const LATENCY_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
const SIZE_BUCKETS = [256, 4096, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456];

export type Stage = 'parse' | 'queue' | 'upstream' | 'encode';

/**
 * Every metric the proxy exports, on its own registry (no global state).
 * README's metrics table lists the same names; a test scrapes /metrics and
 * checks each one.
 */
export class Metrics {
  readonly registry = new Registry();
  /** triton_proxy_http_request_duration_seconds, recorded by the HTTP layer. */
  readonly http = new HttpMetrics(this.registry);
  readonly models: ModelLabels;

  readonly requestDuration = new LeanHistogram({
    name: `${METRIC_PREFIX}request_duration_seconds`,
    help: 'Inference request latency at the proxy, by model, route, outcome (ok or an error code) and protocol (http or grpc).',
    labelNames: ['model', 'route', 'outcome', 'protocol'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly grpcRequestDuration = new LeanHistogram({
    name: `${METRIC_PREFIX}grpc_request_duration_seconds`,
    help: 'Every call to the gRPC front end, by method, gRPC status name (streams: until they end) and client (as the HTTP metric labels it).',
    labelNames: ['method', 'code', 'client'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly stageDuration = new LeanHistogram({
    name: `${METRIC_PREFIX}stage_duration_seconds`,
    help: 'Time spent per request stage: parse (decode), queue (admission wait), upstream (Triton, all attempts), encode.',
    labelNames: ['stage'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly requestBytes = new LeanHistogram({
    name: `${METRIC_PREFIX}request_size_bytes`,
    help: 'Inference request body size.',
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly responseBytes = new LeanHistogram({
    name: `${METRIC_PREFIX}response_size_bytes`,
    help: 'Inference response body size.',
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly compressedResponses = new Counter({
    name: `${METRIC_PREFIX}compressed_responses_total`,
    help: "Inference answers sent compressed because the client's Accept-Encoding asked, by encoding (gzip, deflate).",
    labelNames: ['encoding'] as const,
    registers: [this.registry],
  });
  readonly compressedResponseBytes = new Counter({
    name: `${METRIC_PREFIX}compressed_response_bytes_total`,
    help: 'Bytes of the compressed answers before (body="uncompressed") and after (body="compressed") compression, by encoding.',
    labelNames: ['encoding', 'body'] as const,
    registers: [this.registry],
  });
  readonly traceSpansDropped = new Counter({
    name: `${METRIC_PREFIX}trace_spans_dropped_total`,
    help: 'Spans the OTLP exporter could not deliver (collector down, slow or refusing); they are lost. Stays 0 with tracing off.',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: `${METRIC_PREFIX}queue_depth`,
    help: 'Requests waiting for admission in this replica (the autoscaling metric).',
    registers: [this.registry],
  });
  readonly inflight = new Gauge({
    name: `${METRIC_PREFIX}inflight_requests`,
    help: 'Requests admitted and in flight to Triton in this replica.',
    registers: [this.registry],
  });
  readonly queueDepthByModel = new Gauge({
    name: `${METRIC_PREFIX}queue_depth_by_model`,
    help: 'Requests waiting for admission, by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly inflightByModel = new Gauge({
    name: `${METRIC_PREFIX}inflight_requests_by_model`,
    help: 'Requests in flight to Triton, by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly inflightBytes = new Gauge({
    name: `${METRIC_PREFIX}inflight_request_bytes`,
    help: 'Request body bytes of admitted requests.',
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: `${METRIC_PREFIX}rejections_total`,
    help: 'Requests refused by admission control, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamAttempts = new Counter({
    name: `${METRIC_PREFIX}upstream_attempts_total`,
    help: 'Calls to Triton servers, by server and outcome (ok, client_closed, or a gRPC status name).',
    labelNames: ['server', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly upstreamDuration = new LeanHistogram({
    name: `${METRIC_PREFIX}upstream_duration_seconds`,
    help: 'Latency of single calls to a Triton server.',
    labelNames: ['server'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: `${METRIC_PREFIX}upstream_errors_total`,
    help: 'Failed calls to Triton servers, by server and gRPC status name.',
    labelNames: ['server', 'code'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: `${METRIC_PREFIX}retries_total`,
    help: 'Retried attempts, by the error code that caused them.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly retriesDenied = new Counter({
    name: `${METRIC_PREFIX}retries_denied_total`,
    help: 'Retries not made because the retry budget was spent.',
    registers: [this.registry],
  });
  readonly breakerState = new Gauge({
    name: `${METRIC_PREFIX}breaker_state`,
    help: 'Circuit breaker state per server: 0 closed, 1 half-open, 2 open.',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly serversKnown = new Gauge({
    name: `${METRIC_PREFIX}servers_known`,
    help: 'Triton servers configured or discovered.',
    registers: [this.registry],
  });
  readonly serversReady = new Gauge({
    name: `${METRIC_PREFIX}servers_ready`,
    help: 'Triton servers answering ServerReady true.',
    registers: [this.registry],
  });
  readonly stateLookups = new Counter({
    name: `${METRIC_PREFIX}state_lookups_total`,
    help: 'Model-state lookups on the request path from the local snapshot (hit: a ready server was known).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  /**
   * Registered only by exportRedisUp: without Redis (memory mode) the series
   * is absent rather than a 0 that dashboards and alerts would read as
   * "Redis down" on every single-replica install.
   */
  readonly redisUp = new Gauge({
    name: `${METRIC_PREFIX}redis_up`,
    help: '1 when the shared state store (Redis) is reachable, 0 when not; absent in memory mode.',
    registers: [],
  });
  readonly redisOpDuration = new Histogram({
    name: `${METRIC_PREFIX}redis_operation_duration_seconds`,
    help: 'Redis operation latency by operation.',
    labelNames: ['op'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: `${METRIC_PREFIX}redis_errors_total`,
    help: 'Failed Redis operations by operation.',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly reconcileRuns = new Counter({
    name: `${METRIC_PREFIX}reconcile_runs_total`,
    help: 'Repository index reconciliations run by this replica.',
    registers: [this.registry],
  });
  readonly reconcileChanges = new Counter({
    name: `${METRIC_PREFIX}reconcile_changes_total`,
    help: 'Model-state changes found by reconciliation.',
    registers: [this.registry],
  });
  readonly reconcileFailures = new Counter({
    name: `${METRIC_PREFIX}reconcile_failures_total`,
    help: 'Repository index reads that failed or timed out, by server (the last known state was kept).',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly modelStateStale = new Gauge({
    name: `${METRIC_PREFIX}model_state_stale`,
    help: "1 while this replica's last repository index read of the server failed and its last known model state is kept.",
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  readonly modelLoads = new Counter({
    name: `${METRIC_PREFIX}model_loads_total`,
    help: 'Model loads on demand by result: started, succeeded, failed, coalesced (waited for a load already under way).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly cacheRequests = new Counter({
    name: `${METRIC_PREFIX}cache_requests_total`,
    help: 'Requests for cached models by result: hit (served from a cache tier), miss (looked up, not there), bypass (not looked up: no-store, no-cache, sequence, version not known yet).',
    labelNames: ['model', 'result'] as const,
    registers: [this.registry],
  });
  readonly cacheCoalesced = new Counter({
    name: `${METRIC_PREFIX}cache_coalesced_total`,
    help: 'Requests that shared the upstream call of an identical request already in flight.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly cacheEvictions = new Counter({
    name: `${METRIC_PREFIX}cache_evictions_total`,
    help: 'Cached answers evicted from the in-process tier to stay within CACHE_MAX_BYTES.',
    registers: [this.registry],
  });
  readonly cacheInvalidations = new Counter({
    name: `${METRIC_PREFIX}cache_invalidations_total`,
    help: 'Cached models whose answers were invalidated because the model was loaded, reloaded or unloaded somewhere in the fleet.',
    registers: [this.registry],
  });
  private cacheBytesSources: Partial<Record<'memory' | 'redis', () => number>> = {};
  readonly cacheBytes = new Gauge({
    name: `${METRIC_PREFIX}cache_bytes`,
    help: 'Bytes held by the response cache per tier: memory (this process), redis (live entries this replica wrote to the shared tier).',
    labelNames: ['tier'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [tier, read] of Object.entries(this.cacheBytesSources)) {
        this.cacheBytes.labels(tier).set(read());
      }
    },
  });
  readonly authReloads = new Counter({
    name: `${METRIC_PREFIX}auth_keys_reloads_total`,
    help: 'Reloads of the keys file by result: ok, or error (the previous clients stay in force).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: `${METRIC_PREFIX}rate_limited_total`,
    help: 'Requests refused with 429 because their client was over its quota, by client and budget (requests or bytes).',
    labelNames: ['client', 'policy'] as const,
    registers: [this.registry],
  });
  readonly quotaFallbacks = new Counter({
    name: `${METRIC_PREFIX}quota_fallbacks_total`,
    help: 'Quota decisions taken by the in-memory limiter because Redis failed (quotas per replica meanwhile).',
    registers: [this.registry],
  });
  readonly streamFirstEvent = new Histogram({
    name: `${METRIC_PREFIX}stream_first_event_seconds`,
    help: 'Streaming requests (generate_stream): time from arrival to the first event sent, by model.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly streamEvents = new Histogram({
    name: `${METRIC_PREFIX}stream_events`,
    help: 'Streaming requests: events sent per stream, by model and outcome.',
    labelNames: ['model', 'outcome'] as const,
    buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000],
    registers: [this.registry],
  });
  readonly streamDuration = new Histogram({
    name: `${METRIC_PREFIX}stream_duration_seconds`,
    help: 'Streaming requests: time from arrival to the end of the stream, by model and outcome.',
    labelNames: ['model', 'outcome'] as const,
    buckets: [...LATENCY_BUCKETS, 120, 300, 600],
    registers: [this.registry],
  });
  readonly streamsInFlight = new Gauge({
    name: `${METRIC_PREFIX}streams_in_flight`,
    help: 'Streams open now (first event sent, not yet ended), by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  private readiness: (() => boolean) | undefined = undefined;
  readonly ready = new Gauge({
    name: `${METRIC_PREFIX}ready`,
    help: '1 while /health/ready answers 200.',
    registers: [this.registry],
    // Read at scrape time: a value set only when the probe runs would be stale between probes.
    collect: () => {
      if (this.readiness !== undefined) this.ready.set(this.readiness() ? 1 : 0);
    },
  });

  private readonly queuedByModel: ModelGauge;
  private readonly admittedByModel: ModelGauge;

  constructor(options: { modelLabelLimit: number; defaultMetrics?: boolean }) {
    this.models = new ModelLabels(options.modelLabelLimit);
    const untrusted = (model: string) => this.models.forUntrusted(model);
    this.queuedByModel = new ModelGauge(this.queueDepthByModel, untrusted);
    this.admittedByModel = new ModelGauge(this.inflightByModel, untrusted);
    if (options.defaultMetrics !== false) {
      // Event-loop delay, heap, GC, RSS: prom-client's standard process metrics.
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    }
    this.queueDepth.set(0);
    this.inflight.set(0);
    this.inflightBytes.set(0);
  }

  /**
   * Drops every series of a server that left the fleet, so that DNS
   * discovery churning through pod addresses does not grow /metrics forever.
   */
  async forgetServer(server: string): Promise<void> {
    const perServer: Array<
      [
        {
          get(): Promise<{ values: Array<{ labels: object }> }>;
          remove(labels: Record<string, string>): void;
        },
        readonly string[],
      ]
    > = [
      [this.upstreamAttempts, ['server', 'outcome']],
      [this.upstreamErrors, ['server', 'code']],
      [this.upstreamDuration, ['server']],
      [this.breakerState, ['server']],
    ];
    for (const [metric, names] of perServer) {
      const seen = new Set<string>();
      for (const { labels } of (await metric.get()).values) {
        const l = labels as Record<string, string | number | undefined>;
        if (l.server !== server) continue;
        const own = Object.fromEntries(names.map((n) => [n, String(l[n])]));
        const key = JSON.stringify(own);
        if (seen.has(key)) continue;
        seen.add(key);
        metric.remove(own);
      }
    }
  }

  /**
   * Cache lookups since start per model label (hit, miss, bypass), read
   * from the cache request counter: the status page's hit ratio costs the
   * request path nothing more than the metric it already bumps.
   */
  async cacheResultsByModel(): Promise<Map<string, { hit: number; miss: number; bypass: number }>> {
    const byModel = new Map<string, { hit: number; miss: number; bypass: number }>();
    for (const { labels, value } of (await this.cacheRequests.get()).values) {
      const model = String(labels.model);
      const result = labels.result;
      let counts = byModel.get(model);
      if (counts === undefined) {
        counts = { hit: 0, miss: 0, bypass: 0 };
        byModel.set(model, counts);
      }
      if (result === 'hit' || result === 'miss' || result === 'bypass') counts[result] += value;
    }
    return byModel;
  }

  /** What `triton_proxy_ready` reports, asked at every scrape. */
  /** Exports triton_proxy_redis_up, at 0 until the state store's Redis connects. */
  exportRedisUp(): void {
    if (this.registry.getSingleMetric(`${METRIC_PREFIX}redis_up`) === undefined)
      this.registry.registerMetric(this.redisUp);
    this.redisUp.set(0);
  }

  /** One answer sent compressed: its size before and after. */
  countCompressedResponse(
    encoding: string,
    uncompressedBytes: number,
    compressedBytes: number,
  ): void {
    this.compressedResponses.labels(encoding).inc();
    this.compressedResponseBytes.labels(encoding, 'uncompressed').inc(uncompressedBytes);
    this.compressedResponseBytes.labels(encoding, 'compressed').inc(compressedBytes);
  }

  setReadinessSource(isReady: () => boolean): void {
    this.readiness = isReady;
  }

  /** Where `triton_proxy_cache_bytes{tier}` is read at scrape time. */
  setCacheBytesSource(tier: 'memory' | 'redis', read: () => number): void {
    this.cacheBytesSources[tier] = read;
  }

  /** Admission queue changed; `model` is the raw name (its label is bounded here). */
  setQueueDepth(model: string, depthForModel: number, total: number): void {
    this.queueDepth.set(total);
    this.queuedByModel.set(model, depthForModel);
  }

  /** A request was admitted or released; `model` is the raw name. */
  setInflight(model: string, inflightForModel: number, total: number, totalBytes: number): void {
    this.inflight.set(total);
    this.inflightBytes.set(totalBytes);
    this.admittedByModel.set(model, inflightForModel);
  }
}
