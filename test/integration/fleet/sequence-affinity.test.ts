import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  postJson,
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { inferUrl, simpleWithParameters } from './support';

function inferCounts(fakes: readonly FakeTriton[]): number[] {
  return fakes.map((f) => f.callCount('ModelInfer'));
}

function delta(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]!);
}

describe('stateful sequences across the fleet (fake Tritons over real gRPC)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  beforeEach(async () => {
    fakes = await startFakes(3);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      TRITON_HEALTH_INTERVAL_MS: '100',
      BREAKER_VOLUME_THRESHOLD: '3',
      BREAKER_RESET_TIMEOUT_MS: '500',
    });
    await waitFor(() => proxy!.proxy.fleet.readyCount() === 3, 3000, 'three ready servers');
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  async function step(sequenceId: number, flags: { start?: boolean; end?: boolean } = {}) {
    const parameters: Record<string, unknown> = { sequence_id: sequenceId };
    if (flags.start) parameters.sequence_start = true;
    if (flags.end) parameters.sequence_end = true;
    return postJson(inferUrl(proxy!.url), simpleWithParameters(parameters));
  }

  it('sends every request of a sequence to the server that got its start, however sequences interleave', async () => {
    const sequences = [101, 102, 103, 104, 105, 106];
    const homes = new Map<number, number>();
    for (const id of sequences) {
      const before = inferCounts(fakes);
      const res = await step(id, { start: true });
      assert.equal(res.status, 200);
      homes.set(
        id,
        delta(inferCounts(fakes), before).findIndex((n) => n === 1),
      );
    }
    // Interleave the sequences (and unrelated requests) so the balancer has every reason to move them.
    for (let round = 0; round < 8; round++) {
      for (const id of sequences) {
        const before = inferCounts(fakes);
        const res = await step(id, { end: round === 7 });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        const moved = delta(inferCounts(fakes), before);
        const expected = [0, 0, 0];
        expected[homes.get(id)!] = 1;
        assert.deepEqual(
          moved,
          expected,
          `sequence ${id} step ${round + 1} stays on t${homes.get(id)}`,
        );
      }
    }
    const lastRequest = fakes[homes.get(106)!]!.lastRequest!;
    assert.ok(
      lastRequest.request.parameters?.sequence_id !== undefined,
      'sequence_id reaches Triton',
    );
    console.log(`      sequences: ${sequences.map((id) => `${id}->t${homes.get(id)}`).join(' ')}`);
  });

  it('fails the next request of a sequence whose server died instead of moving it, and lets a new sequence start elsewhere', async () => {
    const id = 7;
    const before = inferCounts(fakes);
    assert.equal((await step(id, { start: true })).status, 200);
    const home = delta(inferCounts(fakes), before).findIndex((n) => n === 1);
    assert.equal((await step(id)).status, 200);

    fakes[home]!.kill();
    const others = fakes.filter((_, i) => i !== home);
    const othersBefore = inferCounts(others);
    const res = await step(id);
    assert.equal(res.status, 503);
    assert.equal(res.json.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(
      res.json.error as string,
      new RegExp(`t${home}`),
      'the error names the server that held the sequence',
    );
    assert.deepEqual(
      delta(inferCounts(others), othersBefore),
      [0, 0],
      'not silently moved to another server',
    );

    // Still an error once the fleet knows the server is down: the sequence's state is gone.
    await waitFor(() => !proxy!.proxy.fleet.get(`t${home}`)!.ready, 2000, 'server marked down');
    const again = await step(id);
    assert.equal(again.status, 503);
    assert.match(again.json.error as string, /sequence/);
    assert.deepEqual(delta(inferCounts(others), othersBefore), [0, 0]);

    // The client restarts the sequence: it lands on a live server and sticks there.
    const restarted = await step(id, { start: true });
    assert.equal(restarted.status, 200);
    const moved = delta(inferCounts(others), othersBefore);
    assert.equal(
      moved.reduce((a, b) => a + b, 0),
      1,
    );
    assert.equal((await step(id, { end: true })).status, 200);
    assert.deepEqual(
      delta(inferCounts(others), othersBefore),
      moved.map((n) => n * 2),
    );
  });
});
