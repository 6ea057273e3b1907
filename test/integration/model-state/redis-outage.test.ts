import { strict as assert } from 'node:assert';
import type { ModelStateStore } from '../../../src/model-state';
import {
  EXTERNAL_REDIS_SKIP_REASON,
  startRedisServer,
  type RedisServerHandle,
} from '../../helpers/redis-server';
import { sleep, uniquePrefix, waitUntil } from '../../unit/model-state/support';
import { startRedisStore, type RedisStoreFixture } from './support';

function view(store: ModelStateStore): string[] {
  return store
    .snapshot()
    .entries()
    .map((entry) => `${entry.server}/${entry.model}/${entry.version}=${entry.status}`)
    .sort();
}

describe('Redis model-state store through a Redis outage', function () {
  let redis: RedisServerHandle;
  const opened: RedisStoreFixture[] = [];

  before(async function () {
    redis = await startRedisServer();
    if (!redis.canRestart) {
      console.log(`      skipped: ${EXTERNAL_REDIS_SKIP_REASON}`);
      this.skip();
    }
  });

  after(async () => {
    if (redis?.canRestart) await redis.stop();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((fixture) => fixture.store.close()));
  });

  async function replica(prefix: string): Promise<RedisStoreFixture> {
    const fixture = await startRedisStore(redis.url, prefix, {
      resyncIntervalMs: 200,
      startTimeoutMs: 300,
    });
    opened.push(fixture);
    return fixture;
  }

  it('serves its snapshot and takes writes while Redis is down, then rebuilds an emptied Redis', async () => {
    const prefix = uniquePrefix('outage');
    const a = await replica(prefix);
    const b = await replica(prefix);
    await a.store.update([
      { server: 's1', model: 'resnet', version: '1', status: 'READY' },
      { server: 's2', model: 'resnet', version: '1', status: 'READY' },
    ]);
    await waitUntil(() => view(b.store).length === 2, 1_000, 'initial sync');

    // Traffic that keeps going through the kill and the restart: reads on the
    // hot path and writes of request outcomes, none of which may throw.
    let running = true;
    let operations = 0;
    const failures: unknown[] = [];
    const traffic = (async () => {
      while (running) {
        try {
          if (a.store.snapshot().readyServers('resnet', '1').length === 0) {
            failures.push(new Error('lost the ready servers'));
          }
          await b.store.markStatus('s1', 'resnet', '1', 'READY', 'answered a request');
          operations += 1;
        } catch (error) {
          failures.push(error);
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    await redis.stop();
    await waitUntil(() => !a.store.health().up && !b.store.health().up, 2_000, 'down detected');
    assert.deepEqual(a.store.health(), { backend: 'redis', up: false });

    // The hot path keeps working from the local view.
    assert.deepEqual(a.store.snapshot().readyServers('resnet', '1'), ['s1', 's2']);
    // Writes neither throw nor hang; they apply locally.
    await a.store.markStatus('s1', 'bert', '', 'READY', 'loaded during the outage');
    await b.store.markStatus('s2', 'resnet', '1', 'UNAVAILABLE', 'NOT_FOUND during the outage');
    await a.store.replaceServer('s3', [{ model: 'gpt', version: '1', status: 'LOADING' }]);
    assert.equal(a.store.snapshot().status('s1', 'bert'), 'READY');
    assert.equal(
      await a.store.tryLease('reconcile:s1', 1_000),
      true,
      'lease falls back to "do it"',
    );
    const lock = await a.store.acquireLock('load:gpt', 1_000);
    assert.equal(lock?.scope, 'local');
    assert.equal(await a.store.acquireLock('load:gpt', 1_000), null, 'local lock still excludes');
    await lock?.release();
    await a.store.resync();
    await sleep(300);

    await redis.restart();
    await waitUntil(() => a.store.health().up && b.store.health().up, 3_000, 'reconnect');
    const expected = [
      's1/bert/=READY',
      's1/resnet/1=READY',
      's2/resnet/1=UNAVAILABLE',
      's3/gpt/1=LOADING',
    ];
    const rebuilt = await waitUntil(
      () =>
        JSON.stringify(view(a.store)) === JSON.stringify(expected) &&
        JSON.stringify(view(b.store)) === JSON.stringify(expected),
      3_000,
      'replicas in sync',
    );
    running = false;
    await traffic;
    assert.deepEqual(failures, []);
    assert.ok(operations > 20, `${operations} operations ran through the outage`);
    console.log(
      `      replicas back in sync ${rebuilt.toFixed(0)} ms after Redis came back; ${operations} operations, 0 errors`,
    );
    // Redis itself holds the rebuilt state: a new replica learns it all at start.
    const c = await replica(prefix);
    assert.deepEqual(view(c.store), expected);

    for (const fixture of [a, b]) {
      assert.deepEqual(fixture.upEvents, [false, true, false, true]);
      const warnings = fixture.logger.at('warn');
      assert.equal(
        warnings.filter((line) => line.startsWith('Redis unreachable')).length,
        1,
        'one warn line per outage, not one per operation',
      );
      assert.equal(warnings.filter((line) => line.startsWith('Redis lost')).length, 1);
    }
  });

  it('starts without Redis, serves locally and joins once Redis appears', async () => {
    await redis.stop();
    const prefix = uniquePrefix('late-redis');
    const started = performance.now();
    const a = await replica(prefix);
    assert.ok(performance.now() - started < 1_000, 'start() does not wait for Redis forever');
    assert.equal(a.store.health().up, false);
    assert.ok(a.logger.at('warn').some((line) => line.startsWith('Redis not reachable at start')));
    await a.store.markStatus('s1', 'm', '1', 'READY');
    assert.deepEqual(a.store.snapshot().readyServers('m'), ['s1']);

    await redis.restart();
    await waitUntil(() => a.store.health().up, 3_000, 'connected');
    // The write made before Redis existed reaches it.
    const b = await replica(prefix);
    await waitUntil(() => b.store.snapshot().readyServers('m').length === 1, 1_000, 'pushed');
  });
});
