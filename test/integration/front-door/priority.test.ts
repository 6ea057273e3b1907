import assert from 'node:assert/strict';
import {
  httpRequest,
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  type HttpAnswer,
  type TestProxy,
} from '../../helpers/proxy-harness';
import type { FakeTriton } from '../../../src/fake-triton';
import { bearer, KeysFile } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);
const BODY = JSON.stringify(simpleRequest(A, A));
const SERVICE_MS = 300;
// A place at the back of the full queue waits 16 / 2 x 300 ms = 2.4 s; a high request about one
// service time. The deadline sits well between the two so a loaded machine does not flake it.
const DEADLINE_MS = 2000;

describe('front door: priority under overload', function () {
  let fake: FakeTriton;
  let keys: KeysFile;
  let proxy: TestProxy;

  before(async () => {
    [fake] = (await startFakes(1)) as [FakeTriton];
    keys = new KeysFile([
      { name: 'batch', key: 'k-low', scopes: ['infer'], priority: 'low' },
      { name: 'interactive', key: 'k-high', scopes: ['infer'], priority: 'high' },
    ]);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv([fake]),
      AUTH_KEYS_FILE: keys.path,
      MAX_INFLIGHT: '2',
      MAX_QUEUE: '16',
      QUEUE_TIMEOUT_MS: '10000',
      RETRY_MAX_ATTEMPTS: '1',
    });
    fake.setLatency((rpc) => (rpc === 'ModelInfer' ? SERVICE_MS : 0));
  });
  after(async () => {
    await proxy.close();
    await fake.stop({ graceMs: 100 });
    keys.remove();
  });

  const infer = (key: string, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
    httpRequest(`${proxy.url}/v2/models/simple/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(key), ...headers },
      body: BODY,
    });

  it('serves high-priority requests within their deadline while low-priority load saturates the proxy, shedding low ones', async () => {
    // 24 low-priority clients in a loop keep 2 slots busy and the 16-deep queue full:
    // a request at the back of that queue would wait past the deadline.
    let stop = false;
    const low: HttpAnswer[] = [];
    const lowClient = async (): Promise<void> => {
      while (!stop) {
        const answer = await infer('k-low');
        low.push(answer);
        // A refused batch client backs off a little, as a real one would, instead of spinning.
        if (answer.status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
    };
    const flood = Promise.all(Array.from({ length: 24 }, lowClient));
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(
      proxy.proxy.admission.stats().queued >= 8,
      'the queue is loaded before high traffic starts',
    );

    const high: Array<{ status: number; ms: number }> = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const answer = await infer('k-high', { 'x-request-timeout-ms': String(DEADLINE_MS) });
      high.push({ status: answer.status, ms: performance.now() - started });
    }
    stop = true;
    await flood;

    const p = (q: number) =>
      [...high.map((h) => h.ms)].sort((x, y) => x - y)[Math.ceil(q * high.length) - 1]!;
    const shed = low.filter((a) => a.status === 429).length;
    console.log(
      `      high: ${high.length} requests, p50 ${p(0.5).toFixed(0)} ms, max ${p(1).toFixed(0)} ms (deadline ${DEADLINE_MS} ms); low: ${low.length} requests, ${shed} shed with 429`,
    );
    assert.deepEqual(
      high.filter((h) => h.status !== 200),
      [],
      'every high-priority request was served',
    );
    assert.ok(shed > 0, 'low-priority requests were shed');
    assert.ok(
      low.every((a) => a.status === 200 || a.status === 429),
      'low-priority requests get 200 or 429, nothing else',
    );
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    assert.match(metrics, /triton_proxy_rejections_total\{reason="shed"\} [1-9]/);
  });
});
