import { strict as assert } from 'node:assert';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import {
  ensureBuilt,
  freePort,
  SIMPLE_BODY,
  sleep,
  spawnProxy,
  type ProxyProcess,
} from './support';

interface Attempt {
  /** Date.now() at send and at the end (answer or error), to line up with the proxy's log times. */
  start: number;
  end: number;
  status?: number;
  error?: string;
}

/** How a client sees a closed listener: refused, or reset while the connection was being accepted. */
const CONNECTION_REFUSED = new Set(['ECONNREFUSED', 'ECONNRESET']);
const ACCEPT_RACE_MS = 50;

function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? String(err);
}

/** The time of the first JSON log line whose message starts with `prefix`. */
function loggedAt(output: string, prefix: string): number {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { message?: string; timestamp?: string };
    if (entry.message?.startsWith(prefix) === true && entry.timestamp !== undefined) {
      return Date.parse(entry.timestamp);
    }
  }
  throw new Error(`no log line '${prefix}' in:\n${output}`);
}

describe('graceful shutdown of the proxy process on SIGTERM under load', () => {
  const DELAY_MS = 1000;
  const GRACE_MS = 5000;
  let fake: FakeTriton;
  let proc: ProxyProcess | undefined;

  before(function () {
    this.timeout(120_000);
    ensureBuilt();
  });

  beforeEach(async () => {
    fake = await startFakeTriton({ host: '127.0.0.1', port: 0, name: 'shutdown' });
    fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 100 : 0));
  });

  afterEach(async () => {
    if (proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    proc = undefined;
    await fake.stop({ graceMs: 100 });
  });

  async function startReady(env: Record<string, string>): Promise<ProxyProcess> {
    const p = spawnProxy(await freePort(), {
      TRITON_SERVERS: `t0=${fake.address}`,
      TRITON_HEALTH_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      ...env,
    });
    proc = p;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const status = await fetch(`${p.url}/health/ready`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return p;
      if (Date.now() > deadline || p.child.exitCode !== null) {
        throw new Error(`proxy did not become ready:\n${p.output()}`);
      }
      await sleep(50);
    }
  }

  it('fails readiness first, serves through the delay, finishes every in-flight request and exits 0 within delay + grace', async function () {
    this.timeout(20_000);
    const p = await startReady({
      SHUTDOWN_DELAY_MS: String(DELAY_MS),
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    const { url } = p;
    let exitedAt = 0;
    const exited = p.exited.then((result) => {
      exitedAt = Date.now();
      return result;
    });
    const attempts: Attempt[] = [];
    const client = async (): Promise<void> => {
      while (exitedAt === 0) {
        const attempt: Attempt = { start: Date.now(), end: 0 };
        attempts.push(attempt);
        try {
          const res = await fetch(`${url}/v2/models/simple/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: SIMPLE_BODY,
          });
          await res.text();
          attempt.status = res.status;
        } catch (err) {
          attempt.error = errorCode(err);
        }
        attempt.end = Date.now();
        // A closed listener refuses at once; do not spin on it.
        if (attempt.error !== undefined) await sleep(20);
      }
    };
    // `at` is when the probe was sent: a 200 sent after the first 503 would be a flip back.
    const readiness: Array<{ at: number; status: number }> = [];
    const poller = async (): Promise<void> => {
      while (exitedAt === 0) {
        const at = Date.now();
        const status = await fetch(`${url}/health/ready`).then(
          (r) => r.status,
          () => 0,
        );
        readiness.push({ at, status });
        await sleep(20);
      }
    };
    const load = Promise.all([...Array.from({ length: 8 }, client), poller()]);

    await sleep(500);
    const signalledAt = Date.now();
    p.child.kill('SIGTERM');
    const { code, signal } = await exited;
    await load;

    const output = p.output();
    const stoppedAcceptingAt = loggedAt(output, 'shutdown: no longer accepting');
    const flippedAt = readiness.find((r) => r.at >= signalledAt && r.status !== 200)?.at;
    assert.ok(flippedAt !== undefined, 'readiness never failed');
    const readyAfterFlip = readiness.filter((r) => r.at > flippedAt && r.status === 200);
    const servedInWindow = attempts.filter(
      (a) => a.start > flippedAt && a.end < stoppedAcceptingAt && a.status === 200,
    );
    // Being served when the listener closed (a connection refused just then never was).
    const inflightAtStop = attempts.filter(
      (a) => a.start < stoppedAcceptingAt && a.end >= stoppedAcceptingAt && a.error === undefined,
    );
    const answeredBadly = attempts.filter((a) => a.status !== undefined && a.status !== 200);
    const ok = attempts.filter((a) => a.status === 200);
    // A connection opened just as the listener closed is refused or reset before any request
    // reaches the proxy; anything else, or earlier, would be a request lost.
    const lost = attempts.filter(
      (a) =>
        a.error !== undefined &&
        (!CONNECTION_REFUSED.has(a.error) || a.start < stoppedAcceptingAt - ACCEPT_RACE_MS),
    );
    const exitMs = exitedAt - signalledAt;

    assert.equal(signal, null, output);
    assert.equal(code, 0, output);
    assert.ok(exitMs <= DELAY_MS + GRACE_MS, `exited ${exitMs} ms after SIGTERM`);
    assert.ok(exitMs >= DELAY_MS, `exited ${exitMs} ms after SIGTERM, before the delay was over`);
    assert.ok(flippedAt - signalledAt < 300, `readiness failed ${flippedAt - signalledAt} ms late`);
    assert.deepEqual(readyAfterFlip, [], 'readiness went back to 200 during shutdown');
    assert.equal(
      readiness.find((r) => r.at >= flippedAt)?.status,
      503,
      'readiness failed with 503',
    );
    assert.ok(servedInWindow.length > 0, 'no request answered between the flip and the stop');
    assert.ok(stoppedAcceptingAt - signalledAt >= DELAY_MS - 50);
    assert.deepEqual(answeredBadly, [], 'requests answered with an error status');
    assert.deepEqual(lost, [], 'requests failed other than by a refused connection');
    assert.equal(
      fake.callCount('ModelInfer'),
      ok.length,
      'every request Triton saw was answered 200',
    );
    assert.ok(inflightAtStop.length > 0, 'nothing was in flight when the listener closed');
    assert.ok(inflightAtStop.every((a) => a.status === 200));
    const refused = attempts.filter((a) => a.error !== undefined);
    console.log(
      `      SIGTERM -> readiness 503 after ${flippedAt - signalledAt} ms; ${servedInWindow.length} answered in the delay window; ` +
        `stop accepting at +${stoppedAcceptingAt - signalledAt} ms with ${inflightAtStop.length} in flight (all 200); ` +
        `exit ${code} at +${exitMs} ms; ${ok.length} ok, ` +
        `${refused.length} refused after the stop (${[...new Set(refused.map((a) => a.error))].join(', ')})`,
    );
  });

  it('exits 1 at once on a second signal, without waiting for the shutdown delay', async function () {
    this.timeout(15_000);
    const p = await startReady({ SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_GRACE_MS: '5000' });
    p.child.kill('SIGTERM');
    await sleep(200);
    const secondAt = Date.now();
    p.child.kill('SIGINT');
    const { code } = await p.exited;
    const exitMs = Date.now() - secondAt;
    assert.equal(code, 1, p.output());
    assert.ok(exitMs < 1000, `exited ${exitMs} ms after the second signal`);
  });
});
