import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import path from 'node:path';
import { waitFor } from '../../helpers/proxy-harness';
import {
  REPO_ROOT,
  SIMPLE_BODY,
  ensureBuilt,
  freePort,
  scrape,
  spawnProxy,
  valueOf,
  type Family,
  type ProxyProcess,
} from '../lifecycle/support';
import type { LargeClientCommand, LargeClientReport } from './large-json-client';
import type { SmallClientCommand, SmallClientReport } from './small-json-client';

// The case: 64 MiB JSON bodies, a few at a time, sent to a real model
// (identity_int32 echoes its input, so a 64 MiB JSON answer is encoded and
// written back too), repeated so the measurement spans several of them.
const LARGE_BODY_MiB = 64;
const LARGE_CONCURRENCY = 2;
const LARGE_ROUNDS = 2;
// The goal, and the bound, is 50 ms. Measured on the 2-core development box
// with nothing else running (load below 2, 19 attempts in four runs): small
// p99 18.6-43.8 ms, the proxy's lag p99 18-25 ms. The box is shared by the
// proxy, its workers, two fake Tritons and the two client processes; when
// other work runs too (load 5-10) attempts give 45-260 ms, which says
// nothing about the proxy. So an attempt over the bound is repeated (at most
// ATTEMPTS); a neighbour's burst that spans all of them fails the test (set
// EVENT_LOOP_TEST_P99_BOUND_MS on a shared box). A parse or an encode that
// holds the loop fails it by far (everything inline: 0.5-1.7 s).
const SMALL_P99_BOUND_MS = Number(process.env.EVENT_LOOP_TEST_P99_BOUND_MS ?? 50);
// To measure N attempts in a row: EVENT_LOOP_TEST_ATTEMPTS=N EVENT_LOOP_TEST_P99_BOUND_MS=0.
const ATTEMPTS = Number(process.env.EVENT_LOOP_TEST_ATTEMPTS ?? 4);
// Only to show the test fails without the worker pool: EVENT_LOOP_TEST_THRESHOLD=1000000000.
const THRESHOLD = process.env.EVENT_LOOP_TEST_THRESHOLD ?? String(256 * 1024);
// Set to 0 to see what the workers' lower CPU priority buys.
const NICE_INCREMENT = Number(process.env.EVENT_LOOP_TEST_NICE_INCREMENT ?? 10);
// Added to the nice value of the large-request client and the large model's
// fake Triton, which in a deployment run on other machines (measured: no
// clear change in the small p99 on the shared box, so 0 by default).
const HELPER_NICE_INCREMENT = Number(process.env.EVENT_LOOP_TEST_HELPER_NICE ?? 0);
const FAKE_JS = path.join(REPO_ROOT, 'dist', 'src', 'fake-triton', 'cli.js');

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Peak and current resident memory of a process, from /proc (Linux). */
function rssMiB(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { peak: kib('VmHWM') / 1024, now: kib('VmRSS') / 1024 };
}

/** CPU time (user + system) of a process's main thread so far, in ms, from /proc (Linux). */
function mainThreadCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Nice values of a process's threads by thread name, from /proc (Linux). */
function threadNiceness(pid: number): { name: string; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised name: state is field 3, nice field 19.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    return { name, nice: Number(fields[16]) };
  });
}

/**
 * A client as a process of its own (large-json-client.ts, small-json-client.ts),
 * so that neither the GC and copying of 64 MiB uploads and answers nor this
 * mocha process's own GC (a thousand tests' heap by the time this one runs in
 * `npm test`) lands in the small requests' latencies. Resolves once the
 * client says it is ready; `run` sends a command and resolves with its report.
 */
async function forkClient<Command, Report extends { kind: string }>(
  file: string,
  args: string[],
): Promise<{ child: ChildProcess; run: (command: Command) => Promise<Report> }> {
  const child = fork(path.join(__dirname, file), args, {
    execArgv: ['--require', 'tsx/cjs'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<Report>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${file} exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (report: Report) => {
        child.off('exit', onExit);
        if (report.kind === 'error') {
          reject(new Error(`${file}: ${(report as { message?: string }).message}`));
        } else resolve(report);
      });
    });
  await next(); // ready
  return {
    child,
    run: (command) => {
      const answer = next();
      child.send(command as object);
      return answer;
    },
  };
}

/** Adds `by` to the nice value of every thread of a process (Linux: setpriority acts per thread). */
function lowerPriority(pid: number, by: number): void {
  if (by === 0) return;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    setPriority(Number(tid), Math.min(19, getPriority(Number(tid)) + by));
  }
}

/** The proxy main thread's GC work so far, from prom-client's GC histogram. */
function gcStats(families: Map<string, Family>): {
  majorCount: number;
  majorMs: number;
  allMs: number;
} {
  const name = 'triton_proxy_nodejs_gc_duration_seconds';
  return {
    majorCount: valueOf(families, `${name}_count`, { kind: 'major' }),
    majorMs: valueOf(families, `${name}_sum`, { kind: 'major' }) * 1000,
    allMs: valueOf(families, `${name}_sum`) * 1000,
  };
}

/** The fake Triton as its own process, so its work is not on the proxy's or the client's loop. */
async function spawnFakeTriton(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [FAKE_JS, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fake Triton did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', () => reject(new Error(`fake Triton exited: ${out}`)));
  });
  return { child, address };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('front door: large JSON bodies do not block the event loop', function () {
  this.timeout(420_000);
  const fakes: { child: ChildProcess; address: string }[] = [];
  let proxy: ProxyProcess;

  before(async () => {
    ensureBuilt();
    // Two Triton servers, each its own process: the small model's server is
    // not busy decoding the large tensors, so the small requests' latency is
    // the proxy's (and this client's) alone, as it is for a fleet where large
    // models run on other servers than small ones.
    const small = await spawnFakeTriton();
    fakes.push(small);
    const large = await spawnFakeTriton();
    fakes.push(large);
    lowerPriority(large.child.pid!, HELPER_NICE_INCREMENT);
    proxy = spawnProxy(
      await freePort(),
      {
        TRITON_SERVERS: `small=${small.address}@small,large=${large.address}@large`,
        TRITON_ROUTES: 'simple=small,identity*=large',
        JSON_WORKER_THRESHOLD_BYTES: THRESHOLD,
        JSON_WORKER_NICE_INCREMENT: String(NICE_INCREMENT),
        LOG_LEVEL: 'error',
        // More of the proxy's environment, e.g. 'MALLOC_MMAP_THRESHOLD_=536870912' (README, Performance).
        ...Object.fromEntries(
          (process.env.EVENT_LOOP_TEST_PROXY_ENV ?? '')
            .split(',')
            .filter((kv) => kv !== '')
            .map((kv) => kv.split('=')),
        ),
        // For profiling the proxy under this load, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
        NODE_OPTIONS: process.env.EVENT_LOOP_TEST_NODE_OPTIONS ?? '',
      },
      // V8 flags NODE_OPTIONS refuses, e.g. '--trace-gc' (printed with EVENT_LOOP_TEST_PRINT_OUTPUT=true).
      (process.env.EVENT_LOOP_TEST_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    );
    await waitFor(
      async () => (await fetch(`${proxy.url}/health/ready`).catch(() => undefined))?.status === 200,
      15_000,
      'the proxy process to be ready',
    );
  });
  after(async () => {
    if (proxy !== undefined) {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
      if (process.env.EVENT_LOOP_TEST_PRINT_OUTPUT === 'true') console.log(proxy.output());
    }
    await Promise.all(fakes.map((f) => stop(f.child)));
  });

  it(`keeps small requests' p99 low while ${LARGE_CONCURRENCY} x ${LARGE_BODY_MiB} MiB JSON requests to a real model are parsed, forwarded and answered`, async () => {
    const largeClient = await forkClient<LargeClientCommand, LargeClientReport>(
      'large-json-client.ts',
      [
        `${proxy.url}/v2/models/identity_int32/infer`,
        String(LARGE_BODY_MiB),
        String(LARGE_CONCURRENCY),
      ],
    );
    lowerPriority(largeClient.child.pid!, HELPER_NICE_INCREMENT);
    const smallClient = await forkClient<SmallClientCommand, SmallClientReport>(
      'small-json-client.ts',
      [`${proxy.url}/v2/models/simple/infer`, SIMPLE_BODY],
    );
    try {
      // Warm up the connection, the workers and the JIT; one large answer is
      // kept whole (in the large client) to check that the worker's encoding
      // is the input's data.
      await smallClient.run({ kind: 'start' });
      await new Promise((r) => setTimeout(r, 300));
      const warmSmall = await smallClient.run({ kind: 'stop' });
      assert.ok(warmSmall.kind === 'stopped');
      assert.ok(warmSmall.statuses.length >= 5 && warmSmall.statuses.every((s) => s === 200));
      const echoed = await largeClient.run({ kind: 'echo' });
      assert.ok(echoed.kind === 'echo');
      assert.equal(echoed.result.status, 200);
      assert.ok(echoed.sameData, 'the answer carries the input data');
      // One round of the load unmeasured: the first one after start-up also
      // pays for the workers' JIT, the reused buffers' first page faults and
      // the heaps growing to their working size (measured: the first attempt
      // was the slowest in every run, 39-46 ms against 18-33 ms after it;
      // with this round, 6 attempts in a row gave 26.3-33.0 ms).
      const warm = await largeClient.run({
        kind: 'load',
        concurrency: LARGE_CONCURRENCY,
        rounds: 1,
      });
      assert.ok(warm.kind === 'load');
      for (const r of warm.results) assert.equal(r.status, 200);

      // A neighbour's CPU burst can stall any process on a shared box for
      // hundreds of ms, which is not what this test judges: an attempt that
      // misses the bound is repeated (at most ATTEMPTS in all). Without the
      // worker pool every attempt misses it by far (each parse and encode
      // holds the loop for over a second).
      let p99 = Infinity;
      for (let attempt = 1; attempt <= ATTEMPTS && p99 >= SMALL_P99_BOUND_MS; attempt++) {
        p99 = await measure(attempt, echoed.result.bytes);
      }
      assert.ok(
        p99 < SMALL_P99_BOUND_MS,
        `small request p99 ${p99.toFixed(1)} ms, bound ${SMALL_P99_BOUND_MS} ms`,
      );
      // The parse/encode workers yield the CPU to the event loop thread.
      const threads = threadNiceness(proxy.child.pid!);
      const main = threads.find((t) => t.name === 'MainThread' || t.name === 'node')!;
      const workers = threads.filter((t) => t.name === 'WorkerThread');
      assert.ok(workers.length >= 1, `worker threads: ${JSON.stringify(threads)}`);
      for (const w of workers) assert.equal(w.nice, Math.min(19, main.nice + NICE_INCREMENT));
    } finally {
      smallClient.child.disconnect();
      largeClient.child.disconnect();
    }

    /** One measurement: the large requests, small ones sent meanwhile; returns their p99. */
    async function measure(attempt: number, answerBytes: number): Promise<number> {
      // Scraping resets the proxy's event-loop delay histogram.
      const gcBefore = gcStats(await scrape(proxy.url));
      const cpuBefore = mainThreadCpuMs(proxy.child.pid!);
      await smallClient.run({ kind: 'start' });
      const report = await largeClient.run({
        kind: 'load',
        concurrency: LARGE_CONCURRENCY,
        rounds: LARGE_ROUNDS,
      });
      const smallReport = await smallClient.run({ kind: 'stop' });
      assert.ok(report.kind === 'load');
      assert.ok(smallReport.kind === 'stopped');
      assert.deepEqual(
        smallReport.statuses.filter((s) => s !== 200),
        [],
        'every small request answered 200',
      );
      const latencies = smallReport.latencies;
      const largeResults = report.results;
      const families = await scrape(proxy.url);
      const lagP99 = valueOf(families, 'triton_proxy_nodejs_eventloop_lag_p99_seconds') * 1000;
      const lagMax = valueOf(families, 'triton_proxy_nodejs_eventloop_lag_max_seconds') * 1000;
      const cpuMs = mainThreadCpuMs(proxy.child.pid!) - cpuBefore;
      const gcAfter = gcStats(families);
      const p99 = percentile(latencies, 99);
      const largeMs = percentile(
        largeResults.map((r) => r.ms),
        50,
      );
      console.log(
        `      attempt ${attempt}: ${largeResults.length} x ${LARGE_BODY_MiB} MiB JSON (${LARGE_CONCURRENCY} at a time, median ${largeMs.toFixed(0)} ms); ` +
          `${latencies.length} small requests: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms; ` +
          `proxy event-loop lag p99 ${lagP99.toFixed(1)} ms, max ${lagMax.toFixed(1)} ms; proxy main thread CPU ${cpuMs} ms, major GCs ${gcAfter.majorCount - gcBefore.majorCount} (${(gcAfter.majorMs - gcBefore.majorMs).toFixed(0)} ms), all GC ${(gcAfter.allMs - gcBefore.allMs).toFixed(0)} ms; proxy RSS peak ${rssMiB(proxy.child.pid!).peak.toFixed(0)} MiB, now ${rssMiB(proxy.child.pid!).now.toFixed(0)} MiB ` +
          `(threshold ${THRESHOLD}, worker nice +${NICE_INCREMENT})`,
      );
      for (const r of largeResults) {
        assert.equal(r.status, 200);
        assert.equal(r.bytes, answerBytes);
      }
      assert.ok(latencies.length >= 20, `only ${latencies.length} small requests were measured`);
      return p99;
    }
  });
});
