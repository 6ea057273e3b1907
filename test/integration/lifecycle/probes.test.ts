import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { scrape, valueOf } from './support';

async function probe(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

describe('Kubernetes probes with the Triton fleet going down and coming back', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  it('keeps liveness 200 with every Triton down, turns readiness 503 with the reason, and 200 again when one returns', async () => {
    fakes = await startFakes(2);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      TRITON_HEALTH_INTERVAL_MS: '100',
      TRITON_CONTROL_TIMEOUT_MS: '300',
    });
    const { url } = proxy;
    assert.deepEqual(await probe(`${url}/health/ready`), { status: 200, body: { ready: true } });
    assert.equal((await probe(`${url}/health/live`)).status, 200);

    for (const f of fakes) f.kill();
    let liveWhileDown = 0;
    await waitFor(
      async () => {
        assert.equal((await probe(`${url}/health/live`)).status, 200);
        liveWhileDown++;
        return (await probe(`${url}/health/ready`)).status === 503;
      },
      3000,
      'readiness 503 with both servers killed',
    );
    const down = await probe(`${url}/health/ready`);
    assert.deepEqual(down.body, { ready: false, reasons: ['no Triton server is ready'] });
    assert.deepEqual(await probe(`${url}/health/live`), { status: 200, body: { live: true } });
    // KServe's own endpoint keeps Triton's semantics: not ready is 400, aggregated over the fleet.
    assert.equal((await fetch(`${url}/v2/health/ready`)).status, 400);
    const m = await scrape(url);
    assert.equal(valueOf(m, 'triton_proxy_ready'), 0);
    assert.equal(valueOf(m, 'triton_proxy_servers_ready'), 0);

    await fakes[1]!.restart();
    await waitFor(
      async () => (await probe(`${url}/health/ready`)).status === 200,
      3000,
      'readiness 200 with one server back',
    );
    assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
    assert.equal(valueOf(await scrape(url), 'triton_proxy_servers_ready'), 1);
    assert.ok(liveWhileDown >= 1);
  });

  it('turns readiness 503 at once when shutdown starts, while liveness stays 200', async () => {
    fakes = await startFakes(1);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      SHUTDOWN_DELAY_MS: '300',
    });
    const { url, proxy: p } = proxy;
    const shutdown = p.shutdown();
    const ready = await probe(`${url}/health/ready`);
    assert.deepEqual(ready, { status: 503, body: { ready: false, reasons: ['shutting down'] } });
    assert.equal((await probe(`${url}/health/live`)).status, 200);
    await shutdown;
  });
});
