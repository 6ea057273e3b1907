import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import { redisKeys, type RedisModelStateStore } from '../../../src/model-state';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { waitFor } from '../../helpers/proxy-harness';
import { uniquePrefix, waitUntil } from '../../unit/model-state/support';
import { startRedisStore } from './support';

describe('model generations shared through Redis', () => {
  let redis: RedisServerHandle;
  let raw: Redis;
  let prefix: string;
  const opened: RedisModelStateStore[] = [];

  async function replica(resyncIntervalMs = 60_000) {
    const { store } = await startRedisStore(redis.url, prefix, { resyncIntervalMs });
    opened.push(store);
    return store;
  }

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    raw.on('error', () => undefined); // the restart test drops its connection
  });

  after(async () => {
    raw.disconnect();
    if (redis.canRestart) await redis.stop();
  });

  beforeEach(() => {
    prefix = uniquePrefix('generations');
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('reach the other replica through pub/sub, and a replica started later reads them', async () => {
    const a = await replica(3_600_000);
    const b = await replica(3_600_000);
    await a.markStatus('t0', 'm', '1', 'READY');
    await a.markStatus('t0', 'm', '1', 'UNAVAILABLE');
    assert.equal(a.snapshot().generation('m'), 2);
    await waitUntil(() => b.snapshot().generation('m') === 2, 2000, 'b to learn generation 2');
    assert.equal(await raw.hget(redisKeys(prefix).generations, 'm'), '2');
    const late = await replica(3_600_000);
    assert.equal(late.snapshot().generation('m'), 2);
  });

  it('take a number above every one known when two replicas bump at once', async () => {
    const a = await replica(3_600_000);
    const b = await replica(3_600_000);
    await Promise.all([
      a.markStatus('t0', 'm', '1', 'READY'),
      b.markStatus('t1', 'm', '1', 'READY'),
    ]);
    await waitUntil(
      () => a.snapshot().generation('m') === b.snapshot().generation('m'),
      2000,
      'one generation on both',
    );
    assert.equal(a.snapshot().generation('m'), 2, 'two changes, two bumps, no lost update');
  });

  it('keep going up after Redis loses its data', async function () {
    if (!redis.canRestart) this.skip();
    const a = await replica(200);
    await a.markStatus('t0', 'm', '1', 'READY');
    await a.markStatus('t0', 'm', '1', 'UNAVAILABLE');
    await redis.restart();
    await waitUntil(() => a.health().up, 5000, 'Redis back');
    // The resync writes the replica's view back, generations included.
    await waitFor(
      async () => (await raw.hget(redisKeys(prefix).generations, 'm').catch(() => null)) === '2',
      5000,
      'generation written back',
    );
    await a.markStatus('t0', 'm', '1', 'READY');
    assert.equal(a.snapshot().generation('m'), 3);
  });
});
