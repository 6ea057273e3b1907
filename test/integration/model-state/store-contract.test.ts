import { strict as assert } from 'node:assert';
import {
  MemoryModelStateStore,
  type ModelStateEvent,
  type ModelStateStore,
} from '../../../src/model-state';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { captureLogger, sleep, uniquePrefix, waitUntil } from '../../unit/model-state/support';
import { startRedisStore } from './support';

interface Implementation {
  name: string;
  backend: 'memory' | 'redis';
  create(entryTtlMs: number): Promise<ModelStateStore>;
}

describe('model-state store contract', () => {
  let redis: RedisServerHandle;
  const opened: ModelStateStore[] = [];

  const implementations: Implementation[] = [
    {
      name: 'memory store',
      backend: 'memory',
      create: (entryTtlMs) =>
        Promise.resolve(new MemoryModelStateStore({ entryTtlMs, logger: captureLogger() })),
    },
    {
      name: 'Redis store',
      backend: 'redis',
      create: async (entryTtlMs) =>
        (await startRedisStore(redis.url, uniquePrefix('contract'), { entryTtlMs })).store,
    },
  ];

  before(async () => {
    redis = await startRedisServer();
  });

  after(async () => {
    if (redis.canRestart) await redis.stop();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  for (const implementation of implementations) {
    describe(implementation.name, () => {
      async function open(entryTtlMs = 5_000): Promise<ModelStateStore> {
        const store = await implementation.create(entryTtlMs);
        opened.push(store);
        return store;
      }

      it('shows a write in its own snapshot before the write settles', async () => {
        const store = await open();
        const written = store.markStatus('s1', 'resnet', '1', 'READY', 'loaded');
        assert.deepEqual(store.snapshot().readyServers('resnet', '1'), ['s1']);
        const changes = await written;
        assert.deepEqual(changes, [
          { server: 's1', model: 'resnet', version: '1', previous: undefined, current: 'READY' },
        ]);
        const entry = store.snapshot().entry('s1', 'resnet', '1');
        assert.equal(entry?.reason, 'loaded');
        assert.equal(entry?.updatedBy, store.replicaId);
      });

      it('answers routing questions from the snapshot with the version rules', async () => {
        const store = await open();
        await store.update([
          { server: 's1', model: 'm', version: '1', status: 'READY' },
          { server: 's2', model: 'm', version: '2', status: 'READY' },
          { server: 's3', model: 'm', version: '1', status: 'LOADING' },
          { server: 's3', model: 'm', version: '2', status: 'UNAVAILABLE' },
          { server: 's1', model: 'other', version: '', status: 'UNAVAILABLE', reason: 'unloaded' },
        ]);
        const snapshot = store.snapshot();
        assert.deepEqual(snapshot.readyServers('m', ''), ['s1', 's2']);
        assert.deepEqual(snapshot.readyServers('m'), ['s1', 's2']);
        assert.deepEqual(snapshot.readyServers('m', '1'), ['s1']);
        assert.deepEqual(snapshot.readyServers('m', '3'), []);
        assert.deepEqual(snapshot.loadingServers('m'), ['s3']);
        assert.equal(snapshot.status('s3', 'm'), 'LOADING');
        assert.equal(snapshot.status('s3', 'm', '2'), 'UNAVAILABLE');
        assert.equal(snapshot.status('s2', 'm', '1'), undefined);
        assert.equal(snapshot.isKnown('other'), true);
        assert.equal(snapshot.isKnown('missing'), false);
        assert.deepEqual(snapshot.servers(), ['s1', 's2', 's3']);
        assert.equal(snapshot.entriesForModel('m').length, 4);
      });

      it('replaces a server: unlisted entries go, entries written after the observation stay', async () => {
        const store = await open();
        await store.update([
          { server: 's1', model: 'a', version: '1', status: 'READY' },
          { server: 's1', model: 'b', version: '1', status: 'READY' },
        ]);
        const asOf = Date.now();
        await sleep(3);
        await store.markStatus('s1', 'c', '1', 'LOADING', 'load requested');
        const changes = await store.replaceServer(
          's1',
          [{ model: 'a', version: '1', status: 'READY' }],
          { asOf },
        );
        const snapshot = store.snapshot();
        assert.equal(snapshot.status('s1', 'a', '1'), 'READY');
        assert.equal(snapshot.status('s1', 'b', '1'), undefined);
        assert.equal(snapshot.status('s1', 'c', '1'), 'LOADING');
        assert.deepEqual(changes, [
          { server: 's1', model: 'b', version: '1', previous: 'READY', current: undefined },
        ]);
      });

      it('forgets every model of a removed server', async () => {
        const store = await open();
        await store.update([
          { server: 's1', model: 'a', version: '1', status: 'READY' },
          { server: 's2', model: 'a', version: '1', status: 'READY' },
        ]);
        await store.removeServer('s1');
        assert.deepEqual(store.snapshot().readyServers('a'), ['s2']);
        assert.deepEqual(store.snapshot().servers(), ['s2']);
      });

      it('notifies listeners of status changes, not of refreshes, with a new snapshot version', async () => {
        const store = await open();
        const events: ModelStateEvent[] = [];
        store.onChange((event) => events.push(event));
        const first = store.snapshot().version;
        await store.markStatus('s1', 'a', '1', 'READY');
        await store.markStatus('s1', 'a', '1', 'READY');
        await store.markStatus('s1', 'a', '1', 'UNAVAILABLE', 'gone');
        assert.deepEqual(
          events.map((event) => [event.origin, event.changes.map((c) => [c.previous, c.current])]),
          [
            ['local', [[undefined, 'READY']]],
            ['local', [['READY', 'UNAVAILABLE']]],
          ],
        );
        assert.ok(store.snapshot().version > first);
        const stable = store.snapshot();
        assert.equal(store.snapshot(), stable, 'reads without writes reuse the snapshot');
      });

      it('drops entries that are not written again within the TTL', async () => {
        const store = await open(150);
        const expired: ModelStateEvent[] = [];
        store.onChange((event) => {
          if (event.origin === 'expiry') expired.push(event);
        });
        await store.markStatus('s1', 'a', '1', 'READY');
        await sleep(80);
        assert.deepEqual(store.snapshot().readyServers('a'), ['s1']);
        await waitUntil(() => store.snapshot().readyServers('a').length === 0, 500, 'expiry');
        assert.equal(expired.length, 1);
        assert.deepEqual(expired[0]!.changes[0], {
          server: 's1',
          model: 'a',
          version: '1',
          previous: 'READY',
          current: undefined,
        });
      });

      it('issues increasing fencing tokens and refuses a release by a stale holder', async () => {
        const store = await open();
        const first = await store.acquireLock('load:m', 100);
        assert.ok(first);
        assert.equal(first.scope, implementation.backend === 'redis' ? 'shared' : 'local');
        assert.equal(await store.acquireLock('load:m', 100), null, 'held lock is exclusive');
        await sleep(150);
        const second = await store.acquireLock('load:m', 1_000);
        assert.ok(second);
        assert.ok(second.token > first.token, `${second.token} > ${first.token}`);
        assert.equal(await first.release(), false, 'expired holder cannot release');
        assert.equal(await first.extend(1_000), false, 'expired holder cannot extend');
        assert.equal(await store.acquireLock('load:m', 100), null, 'second holder still holds it');
        assert.equal(await second.release(), true);
        const third = await store.acquireLock('load:m', 100);
        assert.ok(third && third.token > second.token);
        await third.release();
      });

      it('keeps an extended lock past its original TTL', async () => {
        const store = await open();
        const lock = await store.acquireLock('load:n', 100);
        assert.ok(lock);
        await sleep(50);
        assert.equal(await lock.extend(400), true);
        await sleep(100);
        assert.equal(await store.acquireLock('load:n', 100), null);
        assert.equal(await lock.release(), true);
      });

      it('remembers a load failure until its backoff ends, or until cleared', async () => {
        const store = await open();
        await store.recordLoadFailure({
          model: 'm',
          version: '',
          server: 's1',
          reason: 'out of memory',
          code: 'UPSTREAM_UNAVAILABLE',
          backoffMs: 120,
        });
        assert.equal(store.snapshot().loadFailure('m', '')?.reason, 'out of memory');
        await waitUntil(
          () => store.snapshot().loadFailure('m', '') === undefined,
          500,
          'backoff end',
        );
        await store.recordLoadFailure({
          model: 'm',
          version: '',
          server: 's1',
          reason: 'again',
          code: 'UPSTREAM_UNAVAILABLE',
          backoffMs: 10_000,
        });
        await store.clearLoadFailure('m', '');
        assert.equal(store.snapshot().loadFailure('m', ''), undefined);
      });

      it('reports its backend as up', async () => {
        const store = await open();
        assert.deepEqual(store.health(), { backend: implementation.backend, up: true });
      });
    });
  }
});
