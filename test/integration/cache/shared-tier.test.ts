import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { decodeModelInferResponse } from '../../../src/triton/wire';
import { simpleModel, type FakeTriton } from '../../../src/fake-triton';
import type { TensorMap } from '../../../src/fake-triton';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { httpRequest, startFakes, waitFor, type TestProxy } from '../../helpers/proxy-harness';
import { startReplica, uniquePrefix } from '../shared-state/support';
import { A, B, metricValue, postInfer, simpleBody } from './support';

const CACHED: Record<string, string> = {
  CACHE_MODELS: 'simple:10m',
  CACHE_SHARED: 'true',
  RETRY_MAX_ATTEMPTS: '1',
  // The reload story loads through the proxy.
  ALLOW_UNAUTHENTICATED_ADMIN: 'true',
};

function out0(answer: { json: Record<string, unknown> }): number[] {
  return (answer.json.outputs as Array<{ name: string; data: number[] }>).find(
    (o) => o.name === 'OUTPUT0',
  )!.data;
}

describe('shared cache tier (two replicas, real Redis)', function () {
  let redis: RedisServerHandle;
  let fake: FakeTriton;
  let a: TestProxy;
  let b: TestProxy;
  const calls = () => fake.callCount('ModelInfer', 'simple');

  beforeEach(async () => {
    redis = await startRedisServer();
    [fake] = (await startFakes(1)) as [FakeTriton];
    const prefix = uniquePrefix();
    a = await startReplica([fake], { redisUrl: redis.url, prefix, replicaId: 'a', env: CACHED });
    b = await startReplica([fake], { redisUrl: redis.url, prefix, replicaId: 'b', env: CACHED });
    await waitFor(() => a.proxy.state.health().up && b.proxy.state.health().up, 5000, 'Redis up');
  });

  afterEach(async () => {
    await a?.close();
    await b?.close();
    await fake?.stop({ graceMs: 100 });
    await redis?.stop();
  });

  it('fills the shared tier on a miss on replica A and answers the same request on replica B from it', async () => {
    const first = await postInfer(a.url, 'simple', simpleBody(A, B, { id: 'on-a' }));
    assert.equal(first.headers.get('x-cache'), 'MISS');
    // The write to Redis is fire and forget: wait until B can see it.
    await waitFor(
      async () => (await metricValue(a.url, 'triton_proxy_cache_bytes{tier="redis"}')) > 0,
      5000,
      'the answer written to Redis',
    );
    const second = await postInfer(b.url, 'simple', simpleBody(A, B, { id: 'on-b' }));
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.equal(second.json.id, 'on-b');
    assert.deepEqual(second.json.outputs, first.json.outputs);
    assert.equal(calls(), 1);
    // Now in B's own memory too.
    assert.equal((await postInfer(b.url, 'simple', simpleBody())).headers.get('x-cache'), 'HIT');
    assert.equal(calls(), 1);
  });

  it('stops serving old answers on both replicas when the model is reloaded through one of them', async () => {
    for (const r of [a, b]) await postInfer(r.url, 'simple', simpleBody());
    for (const r of [a, b]) {
      const hit = await postInfer(r.url, 'simple', simpleBody());
      assert.equal(hit.headers.get('x-cache'), 'HIT');
      assert.deepEqual(
        out0(hit),
        A.map((x, i) => x + B[i]!),
      );
    }
    // New model files in the repository: after the reload, Triton answers differently.
    fake.addModel(
      simpleModel({
        compute: (inputs: TensorMap) => {
          const x = inputs.get('INPUT0')!;
          const data = Buffer.alloc(x.data.length);
          for (let i = 0; i < data.length; i += 4) data.writeInt32LE(x.data.readInt32LE(i) * 10, i);
          return new Map([
            ['OUTPUT0', { datatype: 'INT32', shape: x.shape, data }],
            ['OUTPUT1', { datatype: 'INT32', shape: x.shape, data }],
          ]);
        },
      }),
    );
    const before = b.proxy.state.snapshot().generation('simple');
    const load = await httpRequest(`${a.url}/v2/repository/models/simple/load`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(load.status, 200, load.text);
    // Replica B learns the new generation through the shared state (pub/sub).
    await waitFor(
      () => b.proxy.state.snapshot().generation('simple') > before,
      5000,
      'replica b to see the reload',
    );
    await waitFor(
      () =>
        b.proxy.state.snapshot().generation('simple') ===
        a.proxy.state.snapshot().generation('simple'),
      5000,
      'both replicas on one generation',
    );
    for (const r of [b, a]) {
      const fresh = await postInfer(r.url, 'simple', simpleBody());
      assert.equal(fresh.status, 200);
      assert.notEqual(fresh.headers.get('x-cache'), null);
      assert.deepEqual(
        out0(fresh),
        A.map((x) => x * 10),
        'the answer of the reloaded model',
      );
    }
    assert.ok((await metricValue(b.url, 'triton_proxy_cache_invalidations_total')) >= 1);
  });

  it('treats a killed Redis as misses, never as errors, and shares again once it is back', async function () {
    if (!redis.canRestart) this.skip();
    await postInfer(a.url, 'simple', simpleBody());
    await redis.stop();
    const bodies = [simpleBody(), simpleBody(B, A), simpleBody(A, A), simpleBody(B, B)];
    for (const r of [a, b]) {
      for (const body of bodies) {
        const answer = await postInfer(r.url, 'simple', body);
        assert.equal(answer.status, 200, answer.text);
        assert.notEqual(answer.headers.get('x-cache'), null);
      }
    }
    // Each replica's memory still works; only sharing is gone.
    assert.equal(calls(), 1 + 2 * bodies.length - 1);
    await redis.restart();
    await waitFor(
      () => a.proxy.state.health().up && b.proxy.state.health().up,
      10_000,
      'Redis back',
    );
    // A fresh question each round, so B's hit can only come from Redis.
    let round = 0;
    await waitFor(
      async () => {
        const body = simpleBody(
          A.map((x) => x + 1000 * ++round),
          B,
        );
        if ((await postInfer(a.url, 'simple', body)).status !== 200) return false;
        await new Promise((r) => setTimeout(r, 50));
        return (await postInfer(b.url, 'simple', body)).headers.get('x-cache') === 'HIT';
      },
      10_000,
      'an answer shared again through Redis',
    );
  });
});

describe('shared cache tier on a Redis of its own (CACHE_REDIS_URL)', function () {
  it('keeps answers, as raw Triton response bytes, in the cache Redis and none in the state Redis', async function () {
    const stateRedis = await startRedisServer();
    // An external REDIS_URL is one server: the two Redis cannot be told apart.
    if (!stateRedis.canRestart) this.skip();
    const cacheRedis = await startRedisServer();
    const [fake] = (await startFakes(1)) as [FakeTriton];
    const prefix = uniquePrefix();
    const env = { ...CACHED, CACHE_REDIS_URL: cacheRedis.url };
    const a = await startReplica([fake], { redisUrl: stateRedis.url, prefix, replicaId: 'a', env });
    const b = await startReplica([fake], { redisUrl: stateRedis.url, prefix, replicaId: 'b', env });
    const stateClient = new Redis(stateRedis.url);
    const cacheClient = new Redis(cacheRedis.url);
    try {
      assert.equal((await postInfer(a.url, 'simple', simpleBody())).headers.get('x-cache'), 'MISS');
      let keys: string[] = [];
      await waitFor(
        async () => (keys = await cacheClient.keys(`${prefix}cache:*`)).length === 1,
        5000,
        'the answer in the cache Redis',
      );
      assert.deepEqual(await stateClient.keys(`${prefix}cache:*`), []);
      const value = (await cacheClient.getBuffer(keys[0]!))!;
      assert.equal(value[0], 1, 'format byte');
      const stored = decodeModelInferResponse(value.subarray(9));
      assert.equal(stored.modelName, 'simple');
      assert.equal(stored.id, '', 'no caller id is stored');
      assert.ok((await cacheClient.pttl(keys[0]!)) > 0, 'the TTL is set in Redis');
      assert.equal((await postInfer(b.url, 'simple', simpleBody())).headers.get('x-cache'), 'HIT');
      assert.equal(fake.callCount('ModelInfer', 'simple'), 1);
    } finally {
      stateClient.disconnect();
      cacheClient.disconnect();
      await a.close();
      await b.close();
      await fake.stop({ graceMs: 100 });
      await stateRedis.stop();
      await cacheRedis.stop();
    }
  });
});
