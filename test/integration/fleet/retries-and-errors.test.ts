import { strict as assert } from 'node:assert';
import { status } from '@grpc/grpc-js';
import { simpleModel, type FakeTriton } from '../../../src/fake-triton';
import {
  postJson,
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { inferUrl, runLoad, scrapeMetric } from './support';

const BODY = simpleRequest(new Array<number>(16).fill(3), new Array<number>(16).fill(1));

function inferCalls(fakes: readonly FakeTriton[]): number {
  return fakes.reduce((sum, f) => sum + f.callCount('ModelInfer'), 0);
}

function assertErrorBody(json: Record<string, unknown>, code: string): void {
  assert.equal(json.code, code);
  assert.equal(typeof json.error, 'string');
  assert.match(json.request_id as string, /^[0-9a-f-]{36}$/, 'the error names the request id');
  // What the client reads is ours, not the transport's words or the fake's.
  assert.doesNotMatch(
    json.error as string,
    /injected|ECONNREFUSED|No connection established|stack/i,
  );
}

describe('fleet retries, budget and error mapping (fake Tritons over real gRPC)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  async function start(
    count: number,
    env: Record<string, string> = {},
    servers?: string,
  ): Promise<TestProxy> {
    fakes = await startFakes(count);
    proxy = await startTestProxy({
      TRITON_SERVERS: servers ?? serversEnv(fakes),
      TRITON_HEALTH_INTERVAL_MS: '200',
      TRITON_CONTROL_TIMEOUT_MS: '1000',
      BREAKER_RESET_TIMEOUT_MS: '500',
      BREAKER_VOLUME_THRESHOLD: '3',
      RETRY_MAX_ATTEMPTS: '3',
      ...env,
    });
    await waitFor(() => proxy!.proxy.fleet.readyCount() === count, 3000, `${count} ready servers`);
    return proxy;
  }

  describe('when every server is down', () => {
    it('answers a clean 503 with Retry-After once the servers are known to be gone', async () => {
      const { url, proxy: p } = await start(3);
      for (const f of fakes) f.kill();
      await waitFor(() => p.fleet.readyCount() === 0, 3000, 'no ready server');
      const res = await postJson(inferUrl(url), BODY);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assertErrorBody(res.json, 'UPSTREAM_UNAVAILABLE');
      assert.equal(res.headers.get('x-request-id'), res.json.request_id);
    });

    it('answers 503 after at most RETRY_MAX_ATTEMPTS calls per request while the servers still look healthy', async () => {
      // ServerReady keeps answering; only inference fails, so every request
      // reaches the servers and the retry loop alone bounds the calls.
      const { url } = await start(3, { BREAKER_VOLUME_THRESHOLD: '1000' });
      for (const f of fakes) f.failAlways({ code: status.UNAVAILABLE, rpc: 'ModelInfer' });
      const perRequest: number[] = [];
      for (let i = 0; i < 5; i++) {
        const before = inferCalls(fakes);
        const res = await postJson(inferUrl(url), BODY);
        perRequest.push(inferCalls(fakes) - before);
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('retry-after'), '1');
        assertErrorBody(res.json, 'UPSTREAM_UNAVAILABLE');
      }
      assert.ok(
        perRequest.every((n) => n >= 1 && n <= 3),
        `calls per request: ${perRequest.join(', ')}`,
      );
      // Each retry went to a server not yet tried, so three attempts are three servers.
      assert.deepEqual(perRequest, [3, 3, 3, 3, 3]);
    });

    it('keeps retries within the budget under sustained failure', async () => {
      const ratio = 0.1;
      const perSecond = 1;
      const { url } = await start(3, {
        BREAKER_VOLUME_THRESHOLD: '100000',
        RETRY_BUDGET_RATIO: String(ratio),
        RETRY_BUDGET_MIN_PER_SECOND: String(perSecond),
        RETRY_BASE_DELAY_MS: '1',
      });
      for (const f of fakes) f.failAlways({ code: status.UNAVAILABLE, rpc: 'ModelInfer' });
      const samples = await runLoad({ url, clients: 8, durationMs: 1000 });
      const requests = samples.length;
      const retries = await scrapeMetric(url, 'triton_proxy_retries_total');
      const denied = await scrapeMetric(url, 'triton_proxy_retries_denied_total');
      const calls = inferCalls(fakes);
      // Budget window is 10 s, longer than the run: the floor is perSecond * 10.
      const allowed = ratio * requests + perSecond * 10;
      console.log(
        `      budget: ${requests} failing requests, ${retries} retries (allowed ${allowed.toFixed(1)}), ${denied} denied, ${calls} calls to the fleet`,
      );
      assert.ok(
        samples.every((s) => s.status === 503),
        'every request failed cleanly',
      );
      assert.ok(retries <= allowed, `retries ${retries} <= ${allowed}`);
      assert.equal(calls, requests + retries, 'each call is a request or a counted retry');
      assert.ok(denied > 0, 'the budget did refuse retries');
    });
  });

  describe('when Triton answers RESOURCE_EXHAUSTED', () => {
    it('backs off before retrying on another server, and the retry succeeds', async () => {
      // Weight steers the first pick to t0 (the balancer compares load per
      // weight), so the overloaded server is always tried first.
      const servers = (f: FakeTriton[]) => `t0=${f[0]!.address}*10,t1=${f[1]!.address}`;
      fakes = await startFakes(2);
      proxy = await startTestProxy({ TRITON_SERVERS: servers(fakes), RETRY_AFTER_SECONDS: '1' });
      await waitFor(() => proxy!.proxy.fleet.readyCount() === 2, 3000, 'two ready servers');
      const arrivals: Array<{ server: string; at: number }> = [];
      fakes.forEach((f, i) =>
        f.setLatency((rpc) => {
          if (rpc === 'ModelInfer') arrivals.push({ server: `t${i}`, at: performance.now() });
          return 0;
        }),
      );
      fakes[0]!.failAlways({
        code: status.RESOURCE_EXHAUSTED,
        rpc: 'ModelInfer',
        details: 'rate limit exceeded',
      });

      const res = await postJson(inferUrl(proxy.url), BODY);
      assert.equal(res.status, 200);
      assert.deepEqual(
        arrivals.map((a) => a.server),
        ['t0', 't1'],
      );
      const gap = arrivals[1]!.at - arrivals[0]!.at;
      console.log(`      RESOURCE_EXHAUSTED: retry on t1 ${gap.toFixed(0)} ms after t0 refused`);
      assert.ok(gap >= 900, `waited ${gap.toFixed(0)} ms before the retry (Retry-After 1 s)`);
      assert.equal(
        await scrapeMetric(proxy.url, 'triton_proxy_retries_total', { reason: 'OVERLOADED' }),
        1,
      );
    });

    it('answers 429 with Retry-After when every server stays overloaded', async () => {
      const { url } = await start(2, { RETRY_MAX_ATTEMPTS: '2' });
      for (const f of fakes)
        f.failAlways({
          code: status.RESOURCE_EXHAUSTED,
          rpc: 'ModelInfer',
          details: 'rate limit exceeded',
        });
      const res = await postJson(inferUrl(url), BODY);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '1');
      assertErrorBody(res.json, 'OVERLOADED');
      assert.equal(inferCalls(fakes), 2, 'one call per server');
      // Overload is not a fault: breakers stay closed.
      assert.equal(await scrapeMetric(url, 'triton_proxy_breaker_state'), 0);
    });

    it("treats Triton's full scheduler queue (UNAVAILABLE 'Exceeds maximum queue size') as overload, not as a fault", async () => {
      const { url, proxy: p } = await start(2, {
        RETRY_MAX_ATTEMPTS: '1',
        BREAKER_VOLUME_THRESHOLD: '2',
      });
      for (const f of fakes) {
        f.failAlways({
          code: status.UNAVAILABLE,
          rpc: 'ModelInfer',
          details: 'Exceeds maximum queue size',
        });
      }
      for (let i = 0; i < 6; i++) {
        const res = await postJson(inferUrl(url), BODY);
        assert.equal(res.status, 429);
        assert.equal(res.headers.get('retry-after'), '1');
        assertErrorBody(res.json, 'OVERLOADED');
      }
      assert.ok(
        p.fleet.servers.every((s) => s.breaker.state === 'closed'),
        'a busy server keeps its breaker closed',
      );
    });
  });

  describe("Triton's queue timeout and cancellations", () => {
    it("answers Triton's queue timeout ('Request timeout expired') with 504 after one call, without retrying or opening the breaker", async () => {
      const { url, proxy: p } = await start(2, { BREAKER_VOLUME_THRESHOLD: '2' });
      for (const f of fakes) {
        f.failAlways({
          code: status.UNAVAILABLE,
          rpc: 'ModelInfer',
          details: 'Request timeout expired',
        });
      }
      for (let i = 0; i < 6; i++) {
        const before = inferCalls(fakes);
        const res = await postJson(inferUrl(url), BODY);
        assert.equal(res.status, 504, JSON.stringify(res.json));
        assertErrorBody(res.json, 'UPSTREAM_TIMEOUT');
        assert.equal(inferCalls(fakes) - before, 1, 'the time is spent: not retried');
      }
      assert.ok(
        p.fleet.servers.every((s) => s.breaker.state === 'closed' && s.available),
        'a server enforcing its queue policy is not at fault',
      );
      assert.equal(await scrapeMetric(url, 'triton_proxy_retries_total'), 0);
    });

    it('retries a request Triton cancelled on another server, without counting it against the first', async () => {
      const { url, proxy: p } = await start(2, { BREAKER_VOLUME_THRESHOLD: '2' });
      fakes[0]!.failAlways({ code: status.CANCELLED, rpc: 'ModelInfer', details: 'Cancelled' });
      fakes[1]!.failAlways({ code: status.CANCELLED, rpc: 'ModelInfer', details: 'Cancelled' });
      const res = await postJson(inferUrl(url), BODY);
      assert.equal(res.status, 503, JSON.stringify(res.json));
      assertErrorBody(res.json, 'UPSTREAM_UNAVAILABLE');
      assert.equal(inferCalls(fakes), 2, 'tried on the other server too');
      fakes[1]!.clearFailures();
      for (let i = 0; i < 6; i++) {
        const ok = await postJson(inferUrl(url), BODY);
        assert.equal(ok.status, 200, JSON.stringify(ok.json));
      }
      assert.equal(p.fleet.get('t0')!.breaker.state, 'closed');
    });
  });

  describe('client errors', () => {
    it('passes INVALID_ARGUMENT through as 400 after exactly one call, without opening breakers', async () => {
      const { url, proxy: p } = await start(3);
      for (const f of fakes) {
        f.failAlways({
          code: status.INVALID_ARGUMENT,
          rpc: 'ModelInfer',
          details: "unexpected shape for input 'INPUT0'",
        });
      }
      for (let i = 0; i < 12; i++) {
        const before = inferCalls(fakes);
        const res = await postJson(inferUrl(url), BODY);
        assert.equal(res.status, 400);
        assert.equal(res.json.code, 'INVALID_REQUEST');
        assert.match(
          res.json.error as string,
          /unexpected shape for input 'INPUT0'/,
          "Triton's words name the bad input",
        );
        assert.equal(inferCalls(fakes) - before, 1, 'not retried');
      }
      assert.ok(p.fleet.servers.every((s) => s.breaker.state === 'closed' && s.available));
      assert.equal(await scrapeMetric(url, 'triton_proxy_retries_total'), 0);
    });

    it('answers NOT_FOUND as 404 after exactly one call, without opening the breaker', async () => {
      fakes = await startFakes(3);
      // A model only t0 has: no other server could be asked instead.
      fakes[0]!.addModel(simpleModel({ name: 'solo' }));
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TRITON_HEALTH_INTERVAL_MS: '200',
        BREAKER_VOLUME_THRESHOLD: '3',
      });
      const { url, proxy: p } = proxy;
      await waitFor(() => p.fleet.readyCount() === 3, 3000, 'three ready servers');
      await waitFor(
        () =>
          p.state.snapshot().readyServers('simple', '').length === 3 &&
          p.state.snapshot().readyServers('solo', '').length === 1,
        3000,
        'repositories read',
      );
      fakes[0]!.failAlways({
        code: status.NOT_FOUND,
        rpc: 'ModelInfer',
        model: 'solo',
        details: "Request for unknown model: 'solo' is not found",
      });
      for (let i = 0; i < 8; i++) {
        const before = inferCalls(fakes);
        const res = await postJson(inferUrl(url, 'solo'), BODY);
        assert.ok(res.status === 404 || res.status === 503, `status ${res.status}`);
        if (i === 0) {
          assert.equal(res.status, 404);
          assertErrorBody(res.json, 'MODEL_NOT_FOUND');
        }
        assert.ok(inferCalls(fakes) - before <= 1, 'not retried elsewhere');
      }
      assert.equal(fakes[1]!.callCount('ModelInfer') + fakes[2]!.callCount('ModelInfer'), 0);
      assert.equal(p.fleet.get('t0')!.breaker.state, 'closed');
      const ok = await postJson(inferUrl(url), BODY);
      assert.equal(ok.status, 200, 't0 still serves other models');
    });

    it('answers 404 for a model no server has without calling any server', async () => {
      const { url, proxy: p } = await start(3);
      // Once every repository has been read, "unknown" means unknown to the fleet.
      await waitFor(
        () => p.state.snapshot().readyServers('simple', '').length === 3,
        3000,
        'repositories read',
      );
      const res = await postJson(inferUrl(url, 'no-such-model'), BODY);
      assert.equal(res.status, 404);
      assertErrorBody(res.json, 'MODEL_NOT_FOUND');
      assert.equal(inferCalls(fakes), 0);
    });
  });
});
