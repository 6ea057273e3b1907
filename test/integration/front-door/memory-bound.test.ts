import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import { waitFor } from '../../helpers/proxy-harness';
import { ensureBuilt, freePort, spawnProxy, type ProxyProcess } from '../lifecycle/support';

const MiB = 1024 * 1024;

/** Peak and current resident memory of a process, from /proc (Linux). */
function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { peakMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}

/** POSTs one binary-extension upload; resolves with the status (or the error code when none came). */
function upload(
  url: string,
  header: Buffer,
  tensor: Buffer,
): Promise<{ status: number | string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number | string) => {
      if (settled) return;
      settled = true;
      resolve({ status, ms: performance.now() - started });
    };
    const req = request(
      `${url}/v2/models/identity/infer`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': header.length + tensor.length,
          'inference-header-content-length': header.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
        res.on('error', () => done(res.statusCode ?? 0));
      },
    );
    // An early answer (429 before the body is read) may reset the upload: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
    req.write(header);
    req.end(tensor);
  });
}

describe('front door: memory bounded before it is spent', function () {
  this.timeout(60_000);
  let fake: FakeTriton;
  let proxy: ProxyProcess;

  before(async () => {
    ensureBuilt();
    fake = await startFakeTriton({ host: '127.0.0.1', port: 0, name: 'mem' });
    proxy = spawnProxy(await freePort(), {
      TRITON_SERVERS: `t0=${fake.address}`,
      MAX_INFLIGHT_BYTES: String(64 * MiB),
      LOG_LEVEL: 'error',
    });
    await waitFor(
      async () => (await fetch(`${proxy.url}/health/ready`).catch(() => undefined))?.status === 200,
      15_000,
      'the proxy process to be ready',
    );
  });
  after(async () => {
    proxy.child.kill('SIGTERM');
    await proxy.exited;
    await fake.stop({ graceMs: 100 });
  });

  it('admits what fits in MAX_INFLIGHT_BYTES, refuses the excess at once, and keeps peak RSS bounded under 16 concurrent 32 MiB uploads', async () => {
    const elements = (32 * MiB) / 4;
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          {
            name: 'INPUT0',
            datatype: 'FP32',
            shape: [1, elements],
            parameters: { binary_data_size: 32 * MiB },
          },
        ],
        outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
      }),
    );
    const tensor = Buffer.alloc(32 * MiB, 1);
    const before = memoryOf(proxy.child.pid!);
    const results = await Promise.all(
      Array.from({ length: 16 }, () => upload(proxy.url, header, tensor)),
    );
    const after = memoryOf(proxy.child.pid!);
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    const refusedMs = refused.map((r) => r.ms).sort((a, b) => a - b);
    console.log(
      `      16 x 32 MiB, MAX_INFLIGHT_BYTES=64 MiB: ${ok.length} served, ${refused.length} refused (${[...new Set(refused.map((r) => r.status))].join('/')}, median ${refusedMs[Math.floor(refusedMs.length / 2)]?.toFixed(0)} ms); proxy RSS ${before.rssMiB.toFixed(0)} MiB before, peak ${after.peakMiB.toFixed(0)} MiB`,
    );
    assert.ok(ok.length >= 1, 'uploads that fit are served');
    assert.ok(ok.length <= 4, `${ok.length} served: only what fits the byte budget at a time`);
    assert.ok(
      refused.every(
        (r) =>
          r.status === 429 || r.status === 503 || r.status === 'ECONNRESET' || r.status === 'EPIPE',
      ),
      `refusals: ${refused.map((r) => r.status).join(',')}`,
    );
    assert.ok(
      refused.some((r) => r.status === 429),
      'the excess is answered 429',
    );
    // 16 x 32 MiB = 512 MiB if bodies were read before admission; the budget allows 64 MiB of
    // bodies plus their answers and copies. A generous bound, not a benchmark.
    assert.ok(
      after.peakMiB - before.rssMiB < 400,
      `peak grew by ${(after.peakMiB - before.rssMiB).toFixed(0)} MiB`,
    );
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    assert.match(metrics, /triton_proxy_rejections_total\{reason="bytes_full"\} [1-9]/);
  });
});
