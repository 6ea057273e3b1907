import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { percentile, runLoad, sleep, type Sample } from './support';

function failures(samples: readonly Sample[]): string[] {
  return samples.filter((s) => s.status !== 200).map((s) => `${s.status} ${s.body ?? ''}`);
}

describe('failure detection on the path that carries inference (fake Tritons over real gRPC)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  async function start(count: number, env: Record<string, string>): Promise<TestProxy> {
    fakes = await startFakes(count);
    proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes), ...env });
    await waitFor(() => proxy!.proxy.fleet.readyCount() === count, 5000, `${count} ready`);
    return proxy;
  }

  it('cuts a stuck attempt at TRITON_ATTEMPT_TIMEOUT_MS and answers from another server, long before the deadline', async () => {
    // Health checks far apart: only the attempt timeout can save these requests.
    const { url } = await start(2, {
      TRITON_ATTEMPT_TIMEOUT_MS: '300',
      TRITON_REQUEST_TIMEOUT_MS: '10000',
      TRITON_HEALTH_INTERVAL_MS: '60000',
      BREAKER_VOLUME_THRESHOLD: '1000',
    });
    fakes[1]!.hang(true);
    const samples = await runLoad({ url, clients: 4, durationMs: 1500 });
    fakes[1]!.hang(false);
    const caught = fakes[1]!.callCount('ModelInfer');

    assert.deepEqual(failures(samples), [], 'every request answered 200');
    assert.ok(caught > 0, 'some requests were sent to the hung server');
    const slowest = Math.max(...samples.map((s) => s.latencyMs));
    // 300 ms attempt + retry; generous for a loaded machine, and far under the 10 s deadline.
    assert.ok(slowest < 5000, `slowest ${slowest.toFixed(0)} ms`);
    console.log(
      `      attempt timeout 300 ms: ${samples.length} requests, ${caught} caught by the hung server, ` +
        `p99 ${percentile(
          samples.map((s) => s.latencyMs),
          99,
        ).toFixed(0)} ms, max ${slowest.toFixed(0)} ms, 0 errors`,
    );
  });

  it('does not take back calls from a server that is slow but still answering when its health check times out', async () => {
    const { url, proxy: p } = await start(1, {
      TRITON_HEALTH_INTERVAL_MS: '100',
      TRITON_CONTROL_TIMEOUT_MS: '200',
      TRITON_REQUEST_TIMEOUT_MS: '10000',
    });
    // Overload: ServerReady answers after the control timeout, inference keeps completing.
    fakes[0]!.setLatency((rpc) => (rpc === 'ServerReady' ? 400 : rpc === 'ModelInfer' ? 150 : 0));
    const samples = await runLoad({ url, clients: 4, durationMs: 1500 });
    fakes[0]!.setLatency(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();

    // Requests sent after it was marked not ready get 503; none sent to it may be thrown away.
    const taken = /Triton server 't0' stopped answering/;
    assert.deepEqual(
      failures(samples).filter((f) => taken.test(f)),
      [],
      'no in-flight call was abandoned',
    );
    assert.doesNotMatch(metrics, /upstream_attempts_total\{server="t0",outcome="UNAVAILABLE"\}/);
    await waitFor(() => p.fleet.get('t0')!.ready, 3000, 't0 ready again');
  });

  it('puts a restarted server back into rotation within about a second, not at the next health interval', async () => {
    const { proxy: p } = await start(2, {
      TRITON_HEALTH_INTERVAL_MS: '4000',
      TRITON_CONTROL_TIMEOUT_MS: '500',
    });
    const t1 = p.fleet.get('t1')!;
    fakes[1]!.kill();
    await waitFor(() => !t1.ready, 6000, 't1 marked down by a health check');
    await sleep(1500);
    const restartedAt = performance.now();
    await fakes[1]!.restart();
    await waitFor(() => t1.ready, 4000, 't1 ready again');
    const backMs = performance.now() - restartedAt;
    // The 4 s health interval would take up to 4 s; re-probes are at most 1 s apart.
    // 3 s leaves room for a loaded machine while still proving the point.
    assert.ok(backMs < 3000, `back in rotation after ${backMs.toFixed(0)} ms`);
    console.log(
      `      restarted server ready again after ${backMs.toFixed(0)} ms (interval 4000 ms)`,
    );
  });
});
