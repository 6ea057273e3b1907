import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  httpRequest,
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  type HttpAnswer,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import type { FakeTriton } from '../../../src/fake-triton';
import { bearer, KeysFile } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);
const BODY = JSON.stringify(simpleRequest(A, A));

function infer(url: string, key: string, body = BODY): Promise<HttpAnswer> {
  return httpRequest(`${url}/v2/models/simple/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(key) },
    body,
  });
}

function count(answers: readonly HttpAnswer[], status: number): number {
  return answers.filter((a) => a.status === status).length;
}

describe('front door: per-client quotas', function () {
  let fakes: FakeTriton[];
  let keys: KeysFile;

  before(async () => {
    fakes = await startFakes(1);
    keys = new KeysFile([
      // 5 requests per 5 s window (1/s sustained, 5 at once).
      { name: 'metered', key: 'k-metered', scopes: ['infer'], requestsPerSecond: 1, burst: 5 },
      { name: 'free', key: 'k-free', scopes: ['infer'] },
      { name: 'bytes', key: 'k-bytes', scopes: ['infer'], bytesPerSecond: 1000 },
      // 20 requests per 10 s window, shared by the replicas below.
      { name: 'shared', key: 'k-shared', scopes: ['infer'], requestsPerSecond: 2, burst: 20 },
      // 10 requests per 1 s window: spent and renewed many times in a few seconds.
      { name: 'steady', key: 'k-steady', scopes: ['infer'], requestsPerSecond: 10 },
    ]);
  });
  after(async () => {
    keys.remove();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
  });

  describe('in one replica without Redis', () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        AUTH_KEYS_FILE: keys.path,
      });
    });
    after(async () => {
      await proxy.close();
    });

    it('answers 429 RATE_LIMITED with Retry-After and RateLimit headers once the budget is spent', async () => {
      const answers: HttpAnswer[] = [];
      for (let i = 0; i < 8; i++) answers.push(await infer(proxy.url, 'k-metered'));
      assert.equal(count(answers, 200), 5);
      assert.equal(count(answers, 429), 3);
      const ok = answers[0]!;
      assert.equal(ok.headers.get('ratelimit-policy'), '"requests";q=5;w=5');
      assert.equal(ok.headers.get('ratelimit')?.startsWith('"requests";r=4;t='), true);
      const limited = answers[7]!;
      assert.equal(limited.json.code, 'RATE_LIMITED');
      assert.match(
        String(limited.json.error),
        /client 'metered' is over its quota of 5 requests per 5 s/,
      );
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
      assert.match(limited.headers.get('ratelimit') ?? '', /^"requests";r=0;t=[1-5]$/);
      assert.equal(limited.headers.get('ratelimit-policy'), '"requests";q=5;w=5');

      // Another client is not affected, and one without a quota gets no RateLimit headers.
      const free = await infer(proxy.url, 'k-free');
      assert.equal(free.status, 200);
      assert.equal(free.headers.get('ratelimit'), null);

      const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
      assert.match(
        metrics,
        /triton_proxy_rate_limited_total\{client="metered",policy="requests"\} 3/,
      );
    });

    it('meters request body bytes per second when the client has a byte quota', async () => {
      // Bodies of 300 bytes (JSON padded with spaces): the fourth within a second passes 1000.
      const body = BODY.padEnd(300, ' ');
      const answers: HttpAnswer[] = [];
      for (let i = 0; i < 4; i++) answers.push(await infer(proxy.url, 'k-bytes', body));
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 429],
      );
      assert.match(answers[3]!.headers.get('ratelimit-policy') ?? '', /"bytes";q=1000;w=1/);
    });
  });

  describe('across two replicas on one Redis', () => {
    let redis: RedisServerHandle;
    let replicas: TestProxy[] = [];

    before(async () => {
      redis = await startRedisServer();
    });
    after(async () => {
      if (redis.canRestart) await redis.stop();
    });
    afterEach(async () => {
      await Promise.all(replicas.map((r) => r.close()));
      replicas = [];
    });

    const startReplicas = async (): Promise<TestProxy[]> => {
      const prefix = `quota-${randomUUID()}:`;
      replicas = await Promise.all(
        ['a', 'b'].map((id) =>
          startTestProxy({
            TRITON_SERVERS: serversEnv(fakes),
            AUTH_KEYS_FILE: keys.path,
            REDIS_URL: redis.url,
            REDIS_KEY_PREFIX: prefix,
            REPLICA_ID: `replica-${id}`,
            // A dead Redis is noticed within 200 ms instead of the default.
            REDIS_COMMAND_TIMEOUT_MS: '200',
          }),
        ),
      );
      return replicas;
    };

    it('enforces one budget: the 200s summed over both replicas stay within it', async () => {
      const [a, b] = await startReplicas();
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) => infer((i % 2 === 0 ? a : b)!.url, 'k-shared')),
      );
      const elapsedMs = Date.now() - started;
      const ok = count(answers, 200);
      console.log(
        `      60 requests over two replicas in ${elapsedMs} ms: ${ok} answered 200, budget 20`,
      );
      assert.equal(ok + count(answers, 429), 60, 'every answer is 200 or 429');
      // One 10 s window holds 20; a run slower than the window could see a second one.
      assert.ok(ok <= (elapsedMs < 10_000 ? 20 : 40), `${ok} requests served`);
      assert.ok(ok >= 20, 'the budget itself is served');
      const perReplica = [a, b].map(
        (r) => answers.filter((x, i) => (i % 2 === 0 ? a : b) === r && x.status === 200).length,
      );
      assert.ok(
        perReplica.every((n) => n > 0),
        `both replicas served part of it: ${perReplica.join('+')}`,
      );
    });

    it('keeps answering 200 or 429, never 5xx, while Redis is killed during enforcement', async function () {
      if (!redis.canRestart) this.skip();
      const [a, b] = await startReplicas();
      const answers: HttpAnswer[] = [];
      const send = async (until: number): Promise<void> => {
        let i = 0;
        while (Date.now() < until) {
          answers.push(await infer((i++ % 2 === 0 ? a : b)!.url, 'k-steady'));
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const end = Date.now() + 2500;
      const traffic = Promise.all([send(end), send(end)]);
      await new Promise((r) => setTimeout(r, 700));
      await redis.stop();
      await traffic;
      const statuses = new Set(answers.map((x) => x.status));
      console.log(
        `      ${answers.length} requests, Redis killed after 700 ms: ${count(answers, 200)} x 200, ${count(answers, 429)} x 429`,
      );
      assert.deepEqual(
        [...statuses].filter((s) => s !== 200 && s !== 429),
        [],
        'only 200 and 429',
      );
      assert.ok(count(answers, 429) > 0, 'the quota was enforced');
      const afterKill = answers.slice(Math.floor(answers.length / 2));
      assert.ok(count(afterKill, 200) > 0, 'requests were still served without Redis');
      const fallbacks = await Promise.all(
        [a, b].map(async (r) => {
          const text = await (await fetch(`${r!.url}/metrics`)).text();
          return Number(/triton_proxy_quota_fallbacks_total (\d+)/.exec(text)?.[1] ?? 0);
        }),
      );
      assert.ok(
        fallbacks.some((n) => n > 0),
        `the in-memory insurance decided: ${fallbacks.join(',')}`,
      );
      await redis.restart();
    });
  });
});
