import { strict as assert } from 'node:assert';
import Redis from 'ioredis';
import {
  Reconciler,
  redisKeys,
  type ModelStateEntry,
  type RedisModelStateStore,
  type RepositoryIndexEntry,
} from '../../../src/model-state';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { captureLogger, sleep, uniquePrefix, waitUntil } from '../../unit/model-state/support';
import { startRedisStore } from './support';

describe('Redis model-state store shared by two replicas', () => {
  let redis: RedisServerHandle;
  let raw: Redis;
  let prefix: string;
  const opened: RedisModelStateStore[] = [];

  async function replica(resyncIntervalMs = 60_000, entryTtlMs = 5_000) {
    const { store } = await startRedisStore(redis.url, prefix, { resyncIntervalMs, entryTtlMs });
    opened.push(store);
    return store;
  }

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
  });

  after(async () => {
    raw.disconnect();
    if (redis.canRestart) await redis.stop();
  });

  beforeEach(() => {
    prefix = uniquePrefix('replicas');
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('propagates a change from replica A to replica B through pub/sub within 250 ms', async () => {
    // Resync is an hour away: only the published message can bring the change.
    const a = await replica(3_600_000);
    const b = await replica(3_600_000);
    const samples: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const model = `model-${i}`;
      const seen = new Promise<number>((resolve) => {
        const stop = b.onChange((event) => {
          if (event.changes.some((change) => change.model === model)) {
            stop();
            resolve(performance.now());
          }
        });
      });
      const started = performance.now();
      void a.markStatus('triton-0', model, '1', 'READY', 'loaded');
      samples.push((await seen) - started);
      assert.deepEqual(b.snapshot().readyServers(model, '1'), ['triton-0']);
    }
    samples.sort((x, y) => x - y);
    const median = samples[Math.floor(samples.length / 2)]!;
    const max = samples[samples.length - 1]!;
    console.log(
      `      propagation A->B over ${samples.length} writes: median ${median.toFixed(2)} ms, max ${max.toFixed(2)} ms`,
    );
    assert.ok(max < 250, `slowest propagation took ${max} ms`);
    assert.equal(b.snapshot().entry('triton-0', 'model-0', '1')?.updatedBy, a.replicaId);
  });

  it('propagates a replace and a server removal to the other replica', async () => {
    const a = await replica();
    const b = await replica();
    await a.update([
      { server: 's1', model: 'x', version: '1', status: 'READY' },
      { server: 's1', model: 'y', version: '1', status: 'READY' },
      { server: 's2', model: 'x', version: '1', status: 'READY' },
    ]);
    await waitUntil(() => b.snapshot().entries().length === 3, 1_000, 'first write');
    await a.replaceServer('s1', [{ model: 'x', version: '1', status: 'UNLOADING' }]);
    await waitUntil(() => b.snapshot().status('s1', 'x', '1') === 'UNLOADING', 1_000, 'replace');
    assert.equal(b.snapshot().status('s1', 'y', '1'), undefined);
    await a.removeServer('s2');
    await waitUntil(() => !b.snapshot().servers().includes('s2'), 1_000, 'removal');
    assert.deepEqual(b.snapshot().servers(), ['s1']);
  });

  it('repairs writes it never heard about with the periodic resync', async () => {
    const b = await replica(150);
    const keys = redisKeys(prefix);
    const now = Date.now();
    const entry: ModelStateEntry = {
      server: 's9',
      model: 'silent',
      version: '',
      status: 'READY',
      reason: 'written without a message',
      updatedAt: now,
      updatedBy: 'someone-else',
      expiresAt: now + 10_000,
    };
    // As if the message had been lost: data in Redis, nothing published.
    await raw.hset(keys.server('s9'), JSON.stringify(['silent', '']), JSON.stringify(entry));
    await raw.sadd(keys.servers, 's9');
    const added = await waitUntil(() => b.snapshot().readyServers('silent').length === 1, 1_000);
    await raw.hdel(keys.server('s9'), JSON.stringify(['silent', '']));
    const removed = await waitUntil(() => !b.snapshot().isKnown('silent'), 1_000);
    console.log(
      `      resync repaired a missed add in ${added.toFixed(0)} ms and a missed removal in ${removed.toFixed(0)} ms (interval 150 ms)`,
    );
  });

  it('gives a replica that starts later the whole state before start() returns', async () => {
    const a = await replica();
    await a.update([
      { server: 's1', model: 'x', version: '1', status: 'READY' },
      { server: 's2', model: 'y', version: '', status: 'LOADING' },
    ]);
    await a.recordLoadFailure({
      model: 'z',
      version: '',
      server: 's1',
      reason: 'bad config',
      code: 'INVALID_REQUEST',
      backoffMs: 10_000,
    });
    const late = await replica();
    assert.deepEqual(late.snapshot().readyServers('x'), ['s1']);
    assert.deepEqual(late.snapshot().loadingServers('y'), ['s2']);
    assert.equal(late.snapshot().loadFailure('z', '')?.reason, 'bad config');
  });

  it('keeps a newer mark over an older observation, in every replica and in Redis', async () => {
    const a = await replica();
    const b = await replica();
    const observedAt = Date.now();
    await sleep(3);
    await a.markStatus('s1', 'fresh', '1', 'LOADING', 'load started after the index was read');
    await waitUntil(() => b.snapshot().status('s1', 'fresh', '1') === 'LOADING', 1_000);
    // B's reconciler read the index before the load began, so the model is missing from it.
    await b.replaceServer('s1', [{ model: 'old', version: '1', status: 'READY' }], {
      asOf: observedAt,
    });
    await waitUntil(() => a.snapshot().status('s1', 'old', '1') === 'READY', 1_000);
    for (const store of [a, b, await replica()]) {
      assert.equal(store.snapshot().status('s1', 'fresh', '1'), 'LOADING');
      assert.equal(store.snapshot().status('s1', 'old', '1'), 'READY');
    }
  });

  it('shares load failures and their clearing', async () => {
    const a = await replica();
    const b = await replica();
    await a.recordLoadFailure({
      model: 'm',
      version: '2',
      server: 's1',
      reason: 'CUDA out of memory',
      code: 'UPSTREAM_UNAVAILABLE',
      backoffMs: 10_000,
    });
    await waitUntil(() => b.snapshot().loadFailure('m', '2') !== undefined, 1_000, 'failure');
    assert.equal(b.snapshot().loadFailure('m', '2')?.failedBy, a.replicaId);
    await a.clearLoadFailure('m', '2');
    await waitUntil(() => b.snapshot().loadFailure('m', '2') === undefined, 1_000, 'clearing');
  });

  it('grants a lease to one replica at a time and renews it for its holder', async () => {
    const a = await replica();
    const b = await replica();
    assert.equal(await a.tryLease('reconcile:s1', 300), true);
    assert.equal(await b.tryLease('reconcile:s1', 300), false);
    await sleep(200);
    assert.equal(await a.tryLease('reconcile:s1', 300), true, 'holder renews');
    await sleep(200);
    assert.equal(await b.tryLease('reconcile:s1', 300), false, 'renewal kept it');
    await sleep(200);
    assert.equal(await b.tryLease('reconcile:s1', 300), true, 'free after its TTL');
  });

  it('has two replicas read each server index once per interval and both learn the result', async () => {
    const a = await replica();
    const b = await replica();
    const reads = new Map<string, number>();
    const index: Record<string, RepositoryIndexEntry[]> = {
      s1: [{ name: 'resnet', version: '1', state: 'READY', reason: '' }],
      s2: [
        { name: 'resnet', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' },
        { name: 'bert', version: '', state: '', reason: '' },
      ],
      s3: [{ name: 'bert', version: '3', state: 'READY', reason: '' }],
    };
    const source = {
      servers: () => Object.keys(index),
      repositoryIndex: async (server: string) => {
        reads.set(server, (reads.get(server) ?? 0) + 1);
        await sleep(5);
        return index[server]!;
      },
    };
    const reconcilers = [a, b].map(
      (store) => new Reconciler({ store, source, intervalMs: 1_000, logger: captureLogger() }),
    );
    const results = await Promise.all(reconcilers.map((reconciler) => reconciler.runOnce()));
    assert.deepEqual(Object.fromEntries(reads), { s1: 1, s2: 1, s3: 1 });
    assert.equal(results[0]!.reconciled.length + results[1]!.reconciled.length, 3);
    assert.equal(results[0]!.skipped.length + results[1]!.skipped.length, 3);
    for (const store of [a, b]) {
      await waitUntil(() => store.snapshot().entries().length === 4, 1_000, 'index entries');
      assert.deepEqual(store.snapshot().readyServers('resnet'), ['s1']);
      assert.deepEqual(store.snapshot().readyServers('bert'), ['s3']);
      assert.equal(store.snapshot().entry('s2', 'bert', '')?.reason, 'not loaded');
    }
  });
});
