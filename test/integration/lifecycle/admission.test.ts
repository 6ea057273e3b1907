import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { infer, scrape, sleep, valueOf, type InferResult } from './support';

describe('admission control through the running proxy (slow fake Triton)', () => {
  let fake: FakeTriton;
  let proxy: TestProxy | undefined;

  beforeEach(async () => {
    [fake] = await startFakes(1);
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await fake.stop({ graceMs: 100 });
  });

  // Only inference is slow: health checks and start-up stay fast.
  const slowInfer = (ms: number) => fake.setLatency((rpc) => (rpc === 'ModelInfer' ? ms : 0));

  async function start(env: Record<string, string>): Promise<TestProxy> {
    proxy = await startTestProxy({ TRITON_SERVERS: serversEnv([fake]), ...env });
    return proxy;
  }

  const gauges = async (url: string) => {
    const m = await scrape(url);
    const byModel = (name: string) =>
      [...(m.get(name)?.samples ?? [])].map((s) => `${s.labels.model}=${s.value}`);
    return {
      queued: valueOf(m, 'triton_proxy_queue_depth'),
      inflight: valueOf(m, 'triton_proxy_inflight_requests'),
      queuedByModel: byModel('triton_proxy_queue_depth_by_model'),
      inflightByModel: byModel('triton_proxy_inflight_requests_by_model'),
      rejections: (reason: string) => valueOf(m, 'triton_proxy_rejections_total', { reason }),
    };
  };

  it('answers exactly the requests beyond in-flight limit plus queue with 429 and Retry-After, while the gauges rise and fall back to zero', async () => {
    slowInfer(300);
    const { url } = await start({
      MAX_INFLIGHT: '8',
      MAX_QUEUE: '20',
      MODEL_MAX_INFLIGHT: '2',
      MODEL_MAX_QUEUE: '3',
      QUEUE_TIMEOUT_MS: '5000',
    });
    const burst = 12;
    const capacity = 2 + 3;

    const results: Promise<InferResult>[] = Array.from({ length: burst }, () => infer(url));
    let peakQueued = 0;
    let peakInflight = 0;
    const settled = Promise.all(results);
    let done = false;
    void settled.then(() => (done = true));
    while (!done) {
      const g = await gauges(url);
      peakQueued = Math.max(peakQueued, g.queued);
      peakInflight = Math.max(peakInflight, g.inflight);
      await sleep(20);
    }
    const answers = await settled;

    const rejected = answers.filter((r) => r.status === 429);
    const ok = answers.filter((r) => r.status === 200);
    assert.equal(rejected.length, burst - capacity, answers.map((r) => r.status).join(','));
    assert.equal(ok.length, capacity);
    for (const r of rejected) {
      assert.equal(r.retryAfter, '1');
      assert.match(JSON.parse(r.body).error as string, /queue for model 'simple' is full/);
    }
    assert.equal(peakQueued, 3, 'queue depth seen while the burst was queued');
    assert.equal(peakInflight, 2, 'in-flight requests seen while the burst was served');

    const after = await gauges(url);
    assert.equal(after.queued, 0);
    assert.equal(after.inflight, 0);
    assert.equal(after.rejections('queue_full'), burst - capacity);
    // Per-model gauges drain too, whatever label the model had when it queued.
    for (const v of [...after.queuedByModel, ...after.inflightByModel]) assert.match(v, /=0$/);
    console.log(
      `      burst: ${rejected.length}/${burst} got 429; peak queue_depth ${peakQueued}, peak inflight ${peakInflight}`,
    );
  });

  it('rejects a queued request with 429 once QUEUE_TIMEOUT_MS has passed', async () => {
    slowInfer(1000);
    const { url, proxy: p } = await start({
      MODEL_MAX_INFLIGHT: '1',
      MODEL_MAX_QUEUE: '4',
      QUEUE_TIMEOUT_MS: '250',
    });
    const first = infer(url);
    await waitFor(() => p.admission.stats().inflight === 1, 2000, 'first request in flight');
    const second = await infer(url);

    assert.equal(second.status, 429);
    assert.equal(second.retryAfter, '1');
    assert.match(JSON.parse(second.body).error as string, /waited 250 ms/);
    assert.ok(second.ms >= 240 && second.ms < 700, `answered after ${second.ms.toFixed(0)} ms`);
    assert.equal((await first).status, 200);
    assert.equal((await gauges(url)).rejections('queue_timeout'), 1);
  });

  it('answers 504 at the request deadline, not 429 at the queue timeout, when the deadline comes first', async () => {
    slowInfer(1500);
    const { url, proxy: p } = await start({
      MODEL_MAX_INFLIGHT: '1',
      MODEL_MAX_QUEUE: '4',
      QUEUE_TIMEOUT_MS: '5000',
    });
    const first = infer(url);
    await waitFor(() => p.admission.stats().inflight === 1, 2000, 'first request in flight');
    const second = await infer(url, { headers: { 'x-request-timeout-ms': '300' } });

    assert.equal(second.status, 504, second.body);
    assert.equal(second.retryAfter, null, 'the time is spent: no invitation to retry');
    const body = JSON.parse(second.body) as Record<string, unknown>;
    assert.equal(body.code, 'UPSTREAM_TIMEOUT');
    assert.match(body.error as string, /deadline/);
    // Bounds are generous for a loaded 2-core machine; the point is 0.3 s, not 5 s.
    assert.ok(second.ms >= 280 && second.ms < 2500, `answered after ${second.ms.toFixed(0)} ms`);
    assert.equal(
      fake.callCount('ModelInfer', 'simple'),
      1,
      'the expired request never went upstream',
    );
    assert.equal((await first).status, 200);
    const g = await gauges(url);
    assert.equal(g.rejections('deadline'), 1);
    assert.equal(g.rejections('queue_timeout'), 0);
  });

  it('frees the queue slot of a client that disconnects while queued, so the next request takes it', async () => {
    slowInfer(600);
    const { url, proxy: p } = await start({
      MODEL_MAX_INFLIGHT: '1',
      MODEL_MAX_QUEUE: '1',
      QUEUE_TIMEOUT_MS: '5000',
    });
    const first = infer(url);
    await waitFor(() => p.admission.stats().inflight === 1, 2000, 'first request in flight');
    const leaving = new AbortController();
    const second = infer(url, { signal: leaving.signal }).catch((e: Error) => e);
    await waitFor(() => p.admission.stats().queued === 1, 2000, 'second request queued');

    leaving.abort();
    await waitFor(() => p.admission.stats().queued === 0, 200, 'queue slot freed at once');
    assert.ok((await second) instanceof Error);
    // The queue holds one: the third request is queued (not 429) only if the slot was freed.
    const third = await infer(url);

    assert.equal(third.status, 200, third.body);
    assert.equal((await first).status, 200);
    assert.equal(
      fake.callCount('ModelInfer', 'simple'),
      2,
      'the departed request never went upstream',
    );
    const g = await gauges(url);
    assert.equal(g.rejections('client_gone'), 1);
    assert.equal(g.queued, 0);
  });

  it('cancels the upstream call of a client that disconnects while in flight', async () => {
    slowInfer(1500);
    const { url, proxy: p } = await start({ MODEL_MAX_INFLIGHT: '1' });
    const leaving = new AbortController();
    const request = infer(url, { signal: leaving.signal }).catch((e: Error) => e);
    await waitFor(() => p.admission.stats().inflight === 1, 2000, 'request in flight');
    assert.equal((await gauges(url)).inflight, 1);

    const abortedAt = performance.now();
    leaving.abort();
    assert.ok((await request) instanceof Error);
    // Far sooner than the fake's 1.5 s: the proxy cancelled its gRPC call (status CANCELLED).
    await waitFor(async () => (await gauges(url)).inflight === 0, 300, 'in-flight gauge at 0');
    const releasedMs = performance.now() - abortedAt;
    const m = await scrape(url);
    // The client's doing, not the server's: counted as client_closed and never as a server error.
    assert.equal(
      valueOf(m, 'triton_proxy_upstream_attempts_total', {
        server: 't0',
        outcome: 'client_closed',
      }),
      1,
    );
    assert.equal(
      valueOf(m, 'triton_proxy_upstream_attempts_total', { server: 't0', outcome: 'CANCELLED' }),
      0,
    );
    assert.equal(valueOf(m, 'triton_proxy_upstream_errors_total', { server: 't0' }), 0);
    assert.equal(
      valueOf(m, 'triton_proxy_request_duration_seconds_count', {
        model: 'simple',
        outcome: 'client_closed',
      }),
      1,
    );
    assert.equal(p.fleet.get('t0')!.breaker.state, 'closed');

    console.log(`      in-flight slot released ${releasedMs.toFixed(0)} ms after the disconnect`);
  });
});
