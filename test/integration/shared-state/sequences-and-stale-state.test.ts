import { strict as assert } from 'node:assert';
import { status } from '@grpc/grpc-js';
import type { FakeTriton } from '../../../src/fake-triton';
import { postJson, simpleRequest, type TestProxy } from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import {
  model,
  modelCalls,
  sleep,
  startFleet,
  startReplica,
  steadyStream,
  uniquePrefix,
} from './support';

const THREE_SERVERS = [() => [model('seq')], () => [model('seq')], () => [model('seq')]];

function step(
  url: string,
  sequenceId: number,
  flags: { start?: boolean; end?: boolean } = {},
): ReturnType<typeof postJson> {
  const parameters: Record<string, unknown> = { sequence_id: sequenceId };
  if (flags.start) parameters.sequence_start = true;
  if (flags.end) parameters.sequence_end = true;
  return postJson(`${url}/v2/models/seq/infer`, {
    ...simpleRequest(new Array<number>(16).fill(2), new Array<number>(16).fill(1)),
    parameters,
  });
}

function delta(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]!);
}

describe('replicas agree on sequences and survive unreadable repository indexes', () => {
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
    const a = await startReplica(fakes, { redisUrl: redis.url, prefix, replicaId: 'a', env });
    const b = await startReplica(fakes, { redisUrl: redis.url, prefix, replicaId: 'b', env });
    replicas.push(a, b);
    return [a, b];
  }

  it('sends every request of a sequence to one server when its requests alternate between two replicas', async () => {
    fakes = await startFleet(THREE_SERVERS);
    const [a, b] = await startPair();
    const urls = [a.url, b.url];
    const homes: number[] = [];
    // Twelve sequences, so the chance that hashing lands them all on one
    // server by luck (and the test could pass without affinity) is 3^-11.
    for (let id = 1001; id <= 1012; id++) {
      const before = modelCalls(fakes, 'ModelInfer', 'seq');
      for (let i = 0; i < 6; i++) {
        const res = await step(urls[i % 2]!, id, { start: i === 0, end: i === 5 });
        assert.equal(res.status, 200, JSON.stringify(res.json));
      }
      const moved = delta(modelCalls(fakes, 'ModelInfer', 'seq'), before);
      const home = moved.findIndex((n) => n > 0);
      assert.deepEqual(
        moved,
        moved.map((_, i) => (i === home ? 6 : 0)),
        `sequence ${id}: all six requests, through both replicas, on one server`,
      );
      homes.push(home);
    }
    assert.ok(new Set(homes).size > 1, `sequences spread over servers: ${homes.join(',')}`);
  });

  it('keeps a sequence on its server while its requests come within the idle timeout, for longer than the idle timeout in total', async () => {
    fakes = await startFleet([() => [model('seq')], () => [model('seq')]]);
    const [a] = await startPair({ SEQUENCE_IDLE_TIMEOUT_MS: '1500' });
    const ids = Array.from({ length: 8 }, (_, i) => 2001 + i);
    const homes = new Map<number, number>();
    for (const id of ids) {
      const before = modelCalls(fakes, 'ModelInfer', 'seq');
      assert.equal((await step(a.url, id, { start: true })).status, 200);
      homes.set(
        id,
        delta(modelCalls(fakes, 'ModelInfer', 'seq'), before).findIndex((n) => n === 1),
      );
    }
    // Requests every 0.5 s for 3 s: twice the idle timeout in total, never idle for it.
    for (let round = 0; round < 6; round++) {
      await sleep(500);
      for (const id of ids) {
        const before = modelCalls(fakes, 'ModelInfer', 'seq');
        const res = await step(a.url, id);
        assert.equal(res.status, 200, JSON.stringify(res.json));
        assert.equal(
          delta(modelCalls(fakes, 'ModelInfer', 'seq'), before)[homes.get(id)!],
          1,
          `sequence ${id} round ${round} stays on t${homes.get(id)}`,
        );
      }
    }
  });

  it('costs no 404 and no error while one server repository index fails for 30 reconcile intervals', async () => {
    fakes = await startFleet([() => [model('m')], () => [model('m')]]);
    // Reconcile every 100 ms with a 1 s TTL: 3 s of failures are 30 failed
    // reads and three TTLs, what 30 s would be at a 10x slower interval.
    const env = { RECONCILE_INTERVAL_MS: '100', STATE_TTL_MS: '1000' };
    const [a, b] = await startPair(env);
    fakes[0]!.failAlways({
      code: status.DEADLINE_EXCEEDED,
      rpc: 'RepositoryIndex',
      details: 'index read timed out',
    });
    const result = await steadyStream([a.url, b.url], 'm', 2, sleep(3000));
    fakes[0]!.clearFailures();

    assert.deepEqual(result.failures.slice(0, 5), [], `${result.failures.length} failures`);
    assert.ok(result.ok > 20, `${result.ok} answers`);
    for (const r of [a, b]) {
      assert.deepEqual(
        [...r.proxy.state.snapshot().readyServers('m')],
        ['t0', 't1'],
        'the failing server still counts as serving the model',
      );
    }
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /triton_proxy_reconcile_failures_total\{server="t0"\} [1-9]/);
    console.log(`      index failing 3 s: ${result.ok} answers, 0 errors`);
  });
});
