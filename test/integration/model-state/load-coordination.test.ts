import { strict as assert } from 'node:assert';
import { isProxyError, type ProxyError } from '../../../src/errors';
import {
  LoadCoordinator,
  type LoadCoordinatorOptions,
  type LoadOutcome,
  type RedisModelStateStore,
} from '../../../src/model-state';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { captureLogger, sleep, uniquePrefix, waitUntil } from '../../unit/model-state/support';
import { startRedisStore } from './support';

type Load = LoadCoordinatorOptions['load'];

describe('load on demand coordinated by two replicas over Redis', () => {
  let redis: RedisServerHandle;
  let prefix: string;
  const stores: RedisModelStateStore[] = [];
  const coordinators: LoadCoordinator[] = [];
  const outcomes: LoadOutcome[] = [];

  before(async () => {
    redis = await startRedisServer();
  });

  after(async () => {
    if (redis.canRestart) await redis.stop();
  });

  beforeEach(() => {
    prefix = uniquePrefix('load');
    outcomes.length = 0;
  });

  afterEach(async () => {
    for (const coordinator of coordinators.splice(0)) coordinator.close();
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  async function replica(load: Load, overrides: Partial<LoadCoordinatorOptions> = {}) {
    const { store } = await startRedisStore(redis.url, prefix);
    stores.push(store);
    const coordinator = new LoadCoordinator({
      store,
      chooseServer: () => 'triton-1',
      load,
      lockTtlMs: 300,
      failureBackoffMs: 400,
      loadTimeoutMs: 5_000,
      pollIntervalMs: 50,
      logger: captureLogger(),
      metrics: { onLoad: (outcome) => outcomes.push(outcome) },
      ...overrides,
    });
    coordinators.push(coordinator);
    return { store, coordinator };
  }

  function count(outcome: LoadOutcome): number {
    return outcomes.filter((seen) => seen === outcome).length;
  }

  it('loads once for 50 concurrent callers split across both replicas and serves them all', async () => {
    const calls: string[] = [];
    const load: Load = async (server, model) => {
      calls.push(`${server}/${model}`);
      await sleep(100);
    };
    const a = await replica(load);
    const b = await replica(load);
    const deadline = Date.now() + 5_000;
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 === 0 ? a : b).coordinator.ensureLoaded('llama', '', { deadline }),
      ),
    );
    const elapsed = performance.now() - started;
    console.log(
      `      50 callers on 2 replicas: ${calls.length} load RPC, all served in ${elapsed.toFixed(0)} ms`,
    );
    assert.deepEqual(calls, ['triton-1/llama']);
    assert.deepEqual(new Set(results), new Set(['triton-1']));
    assert.equal(count('started'), 1);
    assert.equal(count('succeeded'), 1);
    assert.equal(count('coalesced'), 49);
    for (const { store } of [a, b]) {
      assert.deepEqual(store.snapshot().readyServers('llama'), ['triton-1']);
    }
  });

  it('reports a failed load to every waiter on both replicas and fails fast until the backoff ends', async () => {
    let calls = 0;
    let failNext = true;
    const load: Load = async () => {
      calls += 1;
      await sleep(100);
      if (failNext) throw new Error('CUDA out of memory');
    };
    const a = await replica(load);
    const b = await replica(load);
    const deadline = Date.now() + 5_000;
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).coordinator.ensureLoaded('bert', '2', { deadline }),
      ),
    );
    assert.equal(calls, 1);
    for (const result of settled) {
      assert.equal(result.status, 'rejected');
      const error = result.reason as ProxyError;
      assert.ok(isProxyError(error));
      assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
      assert.match(
        error.message,
        /model 'bert' version 2 on server 'triton-1' failed: CUDA out of memory/,
      );
    }
    assert.equal(b.store.snapshot().status('triton-1', 'bert', '2'), 'UNAVAILABLE');

    for (const { coordinator } of [a, b]) {
      const before = performance.now();
      await assert.rejects(coordinator.ensureLoaded('bert', '2', { deadline }), (error) => {
        assert.ok(isProxyError(error));
        assert.match(error.message, /CUDA out of memory/);
        assert.ok((error.retryAfterSeconds ?? 0) >= 1);
        return true;
      });
      assert.ok(performance.now() - before < 20, 'fails fast within the backoff');
    }
    assert.equal(calls, 1, 'no retry within the backoff');

    failNext = false;
    await waitUntil(() => b.store.snapshot().loadFailure('bert', '2') === undefined, 1_000);
    assert.equal(await b.coordinator.ensureLoaded('bert', '2', { deadline }), 'triton-1');
    assert.equal(calls, 2, 'one new load once the backoff ended');
    await waitUntil(() => a.store.snapshot().readyServers('bert', '2').length === 1, 1_000);
  });

  it('takes over a load whose replica died holding the lock, once the lock TTL has passed', async () => {
    const hung: Load = () => new Promise<void>(() => undefined);
    const dying = await replica(hung);
    let survivorLoads = 0;
    const survivor = await replica(async () => {
      survivorLoads += 1;
      await sleep(20);
    });
    const abandoned = dying.coordinator.ensureLoaded('t5', '', { deadline: Date.now() + 10_000 });
    abandoned.catch(() => undefined);
    await waitUntil(
      () => survivor.store.snapshot().loadingServers('t5').length === 1,
      1_000,
      'LOADING published',
    );
    // The replica dies: its connection to Redis is gone, so its lock and
    // LOADING entry are no longer renewed.
    await dying.store.close();
    const diedAt = performance.now();
    const server = await survivor.coordinator.ensureLoaded('t5', '', {
      deadline: Date.now() + 5_000,
    });
    const tookOverAfter = performance.now() - diedAt;
    console.log(
      `      survivor took over ${tookOverAfter.toFixed(0)} ms after the loader died (lock TTL 300 ms)`,
    );
    assert.equal(server, 'triton-1');
    assert.equal(survivorLoads, 1);
    assert.ok(tookOverAfter < 1_500, `took ${tookOverAfter} ms`);
    assert.deepEqual(survivor.store.snapshot().readyServers('t5'), ['triton-1']);
  });

  it('keeps waiting on another replica while it renews its lock, and answers MODEL_NOT_READY at the deadline', async () => {
    let finish: () => void = () => undefined;
    const slow: Load = () => new Promise<void>((resolve) => (finish = resolve));
    const loader = await replica(slow);
    const waiter = await replica(async () => {
      throw new Error('the waiter must not load');
    });
    const loading = loader.coordinator.ensureLoaded('vit', '', { deadline: Date.now() + 10_000 });
    await waitUntil(() => waiter.store.snapshot().loadingServers('vit').length === 1, 1_000);
    // Three lock TTLs: only the loader's heartbeat keeps the waiter from taking over.
    const before = performance.now();
    await assert.rejects(
      waiter.coordinator.ensureLoaded('vit', '', { deadline: Date.now() + 900 }),
      (error) => {
        assert.ok(isProxyError(error));
        assert.equal(error.code, 'MODEL_NOT_READY');
        assert.equal(error.retryAfterSeconds, 1);
        return true;
      },
    );
    assert.ok(performance.now() - before >= 850);
    finish();
    assert.equal(await loading, 'triton-1');
    await waitUntil(() => waiter.store.snapshot().readyServers('vit').length === 1, 1_000);
    assert.equal(
      await waiter.coordinator.ensureLoaded('vit', '', { deadline: Date.now() + 1_000 }),
      'triton-1',
    );
  });
});
