import { strict as assert } from 'node:assert';
import {
  MemoryModelStateStore,
  Reconciler,
  statusFromTriton,
  type ReconcileOutcome,
  type RepositoryIndexEntry,
} from '../../../src/model-state';
import { captureLogger, sleep, waitUntil } from './support';

describe('Reconciler (repository index to shared state)', () => {
  let store: MemoryModelStateStore;
  let logger: ReturnType<typeof captureLogger>;
  let index: Map<string, RepositoryIndexEntry[] | Error>;
  let reconciler: Reconciler;
  let outcomes: Array<[ReconcileOutcome, number]>;

  const source = {
    servers: () => [...index.keys()],
    repositoryIndex: async (server: string) => {
      await sleep(1);
      const answer = index.get(server);
      if (answer instanceof Error) throw answer;
      return answer ?? [];
    },
  };

  beforeEach(() => {
    logger = captureLogger();
    store = new MemoryModelStateStore({ entryTtlMs: 10_000, logger });
    index = new Map();
    outcomes = [];
    reconciler = new Reconciler({
      store,
      source,
      intervalMs: 100,
      fetchTimeoutMs: 50,
      logger,
      metrics: { onReconcile: (outcome, changes) => outcomes.push([outcome, changes]) },
    });
  });

  afterEach(async () => {
    reconciler.stop();
    await store.close();
  });

  it("maps Triton's state strings onto model statuses", () => {
    assert.equal(statusFromTriton('READY'), 'READY');
    assert.equal(statusFromTriton('LOADING'), 'LOADING');
    assert.equal(statusFromTriton('UNLOADING'), 'UNLOADING');
    assert.equal(statusFromTriton('UNAVAILABLE'), 'UNAVAILABLE');
    assert.equal(statusFromTriton(''), 'UNAVAILABLE');
  });

  it('writes each server index as that server truth and counts the changes', async () => {
    index.set('s1', [
      { name: 'resnet', version: '1', state: 'READY', reason: '' },
      { name: 'bert', version: '', state: 'UNAVAILABLE', reason: 'unloaded' },
    ]);
    index.set('s2', [{ name: 'resnet', version: '1', state: 'LOADING', reason: '' }]);
    const result = await reconciler.runOnce();
    assert.deepEqual(result.reconciled.sort(), ['s1', 's2']);
    assert.equal(result.changes, 3);
    const snapshot = store.snapshot();
    assert.deepEqual(snapshot.readyServers('resnet', '1'), ['s1']);
    assert.deepEqual(snapshot.loadingServers('resnet'), ['s2']);
    assert.equal(snapshot.entry('s1', 'bert', '')?.reason, 'unloaded');
    const again = await reconciler.runOnce();
    assert.equal(again.changes, 0, 'an unchanged index changes nothing');
    assert.deepEqual(reconciler.stats(), { runs: 2, changes: 3, failures: 0 });
    assert.deepEqual(outcomes.map(([outcome]) => outcome).sort(), ['ok', 'ok', 'ok', 'ok']);
  });

  it('notices a model unloaded behind the proxy back', async () => {
    index.set('s1', [{ name: 'resnet', version: '1', state: 'READY', reason: '' }]);
    await reconciler.runOnce();
    index.set('s1', [{ name: 'resnet', version: '', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    const result = await reconciler.runOnce();
    assert.equal(result.changes, 2);
    assert.deepEqual(store.snapshot().readyServers('resnet'), []);
    assert.equal(store.snapshot().isKnown('resnet'), true);
  });

  it('keeps the last known state of a server whose index cannot be read, marked stale, warning once', async () => {
    const stale: Array<[string, boolean]> = [];
    const watched = new Reconciler({
      store,
      source,
      intervalMs: 100,
      fetchTimeoutMs: 50,
      logger,
      metrics: { onIndexStale: (server, isStale) => stale.push([server, isStale]) },
    });
    index.set('s1', [
      { name: 'a', version: '1', state: 'READY', reason: '' },
      { name: 'b', version: '1', state: 'READY', reason: '' },
    ]);
    await watched.runOnce();
    index.set('s1', new Error('connect ECONNREFUSED 10.0.0.1:8001'));
    const first = await watched.runOnce();
    await watched.runOnce();
    assert.deepEqual(first.failed, ['s1']);
    assert.equal(first.changes, 0, 'a failed read changes nothing');
    assert.deepEqual(store.snapshot().readyServers('a'), ['s1']);
    assert.deepEqual(store.snapshot().readyServers('b'), ['s1']);
    assert.deepEqual(watched.staleServers(), ['s1']);
    assert.deepEqual(stale, [
      ['s1', true],
      ['s1', true],
    ]);
    assert.equal(logger.at('warn').length, 1);

    index.set('s1', [{ name: 'a', version: '1', state: 'READY', reason: '' }]);
    await watched.runOnce();
    assert.deepEqual(store.snapshot().readyServers('a'), ['s1']);
    assert.equal(store.snapshot().isKnown('b'), false, 'the successful read is the truth again');
    assert.deepEqual(watched.staleServers(), []);
    assert.deepEqual(stale.at(-1), ['s1', false]);
    assert.deepEqual(logger.at('info'), ['repository index readable again']);
  });

  it("keeps a stale server's entries alive past their TTL while its index reads keep failing", async () => {
    const short = new MemoryModelStateStore({ entryTtlMs: 200, logger });
    const keeping = new Reconciler({
      store: short,
      source,
      intervalMs: 50,
      fetchTimeoutMs: 50,
      logger,
    });
    try {
      index.set('s1', [{ name: 'a', version: '1', state: 'READY', reason: '' }]);
      await keeping.runOnce();
      index.set('s1', new Error('index timed out'));
      const end = Date.now() + 600;
      while (Date.now() < end) {
        await keeping.runOnce();
        await sleep(40);
      }
      assert.deepEqual(short.snapshot().readyServers('a'), ['s1'], 'three TTLs later, still READY');
    } finally {
      await short.close();
    }
  });

  it('lets a NOT_FOUND seen on the request path override the kept state', async () => {
    index.set('s1', [{ name: 'a', version: '1', state: 'READY', reason: '' }]);
    await reconciler.runOnce();
    index.set('s1', new Error('index timed out'));
    await reconciler.runOnce();
    await store.markStatus('s1', 'a', '1', 'UNAVAILABLE', 'NOT_FOUND on infer');
    await reconciler.runOnce();
    assert.equal(store.snapshot().status('s1', 'a', '1'), 'UNAVAILABLE');
  });

  it('treats an index call that never answers as a failure after the fetch timeout', async () => {
    const hanging = new Reconciler({
      store,
      source: { servers: () => ['s1'], repositoryIndex: () => new Promise(() => undefined) },
      intervalMs: 1_000,
      fetchTimeoutMs: 30,
      logger,
    });
    const result = await hanging.runOnce();
    assert.deepEqual(result.failed, ['s1']);
    assert.match(
      logger.lines.find((line) => line.level === 'warn')?.meta?.error as string,
      /30 ms/,
    );
  });

  it('keeps a mark written while the index was being read', async () => {
    let release: () => void = () => undefined;
    const slow = new Reconciler({
      store,
      source: {
        servers: () => ['s1'],
        repositoryIndex: () =>
          new Promise<RepositoryIndexEntry[]>((resolve) => (release = () => resolve([]))),
      },
      intervalMs: 1_000,
      logger,
    });
    const run = slow.runOnce();
    await sleep(3);
    await store.markStatus('s1', 'fresh', '', 'LOADING', 'load started meanwhile');
    release();
    await run;
    assert.equal(store.snapshot().status('s1', 'fresh'), 'LOADING');
  });

  it('runs on its interval once started and stops when told', async () => {
    index.set('s1', []);
    reconciler.start();
    await waitUntil(() => reconciler.stats().runs >= 2, 1_000, 'two interval runs');
    reconciler.stop();
    const runs = reconciler.stats().runs;
    await sleep(250);
    assert.ok(reconciler.stats().runs <= runs + 1);
  });
});
