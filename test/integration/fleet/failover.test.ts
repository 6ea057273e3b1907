import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import type { BreakerState } from '../../../src/resilience';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { percentile, runLoad, scrapeMetric, sleep, type Sample } from './support';

// Short intervals so each story plays out in a second or two. The control
// timeout leaves room for event-loop lag: fakes, proxy and clients share one
// process on a busy machine, and a health check that times out counts as a hang.
const FAST_FLEET = {
  TRITON_HEALTH_INTERVAL_MS: '100',
  TRITON_CONTROL_TIMEOUT_MS: '500',
  BREAKER_RESET_TIMEOUT_MS: '500',
  BREAKER_VOLUME_THRESHOLD: '3',
  // A short window forgets the successes from before a failure quickly.
  BREAKER_ROLLING_WINDOW_MS: '500',
  RETRY_MAX_ATTEMPTS: '3',
};

function failures(samples: readonly Sample[]): string[] {
  return samples.filter((s) => s.status !== 200).map((s) => `${s.status} ${s.body ?? ''}`);
}

describe('fleet failover under load (three fake Tritons over real gRPC)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  async function start(env: Record<string, string> = {}): Promise<TestProxy> {
    fakes = await startFakes(3);
    proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes), ...FAST_FLEET, ...env });
    await waitFor(() => proxy!.proxy.fleet.readyCount() === 3, 3000, 'three ready servers');
    return proxy;
  }

  it('keeps answering when a server is killed, opens its breaker, and sends it traffic again once it is back', async () => {
    // No ServerReady polling during the run (only the check at start): the
    // breaker alone must take the dead server out and bring it back, as it
    // does in production between two health checks (5 s apart by default).
    const { url, proxy: p } = await start({
      TRITON_REQUEST_TIMEOUT_MS: '2000',
      TRITON_HEALTH_INTERVAL_MS: '60000',
    });
    const t1 = p.fleet.get('t1')!;
    const victim = fakes[1]!;
    const transitions: Array<{ at: number; to: BreakerState }> = [];
    t1.breaker.onStateChange((_server, _from, to) =>
      transitions.push({ at: performance.now(), to }),
    );
    const wireAttempts = async (): Promise<number> =>
      (await scrapeMetric(url, 'triton_proxy_upstream_attempts_total', {
        server: 't1',
        outcome: 'ok',
      })) +
      (await scrapeMetric(url, 'triton_proxy_upstream_attempts_total', {
        server: 't1',
        outcome: 'UNAVAILABLE',
      }));
    // Connections up and code paths warm before anything is measured.
    await runLoad({ url, clients: 8, durationMs: 300 });

    let killedAt = Infinity;
    let restartedAt = Infinity;
    let sawOpenMetric = false;
    let attemptsAtOpen = 0;
    let attemptsBeforeRestart = 0;
    let probesWhileDown = 0;
    const chaos = (async () => {
      await sleep(1000);
      victim.kill();
      killedAt = performance.now();
      await waitFor(
        async () =>
          (sawOpenMetric =
            (await scrapeMetric(url, 'triton_proxy_breaker_state', { server: 't1' })) === 2),
        1500,
        't1 breaker open on /metrics',
      );
      attemptsAtOpen = await wireAttempts();
      const openedAt = performance.now();
      await sleep(700);
      attemptsBeforeRestart = await wireAttempts();
      probesWhileDown = transitions.filter((t) => t.to === 'half-open' && t.at >= openedAt).length;
      await victim.restart();
      restartedAt = performance.now();
    })();
    // Settled with the load, so a failure inside is reported, not left unhandled.
    const [samples] = await Promise.all([runLoad({ url, clients: 8, durationMs: 2600 }), chaos]);

    assert.deepEqual(failures(samples), [], 'no client-visible errors');
    assert.ok(sawOpenMetric, 'triton_proxy_breaker_state{server="t1"} reached 2');
    // While open, only the breaker's half-open probes reach the dead server.
    assert.ok(
      attemptsBeforeRestart - attemptsAtOpen <= probesWhileDown,
      `${attemptsBeforeRestart - attemptsAtOpen} calls reached t1 while open, ${probesWhileDown} probes`,
    );

    // Back: a half-open probe (it takes a request to make one) closes the
    // breaker, and the server carries its share again.
    const recovery: Sample[] = [];
    for (let i = 0; i < 20 && t1.breaker.state !== 'closed'; i++) {
      recovery.push(...(await runLoad({ url, clients: 2, durationMs: 200 })));
    }
    assert.equal(
      t1.breaker.state,
      'closed',
      `t1 breaker closed again (transitions ${transitions.map((t) => t.to).join(' ')})`,
    );
    assert.deepEqual(failures(recovery), []);
    const before = victim.callCount('ModelInfer');
    const after = await runLoad({ url, clients: 8, durationMs: 500 });
    assert.deepEqual(failures(after), []);
    const share = (victim.callCount('ModelInfer') - before) / after.length;
    assert.ok(
      share > 0.15,
      `restarted server takes its share again (got ${(share * 100).toFixed(0)}% of ${after.length})`,
    );
    assert.equal(await scrapeMetric(url, 'triton_proxy_breaker_state', { server: 't1' }), 0);

    const steady = samples.filter((s) => s.startedAt < killedAt).map((s) => s.latencyMs);
    const failover = samples
      .filter((s) => s.startedAt >= killedAt && s.startedAt < restartedAt)
      .map((s) => s.latencyMs);
    console.log(
      `      kill/restart: ${samples.length} requests, ${failures(samples).length} errors; ` +
        `p99 steady ${percentile(steady, 99).toFixed(1)} ms (p50 ${percentile(steady, 50).toFixed(1)}, n=${steady.length}), ` +
        `p99 failover ${percentile(failover, 99).toFixed(1)} ms (p50 ${percentile(failover, 50).toFixed(1)}, n=${failover.length}, max ${Math.max(...failover).toFixed(1)}); ` +
        `breaker ${transitions.map((t) => `${t.to}@+${(t.at - killedAt).toFixed(0)}`).join(' ')} ms after kill ` +
        `(restart @+${(restartedAt - killedAt).toFixed(0)}); t1 share after restart ${(share * 100).toFixed(0)}%`,
    );
  });

  it('finishes every request within its deadline through the other servers when one server hangs', async () => {
    const deadlineMs = 2000;
    const { url, proxy: p } = await start({ TRITON_REQUEST_TIMEOUT_MS: String(deadlineMs) });
    const hung = fakes[1]!;
    let callsWhenHung = 0;
    const chaos = (async () => {
      await sleep(500);
      callsWhenHung = hung.callCount('ModelInfer');
      hung.hang(true);
    })();
    const [samples] = await Promise.all([runLoad({ url, clients: 8, durationMs: 1500 }), chaos]);
    const caught = hung.callCount('ModelInfer') - callsWhenHung;
    hung.hang(false);

    assert.ok(caught > 0, 'some requests were sent to the server while it hung');
    assert.deepEqual(failures(samples), [], 'every request succeeded');
    const slowest = Math.max(...samples.map((s) => s.latencyMs));
    assert.ok(
      slowest < deadlineMs,
      `slowest request took ${slowest.toFixed(0)} ms, deadline ${deadlineMs} ms`,
    );
    assert.equal(p.fleet.get('t1')!.ready, false, 'the hung server is out of rotation');
    console.log(
      `      hang: ${samples.length} requests, 0 errors, ${caught} caught by the hung server and moved; ` +
        `p99 ${percentile(
          samples.map((s) => s.latencyMs),
          99,
        ).toFixed(1)} ms, max ${slowest.toFixed(0)} ms (deadline ${deadlineMs})`,
    );
  });

  it('shifts traffic away from a slow server', async () => {
    const { url } = await start();
    fakes[2]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 200 : 0));
    for (const f of fakes) f.resetCounters();
    const samples = await runLoad({ url, clients: 8, durationMs: 1200 });

    assert.deepEqual(failures(samples), []);
    const counts = fakes.map((f) => f.callCount('ModelInfer'));
    const total = counts.reduce((a, b) => a + b, 0);
    const shares = counts.map((c) => c / total);
    console.log(
      `      slow server: shares ${shares.map((x) => `${(x * 100).toFixed(1)}%`).join(' / ')} of ${total} (t2 +200 ms)`,
    );
    assert.ok(
      shares[2]! < 1 / 6,
      `slow server share ${(shares[2]! * 100).toFixed(1)}% is under half its fair third`,
    );
    assert.ok(
      Math.min(shares[0]!, shares[1]!) > 2 * shares[2]!,
      'each fast server carries more than twice as much',
    );
  });
});
