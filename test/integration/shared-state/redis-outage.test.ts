import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import type { FakeTriton } from '../../../src/fake-triton';
import { redisKeys } from '../../../src/model-state';
import { postJson, waitFor, type TestProxy } from '../../helpers/proxy-harness';
import {
  EXTERNAL_REDIS_SKIP_REASON,
  startRedisServer,
  type RedisServerHandle,
} from '../../helpers/redis-server';
import {
  model,
  scrapeGauge,
  sleep,
  startFleet,
  startReplica,
  statusView,
  steadyStream,
  uniquePrefix,
} from './support';

async function readiness(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/health/ready`);
  return { status: res.status, body: await res.text() };
}

describe('proxy replicas through a Redis outage', function () {
  let redis: RedisServerHandle;
  let fakes: FakeTriton[] = [];
  const replicas: TestProxy[] = [];

  before(async function () {
    redis = await startRedisServer();
    if (!redis.canRestart) {
      console.log(`      skipped: ${EXTERNAL_REDIS_SKIP_REASON}`);
      this.skip();
    }
  });

  after(async () => {
    if (redis.canRestart) await redis.stop();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.close()));
    await Promise.all(fakes.splice(0).map((f) => f.stop({ graceMs: 100 })));
  });

  it('serves every request while Redis is killed, then rebuilds the emptied Redis and brings the replicas back in sync', async () => {
    fakes = await startFleet([
      () => [model('simple'), model('m', false)],
      () => [model('simple'), model('m', false)],
    ]);
    const prefix = uniquePrefix();
    const a = await startReplica(fakes, { redisUrl: redis.url, prefix, replicaId: 'replica-a' });
    const b = await startReplica(fakes, { redisUrl: redis.url, prefix, replicaId: 'replica-b' });
    replicas.push(a, b);
    const upOn = (r: TestProxy) => scrapeGauge(r.url, 'triton_proxy_redis_up');
    assert.deepEqual([await upOn(a), await upOn(b)], [1, 1]);

    let outageMs = 0;
    let loadDuringOutage = 0;
    const chaos = (async () => {
      await sleep(300);
      const killed = performance.now();
      await redis.stop();
      await waitFor(
        async () => (await upOn(a)) === 0 && (await upOn(b)) === 0,
        3000,
        'triton_proxy_redis_up 0 on both',
      );
      // A state change while Redis is away: B can only learn it from Triton itself.
      loadDuringOutage = (await postJson(`${a.url}/v2/repository/models/m/load?server=t1`, {}))
        .status;
      await sleep(Math.max(0, 1800 - (performance.now() - killed)));
      outageMs = performance.now() - killed;
    })();
    const stream = await steadyStream([a.url, b.url], 'simple', 3, chaos);
    await chaos;
    console.log(
      `      Redis killed for ${outageMs.toFixed(0)} ms under load: ${stream.ok} served, ${stream.failures.length} failed`,
    );
    assert.deepEqual(stream.failures, [], 'no request failed because of Redis');
    assert.ok(stream.ok > 20, `a steady stream ran (${stream.ok} requests)`);
    assert.equal(loadDuringOutage, 200, 'an explicit load works without Redis');

    const restarted = performance.now();
    await redis.restart();
    await waitFor(
      async () => (await upOn(a)) === 1 && (await upOn(b)) === 1,
      10_000,
      'triton_proxy_redis_up 1 on both',
    );
    const upMs = performance.now() - restarted;
    const keys = redisKeys(prefix);
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      await waitFor(
        async () => {
          const servers = (await client.smembers(keys.servers)).sort();
          const t1 = Object.keys(await client.hgetall(keys.server('t1')));
          return servers.join() === 't0,t1' && t1.includes(JSON.stringify(['m', '1']));
        },
        5000,
        'the state written back to the emptied Redis',
      );
    } finally {
      client.disconnect();
    }
    await waitFor(
      () => {
        const view = statusView(a.proxy.state.snapshot());
        return (
          view.includes('t1/m/1=READY') &&
          view.join() === statusView(b.proxy.state.snapshot()).join()
        );
      },
      5000,
      'both replicas agree, m READY on t1 included',
    );
    console.log(
      `      Redis back after restart in ${upMs.toFixed(0)} ms; state rebuilt and replicas in sync ${(performance.now() - restarted).toFixed(0)} ms after restart`,
    );
    assert.deepEqual(a.proxy.state.snapshot().readyServers('m'), ['t1']);
  });

  it('fails readiness while Redis is down only when READINESS_REQUIRES_REDIS is set', async () => {
    fakes = await startFleet([() => [model('simple')]]);
    const prefix = uniquePrefix();
    const strict = await startReplica(fakes, {
      redisUrl: redis.url,
      prefix,
      replicaId: 'strict',
      env: { READINESS_REQUIRES_REDIS: 'true' },
    });
    const lenient = await startReplica(fakes, {
      redisUrl: redis.url,
      prefix,
      replicaId: 'lenient',
    });
    replicas.push(strict, lenient);
    assert.equal((await readiness(strict.url)).status, 200);
    assert.equal((await readiness(lenient.url)).status, 200);

    await redis.stop();
    await waitFor(
      async () => (await readiness(strict.url)).status === 503,
      3000,
      'strict replica not ready',
    );
    assert.match((await readiness(strict.url)).body, /Redis/);
    assert.equal((await readiness(lenient.url)).status, 200, 'default: readiness ignores Redis');

    await redis.restart();
    await waitFor(
      async () => (await readiness(strict.url)).status === 200,
      10_000,
      'strict replica ready again',
    );
    assert.equal((await readiness(lenient.url)).status, 200);
  });
});
