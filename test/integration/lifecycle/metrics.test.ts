import { strict as assert } from 'node:assert';
import { status } from '@grpc/grpc-js';
import {
  defaultModels,
  simpleModel,
  startFakeTriton,
  type FakeTriton,
} from '../../../src/fake-triton';
import { Metrics } from '../../../src/observability';
import type { Proxy } from '../../../src/proxy';
import { serversEnv, waitFor } from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import {
  collectChartMetrics,
  ensureHelm,
  exportedNamesFromExposition,
  unexportedMetricUses,
} from '../../helm/support';
import {
  infer,
  labelValues,
  parseExposition,
  scrape,
  startProxyWithProcessMetrics,
  valueOf,
  type Family,
} from './support';

/** The metrics contract (README's table): name, type and label names. */
const DOCUMENTED: ReadonlyArray<[name: string, type: string, labels: string[]]> = [
  [
    'triton_proxy_http_request_duration_seconds',
    'histogram',
    ['method', 'path', 'status_code', 'client'],
  ],
  ['triton_proxy_request_duration_seconds', 'histogram', ['model', 'route', 'outcome', 'protocol']],
  ['triton_proxy_grpc_request_duration_seconds', 'histogram', ['method', 'code', 'client']],
  ['triton_proxy_stage_duration_seconds', 'histogram', ['stage']],
  ['triton_proxy_request_size_bytes', 'histogram', []],
  ['triton_proxy_response_size_bytes', 'histogram', []],
  ['triton_proxy_queue_depth', 'gauge', []],
  ['triton_proxy_inflight_requests', 'gauge', []],
  ['triton_proxy_queue_depth_by_model', 'gauge', ['model']],
  ['triton_proxy_inflight_requests_by_model', 'gauge', ['model']],
  ['triton_proxy_inflight_request_bytes', 'gauge', []],
  ['triton_proxy_rejections_total', 'counter', ['reason']],
  ['triton_proxy_upstream_attempts_total', 'counter', ['server', 'outcome']],
  ['triton_proxy_upstream_duration_seconds', 'histogram', ['server']],
  ['triton_proxy_upstream_errors_total', 'counter', ['server', 'code']],
  ['triton_proxy_retries_total', 'counter', ['reason']],
  ['triton_proxy_retries_denied_total', 'counter', []],
  ['triton_proxy_breaker_state', 'gauge', ['server']],
  ['triton_proxy_servers_known', 'gauge', []],
  ['triton_proxy_servers_ready', 'gauge', []],
  ['triton_proxy_state_lookups_total', 'counter', ['result']],
  ['triton_proxy_redis_up', 'gauge', []],
  ['triton_proxy_redis_operation_duration_seconds', 'histogram', ['op']],
  ['triton_proxy_redis_errors_total', 'counter', ['op']],
  ['triton_proxy_reconcile_runs_total', 'counter', []],
  ['triton_proxy_reconcile_changes_total', 'counter', []],
  ['triton_proxy_reconcile_failures_total', 'counter', ['server']],
  ['triton_proxy_model_state_stale', 'gauge', ['server']],
  ['triton_proxy_model_loads_total', 'counter', ['result']],
  ['triton_proxy_ready', 'gauge', []],
  ['triton_proxy_cache_requests_total', 'counter', ['model', 'result']],
  ['triton_proxy_cache_coalesced_total', 'counter', ['model']],
  ['triton_proxy_cache_evictions_total', 'counter', []],
  ['triton_proxy_cache_invalidations_total', 'counter', []],
  ['triton_proxy_cache_bytes', 'gauge', ['tier']],
  ['triton_proxy_auth_keys_reloads_total', 'counter', ['result']],
  ['triton_proxy_rate_limited_total', 'counter', ['client', 'policy']],
  ['triton_proxy_quota_fallbacks_total', 'counter', []],
  ['triton_proxy_stream_first_event_seconds', 'histogram', ['model']],
  ['triton_proxy_stream_events', 'histogram', ['model', 'outcome']],
  ['triton_proxy_stream_duration_seconds', 'histogram', ['model', 'outcome']],
  ['triton_proxy_streams_in_flight', 'gauge', ['model']],
  ['triton_proxy_compressed_responses_total', 'counter', ['encoding']],
  ['triton_proxy_compressed_response_bytes_total', 'counter', ['encoding', 'body']],
  ['triton_proxy_trace_spans_dropped_total', 'counter', []],
];

/**
 * Only a Redis failure, a failed index read, traffic to cached models
 * (test/integration/cache), or gRPC traffic (test/integration/grpc-front)
 * records these; the rest must have samples after the traffic below.
 */
const NEEDS_A_FAULT = new Set([
  'triton_proxy_redis_errors_total',
  'triton_proxy_reconcile_failures_total',
  'triton_proxy_model_state_stale',
  'triton_proxy_cache_requests_total',
  'triton_proxy_cache_coalesced_total',
  'triton_proxy_grpc_request_duration_seconds',
  // Only a change of the keys file records it.
  'triton_proxy_auth_keys_reloads_total',
  // Only clients with a quota (test/integration/front-door) record these.
  'triton_proxy_rate_limited_total',
  'triton_proxy_quota_fallbacks_total',
  // Only streaming traffic records these (test/integration/streaming).
  'triton_proxy_stream_first_event_seconds',
  'triton_proxy_stream_events',
  'triton_proxy_stream_duration_seconds',
  'triton_proxy_streams_in_flight',
  // Only answers above RESPONSE_COMPRESSION_MIN_BYTES to clients asking for
  // gzip/deflate record these (test/integration/core/compression.test.ts).
  'triton_proxy_compressed_responses_total',
  'triton_proxy_compressed_response_bytes_total',
]);

const HTTP_METRIC = 'triton_proxy_http_request_duration_seconds';

/** Label names of a family's samples, without the ones the type adds (le). */
function labelNamesOf(family: Family): string[][] {
  const seen = new Map<string, string[]>();
  for (const s of family.samples) {
    const names = Object.keys(s.labels)
      .filter((l) => l !== 'le')
      .sort();
    seen.set(names.join(','), names);
  }
  return [...seen.values()];
}

function assertFamily(
  families: Map<string, Family>,
  name: string,
  type: string,
  labels: string[],
): void {
  const family = families.get(name);
  assert.ok(family !== undefined, `${name} is not exported`);
  assert.ok((family.help ?? '').length > 0, `${name} has no HELP text`);
  assert.equal(family.type, type, `${name} TYPE`);
  for (const names of labelNamesOf(family)) {
    assert.deepEqual(names, [...labels].sort(), `${name} label names`);
  }
}

describe('/metrics of a running proxy (Redis state, two fake Tritons, process metrics on)', () => {
  let redis: RedisServerHandle;
  let fakes: FakeTriton[] = [];
  let proxy: Proxy;
  let url: string;

  before(async function () {
    this.timeout(20_000);
    redis = await startRedisServer();
    const models = [...defaultModels(), simpleModel({ name: 'lazy', loaded: false })];
    fakes = await Promise.all(
      [0, 1].map((i) => startFakeTriton({ host: '127.0.0.1', port: 0, name: `m${i}`, models })),
    );
    ({ proxy, url } = await startProxyWithProcessMetrics({
      TRITON_SERVERS: serversEnv(fakes),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `lifecycle-metrics-${process.pid}:`,
      LOAD_ON_DEMAND: 'true',
      MODEL_LIMITS: 'simple=2:1',
      RETRY_BASE_DELAY_MS: '1',
    }));
    await waitFor(() => proxy.fleet.readyCount() === 2, 5000, 'two ready servers');
    await waitFor(() => proxy.state.health().up, 5000, 'Redis connected');
  });

  after(async () => {
    await proxy?.close();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    await redis?.stop();
  });

  it('exports every documented metric with its type, HELP and label names once traffic has flowed', async () => {
    // Overload: two slots and one queue place, four at once.
    for (const f of fakes) f.setLatency((rpc) => (rpc === 'ModelInfer' ? 150 : 0));
    const burst = await Promise.all([0, 1, 2, 3].map(() => infer(url)));
    assert.deepEqual(burst.map((r) => r.status).sort(), [200, 200, 200, 429]);
    for (const f of fakes) f.setLatency(0);
    // A server fault the retry loop moves past.
    fakes[0]!.resetCounters();
    fakes[0]!.failNext({ code: status.UNAVAILABLE, rpc: 'ModelInfer' });
    await waitFor(
      async () => (await infer(url)).status === 200 && fakes[0]!.callCount('ModelInfer') >= 1,
      5000,
      'a request retried away from the failing server',
    );
    // A model loaded on demand, an unknown model, and a metadata call.
    const lazy = await infer(url, { model: 'lazy' });
    assert.equal(lazy.status, 200, lazy.body);
    assert.equal((await infer(url, { model: 'no-such-model' })).status, 404);
    assert.equal((await fetch(`${url}/v2/models/simple`)).status, 200);

    const families = await scrape(url);
    for (const [name, type, labels] of DOCUMENTED) {
      assertFamily(families, name, type, labels);
      if (!NEEDS_A_FAULT.has(name)) {
        assert.ok(families.get(name)!.samples.length > 0, `${name} has no samples`);
      }
    }
    assertFamily(families, 'triton_proxy_nodejs_eventloop_lag_seconds', 'gauge', []);
    assertFamily(families, 'triton_proxy_process_cpu_user_seconds_total', 'counter', []);
    assertFamily(families, 'triton_proxy_process_resident_memory_bytes', 'gauge', []);

    // The values say what happened.
    const v = (name: string, labels: Record<string, string> = {}) =>
      valueOf(families, name, labels);
    assert.equal(v('triton_proxy_rejections_total', { reason: 'queue_full' }), 1);
    assert.ok(v('triton_proxy_retries_total', { reason: 'UPSTREAM_UNAVAILABLE' }) >= 1);
    assert.equal(v('triton_proxy_upstream_errors_total', { server: 't0', code: 'UNAVAILABLE' }), 1);
    assert.equal(v('triton_proxy_model_loads_total', { result: 'succeeded' }), 1);
    assert.equal(v('triton_proxy_redis_up'), 1);
    assert.equal(v('triton_proxy_ready'), 1, 'readiness is reported without a probe having run');
    assert.equal(v('triton_proxy_servers_ready'), 2);
    assert.equal(v('triton_proxy_breaker_state', { server: 't1' }), 0);
    assert.ok(
      v('triton_proxy_request_duration_seconds_count', { model: 'simple', outcome: 'ok' }) >= 3,
    );
    // Before its first success a model's name is untrusted and labelled "other".
    assert.equal(v('triton_proxy_request_duration_seconds_count', { outcome: 'OVERLOADED' }), 1);
    assert.deepEqual(
      [...labelValues(families.get('triton_proxy_stage_duration_seconds'), 'stage')].sort(),
      ['encode', 'parse', 'queue', 'upstream'],
    );
    assert.ok(
      v(`${HTTP_METRIC}_count`, {
        method: 'POST',
        path: '/v2/models/#model/infer',
        status_code: '429',
      }) === 1,
    );
    assert.ok(v(`${HTTP_METRIC}_count`, { method: 'GET', path: '/v2/models/#model' }) === 1);
  });

  it('lists in this contract every metric the Metrics class registers', async () => {
    const metrics = new Metrics({ modelLabelLimit: 1, defaultMetrics: false });
    // Registered only with a Redis-backed state store (absent in memory mode).
    metrics.exportRedisUp();
    const registered = await metrics.registry.getMetricsAsJSON();
    assert.deepEqual(
      registered.map((m) => `${m.name} ${m.type}`).sort(),
      DOCUMENTED.map(([name, type]) => `${name} ${type}`).sort(),
    );
  });

  it('keeps model and path label values bounded when 1,000 unknown model names and 200 stray paths are requested', async () => {
    const before = (await (await fetch(`${url}/metrics`)).text()).split('\n').length;
    const names = Array.from({ length: 1000 }, (_, i) => `unknown-model-${i}`);
    // Half outside the API, half inside /v2 where a catch-all answers 404/405.
    const paths = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0 ? `/scan-${i}/admin.php` : `/v2/scan-${i}`,
    );
    const statuses = new Set<number>();
    for (let i = 0; i < names.length; i += 100) {
      const batch = names.slice(i, i + 100).map((model) => infer(url, { model }));
      const stray = paths
        .slice(i / 5, i / 5 + 20)
        .map((p) => fetch(`${url}${p}`).then((r) => r.status));
      for (const r of await Promise.all(batch)) statuses.add(r.status);
      for (const s of await Promise.all(stray)) statuses.add(s);
    }
    assert.deepEqual([...statuses], [404]);

    const text = await (await fetch(`${url}/metrics`)).text();
    const families = parseExposition(text);
    const models = new Set<string>();
    for (const family of families.values()) {
      for (const m of labelValues(family, 'model')) models.add(m);
    }
    const pathValues = labelValues(families.get(HTTP_METRIC), 'path');
    const growth = text.split('\n').length - before;
    console.log(
      `      after 1,200 unknown names: ${models.size} model label values, ${pathValues.size} path values, +${growth} exposition lines`,
    );
    assert.ok(
      [...models].every((m) => ['simple', 'lazy', 'other'].includes(m)),
      [...models].join(','),
    );
    assert.ok(pathValues.size <= 6, [...pathValues].join(','));
    assert.ok(pathValues.has('#unmatched'));
    assert.ok(![...pathValues].some((p) => p.includes('unknown-model') || p.includes('scan-')));
    // New series only for the new outcome (404) of existing label values, never per name.
    assert.ok(growth < 80, `exposition grew by ${growth} lines`);
  });

  it('exports every metric the chart (HPA, KEDA, dashboard, adapter rules, alert rules) refers to', async function () {
    this.timeout(60_000);
    const helm = ensureHelm();
    const { uses, recorded } = collectChartMetrics(helm);
    assert.ok(uses.length > 0);
    const exported = exportedNamesFromExposition(await (await fetch(`${url}/metrics`)).text());
    // The chart's recording rules create their own series (the budgets the dashboard draws).
    for (const name of recorded) exported.add(name);
    assert.deepEqual(unexportedMetricUses(uses, exported), []);
  });
});

describe('/metrics of a proxy in memory mode (no Redis)', () => {
  let fake: FakeTriton;
  let proxy: Proxy;
  let url: string;

  before(async () => {
    fake = await startFakeTriton({ host: '127.0.0.1', port: 0, models: defaultModels() });
    ({ proxy, url } = await startProxyWithProcessMetrics({ TRITON_SERVERS: serversEnv([fake]) }));
    await waitFor(() => proxy.fleet.readyCount() === 1, 5000, 'a ready server');
  });

  after(async () => {
    await proxy?.close();
    await fake?.stop({ graceMs: 100 });
  });

  it('leaves triton_proxy_redis_up out instead of reporting Redis down', async () => {
    assert.equal((await infer(url)).status, 200);
    const families = await scrape(url);
    assert.ok(families.has('triton_proxy_ready'), 'the scrape is a real one');
    assert.equal(families.has('triton_proxy_redis_up'), false);
  });
});
