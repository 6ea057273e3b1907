import { strict as assert } from 'node:assert';
import { ProxyError, isProxyError } from '../../../src/errors';
import {
  LoadCoordinator,
  MemoryModelStateStore,
  type LoadCoordinatorOptions,
  type LoadOutcome,
} from '../../../src/model-state';
import { captureLogger, sleep } from './support';

describe('LoadCoordinator on the in-memory store', () => {
  let store: MemoryModelStateStore;
  let outcomes: LoadOutcome[];
  let coordinator: LoadCoordinator;

  function make(overrides: Partial<LoadCoordinatorOptions>): LoadCoordinator {
    coordinator = new LoadCoordinator({
      store,
      chooseServer: () => 's1',
      load: async () => undefined,
      lockTtlMs: 300,
      failureBackoffMs: 300,
      loadTimeoutMs: 2_000,
      pollIntervalMs: 20,
      logger: captureLogger(),
      metrics: { onLoad: (outcome) => outcomes.push(outcome) },
      ...overrides,
    });
    return coordinator;
  }

  const soon = () => ({ deadline: Date.now() + 2_000 });

  beforeEach(() => {
    store = new MemoryModelStateStore({ entryTtlMs: 10_000, logger: captureLogger() });
    outcomes = [];
  });

  afterEach(async () => {
    coordinator?.close();
    await store.close();
  });

  it('answers at once with a server where the model is already READY, without loading', async () => {
    let loads = 0;
    make({ load: async () => void (loads += 1) });
    await store.markStatus('s7', 'resnet', '1', 'READY');
    assert.equal(await coordinator.ensureLoaded('resnet', '', soon()), 's7');
    assert.equal(loads, 0);
  });

  it('loads once for 50 concurrent callers, marking LOADING then READY', async () => {
    const seen: string[] = [];
    make({
      load: async (server, model, version, { token }) => {
        seen.push(`${server}/${model}/${version}`);
        assert.ok(token > 0);
        assert.deepEqual(store.snapshot().loadingServers(model), [server]);
        await sleep(30);
      },
    });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => coordinator.ensureLoaded('bert', '3', soon())),
    );
    assert.deepEqual(seen, ['s1/bert/3']);
    assert.deepEqual(new Set(results), new Set(['s1']));
    assert.deepEqual(store.snapshot().readyServers('bert', '3'), ['s1']);
    assert.equal(outcomes.filter((o) => o === 'coalesced').length, 49);
    assert.deepEqual(
      outcomes.filter((o) => o !== 'coalesced'),
      ['started', 'succeeded'],
    );
  });

  it('fails every waiter with the load error and fails fast until the backoff ends', async () => {
    let loads = 0;
    make({
      load: async () => {
        loads += 1;
        await sleep(20);
        if (loads === 1) throw new Error('model config invalid');
      },
    });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => coordinator.ensureLoaded('m', '', soon())),
    );
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.match(
        String((result.reason as Error).message),
        /model 'm' on server 's1' failed: model config invalid/,
      );
    }
    assert.equal(store.snapshot().status('s1', 'm', ''), 'UNAVAILABLE');
    await assert.rejects(coordinator.ensureLoaded('m', '', soon()), /model config invalid/);
    assert.equal(loads, 1);
    await sleep(320);
    assert.equal(await coordinator.ensureLoaded('m', '', soon()), 's1');
    assert.equal(loads, 2);
    assert.equal(store.snapshot().loadFailure('m', ''), undefined);
  });

  it('keeps a model-specific error code from the load (unknown model stays 404)', async () => {
    make({
      load: async () => {
        throw new ProxyError('MODEL_NOT_FOUND', "failed to load 'ghost': not in the repository");
      },
    });
    await assert.rejects(coordinator.ensureLoaded('ghost', '', soon()), (error) => {
      assert.ok(isProxyError(error));
      assert.equal(error.code, 'MODEL_NOT_FOUND');
      return true;
    });
  });

  it('answers MODEL_NOT_READY with Retry-After when the caller deadline passes first, while the load goes on', async () => {
    let finished = false;
    make({
      load: async () => {
        await sleep(150);
        finished = true;
      },
      retryAfterSeconds: 2,
    });
    const started = Date.now();
    await assert.rejects(
      coordinator.ensureLoaded('slow', '', { deadline: Date.now() + 50 }),
      (error) => {
        assert.ok(isProxyError(error));
        assert.equal(error.code, 'MODEL_NOT_READY');
        assert.equal(error.retryAfterSeconds, 2);
        return true;
      },
    );
    assert.ok(Date.now() - started < 120);
    assert.equal(await coordinator.ensureLoaded('slow', '', soon()), 's1');
    assert.equal(finished, true);
  });

  it('stops waiting when the caller aborts', async () => {
    make({ load: () => sleep(200) });
    const controller = new AbortController();
    const waiting = coordinator.ensureLoaded('m', '', { ...soon(), signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(waiting, /stopped waiting for model 'm'/);
  });

  it('answers UPSTREAM_UNAVAILABLE without remembering a failure when no server can take the load', async () => {
    const target: { server?: string } = {};
    make({ chooseServer: () => target.server });
    await assert.rejects(coordinator.ensureLoaded('m', '', soon()), (error) => {
      assert.ok(isProxyError(error));
      assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
      assert.match(error.message, /no server available to load model 'm'/);
      return true;
    });
    assert.equal(store.snapshot().loadFailure('m', ''), undefined);
    target.server = 's2';
    assert.equal(await coordinator.ensureLoaded('m', '', soon()), 's2');
  });

  it('counts a load that outlasts loadTimeoutMs as failed and aborts it', async () => {
    let aborted = false;
    make({
      loadTimeoutMs: 50,
      load: (_server, _model, _version, { signal }) =>
        new Promise<void>(() => signal.addEventListener('abort', () => (aborted = true))),
    });
    await assert.rejects(
      coordinator.ensureLoaded('big', '', soon()),
      /did not finish within 50 ms/,
    );
    assert.equal(aborted, true);
    assert.equal(store.snapshot().status('s1', 'big', ''), 'UNAVAILABLE');
    assert.deepEqual(
      outcomes.filter((o) => o !== 'coalesced'),
      ['started', 'failed'],
    );
  });

  it('stops a load whose lock renewal fails (fencing token no longer current) and publishes neither READY nor a failure', async () => {
    const acquire = store.acquireLock.bind(store);
    let renewals = 0;
    store.acquireLock = async (name, ttlMs) => {
      const lock = await acquire(name, ttlMs);
      if (lock === null) return null;
      // The first check passes; the first heartbeat finds the lock taken over.
      return { ...lock, extend: async (ms: number) => ++renewals < 2 && lock.extend(ms) };
    };
    let aborted = false;
    make({
      load: async (_server, _model, _version, { signal }) => {
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => resolve(), { once: true });
          setTimeout(resolve, 1_000);
        });
        aborted = signal.aborted;
      },
    });
    const error = await coordinator.ensureLoaded('gpt', '', soon()).catch((e: unknown) => e);
    assert.ok(isProxyError(error), String(error));
    assert.equal(error.code, 'MODEL_NOT_READY');
    await sleep(20);
    assert.ok(aborted, 'the load call was aborted');
    assert.deepEqual(store.snapshot().readyServers('gpt'), []);
    assert.equal(store.snapshot().loadFailure('gpt', ''), undefined, 'not a failure of the model');
    assert.ok(renewals >= 2);
  });

  it('does not publish READY for a load that finished after its lock was lost', async () => {
    const acquire = store.acquireLock.bind(store);
    let lost = false;
    store.acquireLock = async (name, ttlMs) => {
      const lock = await acquire(name, ttlMs);
      if (lock === null) return null;
      return { ...lock, extend: async (ms: number) => !lost && lock.extend(ms) };
    };
    make({
      load: async () => {
        lost = true;
      },
    });
    const error = await coordinator.ensureLoaded('gpt2', '', soon()).catch((e: unknown) => e);
    assert.ok(isProxyError(error));
    assert.equal(error.code, 'MODEL_NOT_READY');
    assert.deepEqual(store.snapshot().readyServers('gpt2'), []);
  });

  it('takes over a LOADING entry left stale by a loader that stopped renewing it', async () => {
    let loads = 0;
    make({ load: async () => void (loads += 1) });
    // Someone else's LOADING mark that is never refreshed (their replica died).
    await store.markStatus('s3', 'orphan', '', 'LOADING', 'loading by a replica that died');
    const started = Date.now();
    assert.equal(await coordinator.ensureLoaded('orphan', '', soon()), 's1');
    assert.ok(Date.now() - started >= 250, 'waited for the entry to go stale');
    assert.equal(loads, 1);
  });
});
