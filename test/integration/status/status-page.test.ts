import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../../src/access';
import {
  httpRequest,
  postJson,
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
} from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { BrokenFleet, INFER_BODY, statusJson } from './broken-fleet';

describe('status page through the running proxy (fake Tritons over real gRPC)', function () {
  this.timeout(60_000);

  describe('a fleet with a broken server, an open breaker and a growing queue', () => {
    const fleet = new BrokenFleet();
    after(() => fleet.close());

    it('shows each failure in /status.json as it happens', async () => {
      await fleet.start();
      let s = await statusJson(fleet.url);
      assert.deepEqual(
        s.servers.map((x) => [x.name, x.health, x.breaker]),
        [
          ['t0', 'ready', 'closed'],
          ['t1', 'ready', 'closed'],
          ['t2', 'ready', 'closed'],
        ],
      );
      assert.equal(s.replica.ready, true);
      assert.deepEqual(s.replica.state, { mode: 'memory', redisUp: null });
      assert.deepEqual(
        s.replica.replicasSeen.map((r) => r.self),
        [true],
      );
      assert.ok(s.models.rows.some((r) => r.model === 'simple'));

      await fleet.breakServer();
      await fleet.openBreaker();
      s = await statusJson(fleet.url);
      const t1 = s.servers.find((x) => x.name === 't1')!;
      assert.equal(t1.health, 'not ready');
      assert.equal(t1.stale, true);
      const simple = s.models.rows.find((r) => r.model === 'simple')!;
      assert.equal(simple.cells.t1?.stale, true, 'the stopped server’s models are marked stale');
      assert.equal(simple.cells.t0?.status, 'READY');

      const t2 = s.servers.find((x) => x.name === 't2')!;
      assert.equal(t2.breaker, 'open');
      assert.equal(t2.health, 'ready', 'health checks still pass: only inference fails');
      assert.ok(t2.recent.calls >= 2, `t2 calls ${t2.recent.calls}`);
      assert.equal(t2.recent.errorRatio, 1, 'every recent call to t2 failed');
      assert.ok(t2.recent.p99Ms !== null && t2.recent.p99Ms > 0);
      assert.equal(t2.recent.windowSeconds, 60);
      const internal = s.errors.recent.find((e) => e.code === 'INTERNAL');
      assert.ok(internal, JSON.stringify(s.errors));
      assert.equal(internal.server, 't2');
      assert.equal(internal.status, 500);
      assert.match(internal.message, /illegal memory access/);
      assert.equal(internal.path, '/v2/models/simple/infer');

      // The queue grows: 1 call on t0 (the only server left) and the rest waiting.
      fleet.sendSlow(3, 20_000);
      const first = await fleet.waitQueued(2);
      fleet.sendSlow(3, 20_000);
      const second = await fleet.waitQueued(5);
      assert.ok(second.admission.queued > first.admission.queued);
      assert.equal(second.admission.inflight, 1);
      const model = second.admission.byModel.find((m) => m.model === 'simple')!;
      assert.equal(model.queued, 5);
      assert.equal(model.maxInflight, 1);
      assert.ok(second.admission.inflightBytes > 0, 'queued bodies hold their reserved bytes');
      const t0 = second.servers.find((x) => x.name === 't0')!;
      assert.equal(t0.inflight, 1);
    });

    it('renders the same state as HTML: broken server, open breaker, queue', async () => {
      const answer = await httpRequest(`${fleet.url}/status`);
      assert.equal(answer.status, 200);
      assert.match(answer.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(answer.headers.get('cache-control'), 'no-store');
      assert.match(answer.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      const html = answer.text;
      assert.match(html, /<tr class="row-bad" data-server="t1">.*not ready.*stale/);
      assert.match(html, /<tr class="row-bad" data-server="t2">.*badge bad">open</);
      assert.match(html, /queued <b data-field="queued">5<\/b>/);
      assert.match(html, /illegal memory access/);
    });
  });

  describe('admission, cache, Redis and access', () => {
    let fakes: Awaited<ReturnType<typeof startFakes>> = [];
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
      fakes[0]?.setLatency(0);
      await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
      fakes = [];
    });

    async function proxyWith(env: Record<string, string>) {
      fakes = await startFakes(1);
      const proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes), ...env });
      closers.push(() => proxy.close());
      await waitFor(() => proxy.proxy.fleet.readyCount() === 1, 10_000, 'ready');
      return proxy;
    }

    it('counts requests shed by admission, by reason', async () => {
      const { url } = await proxyWith({ MODEL_MAX_INFLIGHT: '1', MODEL_MAX_QUEUE: '1' });
      fakes[0]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 500 : 0));
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          postJson(`${url}/v2/models/simple/infer`, INFER_BODY).then((a) => a.status),
        ),
      );
      assert.deepEqual(answers.sort(), [200, 200, 429, 429]);
      const s = await statusJson(url);
      assert.deepEqual(s.admission.rejected, { queue_full: 2 });
      assert.equal(s.errors.byCode.find((c) => c.code === 'OVERLOADED')?.count, 2);
    });

    it('shows the cache hit ratio by model when the cache is on, and says when it is off', async () => {
      const off = await proxyWith({});
      assert.deepEqual((await statusJson(off.url)).cache, { enabled: false });
      await closers.pop()!();
      await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));

      const { url } = await proxyWith({ CACHE_MODELS: 'simple:10m' });
      for (let i = 0; i < 4; i++) {
        const answer = await postJson(`${url}/v2/models/simple/infer`, INFER_BODY);
        assert.equal(answer.status, 200);
      }
      const s = await statusJson(url);
      assert.deepEqual(s.cache, {
        enabled: true,
        models: [{ model: 'simple', hits: 3, misses: 1, bypassed: 0, hitRatio: 0.75 }],
      });
    });

    it('lists the replicas sharing a Redis, and Redis health', async () => {
      const redis: RedisServerHandle = await startRedisServer();
      closers.push(() => (redis.canRestart ? redis.stop() : Promise.resolve()));
      const prefix = `status-${process.pid}-${Date.now()}:`;
      const shared = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix };
      const a = await proxyWith({ ...shared, REPLICA_ID: 'replica-a' });
      const b = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        ...shared,
        REPLICA_ID: 'replica-b',
      });
      closers.push(() => b.close());
      let s = await statusJson(a.url);
      await waitFor(
        async () => {
          s = await statusJson(a.url);
          return s.replica.replicasSeen.length === 2;
        },
        10_000,
        'both replicas seen',
      );
      assert.deepEqual(
        s.replica.replicasSeen.map((r) => [r.id, r.self]),
        [
          ['replica-a', true],
          ['replica-b', false],
        ],
      );
      assert.deepEqual(s.replica.state, { mode: 'redis', redisUp: true });
      assert.equal(s.replica.id, 'replica-a');
    });

    it('answers another method than GET with 405 and Allow', async () => {
      const { url } = await proxyWith({});
      for (const path of ['/status', '/status.json']) {
        const answer = await httpRequest(`${url}${path}`, { method: 'POST', body: '{}' });
        assert.equal(answer.status, 405, `${path}: ${answer.text}`);
        assert.equal(answer.headers.get('allow'), 'GET, HEAD');
      }
    });

    it('needs the read scope when authentication is on: 401 without a key, 403 without read, 200 with it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'status-keys-'));
      closers.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
      const keys = join(dir, 'keys.yaml');
      writeFileSync(
        keys,
        [
          'clients:',
          `  - { name: reader, keySha256: ${sha256Hex('k-read')}, scopes: [read] }`,
          `  - { name: inferer, keySha256: ${sha256Hex('k-infer')}, scopes: [infer] }`,
        ].join('\n'),
      );
      const { url } = await proxyWith({ AUTH_KEYS_FILE: keys });
      for (const path of ['/status', '/status.json']) {
        const none = await httpRequest(`${url}${path}`);
        assert.equal(none.status, 401, `${path}: ${none.text}`);
        assert.equal(none.json.code, 'UNAUTHENTICATED');
        const infer = await httpRequest(`${url}${path}`, {
          headers: { authorization: 'Bearer k-infer' },
        });
        assert.equal(infer.status, 403, `${path}: ${infer.text}`);
        assert.match(String(infer.json.error), /lacks the 'read' scope/);
        const read = await httpRequest(`${url}${path}`, { headers: { 'x-api-key': 'k-read' } });
        assert.equal(read.status, 200, `${path}: ${read.text}`);
      }
      const page = await httpRequest(`${url}/status`, { headers: { 'x-api-key': 'k-read' } });
      assert.match(page.text, /<h1>triton-proxy status<\/h1>/);
    });
  });
});
