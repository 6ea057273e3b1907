import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import { postJson, waitFor, type TestProxy } from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import {
  infer,
  model,
  modelCalls,
  sleep,
  startFleet,
  startReplica,
  statusView,
  steadyStream,
  sum,
  uniquePrefix,
} from './support';

describe('two proxy replicas sharing model state through Redis', () => {
  let redis: RedisServerHandle;
  let fakes: FakeTriton[] = [];
  const replicas: TestProxy[] = [];

  before(async () => {
    redis = await startRedisServer();
  });

  after(async () => {
    await redis.stop();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.close()));
    await Promise.all(fakes.splice(0).map((f) => f.stop({ graceMs: 100 })));
  });

  async function startPair(env: Record<string, string> = {}): Promise<[TestProxy, TestProxy]> {
    const prefix = uniquePrefix();
    const a = await startReplica(fakes, {
      redisUrl: redis.url,
      prefix,
      replicaId: 'replica-a',
      env,
    });
    const b = await startReplica(fakes, {
      redisUrl: redis.url,
      prefix,
      replicaId: 'replica-b',
      env,
    });
    replicas.push(a, b);
    return [a, b];
  }

  it('routes on replica B a model loaded through replica A, within a bounded time', async () => {
    fakes = await startFleet([() => [model('m', false)], () => [model('m', false)]]);
    const [a, b] = await startPair();
    // Loaded nowhere yet (and no load on demand): Triton's own 404 for an unloaded model.
    const notYet = await infer(b.url, 'm');
    assert.equal(notYet.status, 404, JSON.stringify(notYet.json));
    assert.match(String(notYet.json.error), /'m' has no available versions/);

    // Each replica's view, timestamped by its change listener rather than by polling.
    const readyAt = new Map<string, number>();
    const unsubscribe = [a, b].map((r) =>
      r.proxy.state.onChange((event) => {
        const id = r.proxy.state.replicaId;
        if (!readyAt.has(id) && event.snapshot.readyServers('m').includes('t1'))
          readyAt.set(id, performance.now());
      }),
    );
    const sent = performance.now();
    const load = await postJson(`${a.url}/v2/repository/models/m/load?server=t1`, {});
    const answered = performance.now();
    assert.equal(load.status, 200, JSON.stringify(load.json));
    let served: number | undefined;
    while (performance.now() - answered < 2000) {
      if ((await infer(b.url, 'm')).status === 200) {
        served = performance.now();
        break;
      }
    }
    for (const stop of unsubscribe) stop();
    assert.ok(served !== undefined, 'B served m within 2 s of the load answer');
    const onA = readyAt.get('replica-a');
    const onB = readyAt.get('replica-b');
    assert.ok(onA !== undefined && onB !== undefined, 'both snapshots show m READY on t1');
    const routedMs = served - answered;
    console.log(
      `      propagation A->B: load call ${(answered - sent).toFixed(1)} ms; B's snapshot READY ` +
        `${(onB - onA).toFixed(1)} ms after A's; B routed m ${routedMs.toFixed(1)} ms after A answered the load`,
    );
    assert.ok(onB - onA < 500, `B learned the load ${(onB - onA).toFixed(0)} ms after A`);
    assert.ok(routedMs < 1000, `B routed m ${routedMs.toFixed(0)} ms after the load answer`);
    assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'm'), [0, 1]);
    assert.deepEqual(modelCalls(fakes, 'RepositoryModelLoad', 'm'), [0, 1]);
  });

  it('loads a model once for 50 concurrent requests across both replicas and serves all of them', async () => {
    fakes = await startFleet([() => [model('m', false, 300)], () => [model('m', false, 300)]]);
    const [a, b] = await startPair({ LOAD_ON_DEMAND: 'true', LOAD_LOCK_TTL_MS: '3000' });
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => infer((i % 2 === 0 ? a : b).url, 'm')),
    );
    const totalMs = performance.now() - started;
    const loads = modelCalls(fakes, 'RepositoryModelLoad', 'm');
    console.log(
      `      load coalescing: ${sum(loads)} RepositoryModelLoad for 50 requests (per fake ${loads.join('/')}); ` +
        `${answers.filter((x) => x.status === 200).length}/50 answered 200 in ${totalMs.toFixed(0)} ms`,
    );
    assert.deepEqual(
      answers.filter((x) => x.status !== 200).map((x) => `${x.status} ${JSON.stringify(x.json)}`),
      [],
    );
    assert.equal(sum(loads), 1, `one load reached the fleet (${loads.join('/')})`);
    assert.equal(sum(modelCalls(fakes, 'ModelInfer', 'm')), 50);
    const [loadedOn] = a.proxy.state.snapshot().readyServers('m');
    assert.deepEqual(b.proxy.state.snapshot().readyServers('m'), [loadedOn]);
  });

  it('corrects the state when a server unloads a model behind its back, losing no request', async () => {
    fakes = await startFleet([() => [model('simple')], () => [model('simple')]]);
    // Reconciling rarely leaves the first NOT_FOUND as the only thing that can correct the state.
    const [a, b] = await startPair({ RECONCILE_INTERVAL_MS: '20000' });
    const unloaded = (async () => {
      await sleep(400);
      fakes[0]!.unloadModel('simple');
      const at = performance.now();
      // Every replica stops routing to t0, by the first NOT_FOUND or the next reconcile.
      await waitFor(
        () => [a, b].every((r) => !r.proxy.state.snapshot().readyServers('simple').includes('t0')),
        3000,
        'simple no longer READY on t0 on both replicas',
      );
      const correctedMs = performance.now() - at;
      const t0Calls = fakes[0]!.callCount('ModelInfer', 'simple');
      await sleep(500);
      return { correctedMs, t0Calls };
    })();
    const stream = await steadyStream([a.url, b.url], 'simple', 3, unloaded);
    const { correctedMs, t0Calls } = await unloaded;
    console.log(
      `      unload behind the back: state corrected on both replicas in ${correctedMs.toFixed(0)} ms; ${stream.ok} requests served`,
    );
    assert.deepEqual(stream.failures, []);
    assert.ok(stream.ok > 20, `a steady stream ran (${stream.ok} requests)`);
    // Calls after the correction that reached t0 failed there (NOT_FOUND); none may keep arriving.
    assert.equal(
      fakes[0]!.callCount('ModelInfer', 'simple'),
      t0Calls,
      't0 got no requests once the state said so',
    );
    for (const r of [a, b])
      assert.deepEqual(r.proxy.state.snapshot().readyServers('simple'), ['t1']);
  });

  it('does not block a model for the other replica when the replica loading it closes mid-load', async () => {
    fakes = await startFleet([() => [model('m', false, 1500)], () => [model('m', false, 1500)]]);
    const [a, b] = await startPair({
      LOAD_ON_DEMAND: 'true',
      LOAD_LOCK_TTL_MS: '600',
      TRITON_REQUEST_TIMEOUT_MS: '8000',
    });
    // A's own client loses its connection when A closes; only B's callers matter here.
    const first = infer(a.url, 'm').catch(() => undefined);
    await waitFor(
      () => b.proxy.state.snapshot().loadingServers('m').length > 0,
      2000,
      'B sees m LOADING',
    );
    await a.close();
    await first;
    const started = performance.now();
    const answer = await infer(b.url, 'm');
    const waitedMs = performance.now() - started;
    console.log(
      `      loader closed mid-load: B answered ${answer.status} after ${waitedMs.toFixed(0)} ms`,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.ok(waitedMs < 5000, `B was served within 5 s (${waitedMs.toFixed(0)} ms)`);
    assert.ok(
      statusView(b.proxy.state.snapshot()).some(
        (s) => s.startsWith('t') && s.endsWith('/m/1=READY'),
      ),
    );
  });
});
