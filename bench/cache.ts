import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HttpClient } from './http-client';
import { runLoad } from './load';
import { listeningAddress, spawnPinned, ChildProcesses, proxyPort, type Pinned } from './processes';
import { ProcStats } from './proc-stats';

/**
 * The response cache under a repeated-input workload: the same load through
 * the proxy without and with CACHE_MODELS, in one run, as ratios. The
 * backend is the grpc-js fake Triton with a fixed latency standing in for a
 * model's compute; the proxy runs alone on its CPU (taskset), the load
 * generator and the backend on the other.
 *
 *   npm run bench:cache -- [--repeat 0.8] [--latency-ms 5] [--duration 5] [--concurrency 8]
 */

const log = (line: string) => process.stdout.write(`${line}\n`);
const distDir = dirname(__dirname);

interface Settings {
  repeat: number;
  latencyMs: number;
  durationMs: number;
  concurrency: number;
  hotInputs: number;
  proxyCpus: string;
  loadCpus: string;
}

function parse(argv: string[]): Settings {
  const s: Settings = {
    repeat: 0.8,
    latencyMs: 5,
    durationMs: 5000,
    concurrency: 8,
    hotInputs: 100,
    proxyCpus: '1',
    loadCpus: '0',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const n = Number(value);
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--repeat' && n >= 0 && n <= 1) s.repeat = n;
    else if (flag === '--latency-ms' && n >= 0) s.latencyMs = n;
    else if (flag === '--duration' && n > 0) s.durationMs = n * 1000;
    else if (flag === '--concurrency' && n >= 1) s.concurrency = n;
    else if (flag === '--hot-inputs' && n >= 1) s.hotInputs = n;
    else if (flag === '--proxy-cpus') s.proxyCpus = value;
    else if (flag === '--load-cpus') s.loadCpus = value;
    else throw new Error(`unknown option or bad value: ${flag} ${value}`);
  }
  return s;
}

/** The `simple` model's body: INPUT0 carries the question's number, so each number is one answer. */
function body(n: number): Buffer {
  const a = Array.from({ length: 16 }, (_, i) => n * 16 + i);
  const b = Array.from({ length: 16 }, () => 1);
  return Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: a },
        { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: b },
      ],
    }),
  );
}

/** `repeat` of the requests ask one of `hot` known questions, the rest a question never asked before. */
function workload(repeat: number, hot: number): () => Buffer {
  const hotBodies = Array.from({ length: hot }, (_, i) => body(i));
  let fresh = 1_000_000;
  // A fixed sequence (no Math.random) so both runs see the same questions.
  let state = 12345;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  return () => (next() < repeat ? hotBodies[Math.floor(next() * hot)]! : body(fresh++));
}

async function metric(port: number, prefix: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(prefix)) sum += Number(line.split(' ').at(-1));
  return sum;
}

interface Run {
  label: string;
  completed: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Requests the proxy answered while the counters were read (window plus tail). */
  requests: number;
  upstream: number;
  hits: number;
  coalesced: number;
  cpuUsPerRequest: number;
}

async function startProxy(
  s: Settings,
  backend: string,
  env: Record<string, string>,
  children: ChildProcesses,
): Promise<{ proc: Pinned; port: number }> {
  const { process: proc, value } = await spawnPinned(
    {
      name: 'proxy',
      cpus: s.proxyCpus,
      command: process.execPath,
      args: [join(distDir, 'src', 'main.js')],
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        TRITON_SERVERS: `bench=${backend}`,
        REDIS_URL: '',
        LOG_LEVEL: 'info',
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_GRACE_MS: '2000',
        ...env,
      },
      ready: proxyPort,
      timeoutMs: 30_000,
    },
    children,
  );
  const port = Number(value);
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/health/ready`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, port };
}

async function measureRun(
  label: string,
  s: Settings,
  backend: string,
  env: Record<string, string>,
  next: () => Buffer,
  children: ChildProcesses,
): Promise<Run> {
  const { proc, port } = await startProxy(s, backend, env, children);
  const http = new HttpClient('127.0.0.1', port, s.concurrency);
  const stats = new ProcStats(proc.pid);
  const send = () =>
    http
      .sendCounting({
        path: '/v2/models/simple/infer',
        headers: { 'content-type': 'application/json' },
        body: next(),
      })
      .then(() => undefined);
  try {
    // JIT warm-up on the same mix, outside the window.
    await runLoad({ concurrency: s.concurrency, warmupMs: 0, durationMs: 2000, once: send });
    // Counters are read around the whole measured load (window plus the few
    // requests in flight when it closes), so shares use the proxy's own count.
    const requests0 = await metric(port, 'triton_proxy_request_duration_seconds_count');
    const upstream0 = await metric(port, 'triton_proxy_upstream_attempts_total');
    const hits0 = await metric(
      port,
      'triton_proxy_cache_requests_total{model="simple",result="hit"}',
    );
    const coalesced0 = await metric(port, 'triton_proxy_cache_coalesced_total');
    let cpu0 = 0;
    let cpu1 = 0;
    const r = await runLoad({
      concurrency: s.concurrency,
      warmupMs: 0,
      durationMs: s.durationMs,
      once: send,
      onWindowStart: () => (cpu0 = stats.cpuMicros()),
      onWindowEnd: () => (cpu1 = stats.cpuMicros()),
    });
    const q = (p: number) =>
      r.latenciesMs[Math.min(r.latenciesMs.length - 1, Math.floor(r.latenciesMs.length * p))] ??
      NaN;
    return {
      label,
      completed: r.completed,
      rps: r.completed / (r.elapsedMs / 1000),
      p50: q(0.5),
      p99: q(0.99),
      errors: r.errors,
      requests: (await metric(port, 'triton_proxy_request_duration_seconds_count')) - requests0,
      upstream: (await metric(port, 'triton_proxy_upstream_attempts_total')) - upstream0,
      hits:
        (await metric(port, 'triton_proxy_cache_requests_total{model="simple",result="hit"}')) -
        hits0,
      coalesced: (await metric(port, 'triton_proxy_cache_coalesced_total')) - coalesced0,
      cpuUsPerRequest: (cpu1 - cpu0) / Math.max(1, r.completed),
    };
  } finally {
    http.close();
    await proc.stop();
  }
}

function row(r: Run): string {
  const pad = (v: string, n: number) => v.padStart(n);
  return [
    r.label.padEnd(34),
    pad(r.rps.toFixed(0), 7),
    pad(r.p50.toFixed(2), 7),
    pad(r.p99.toFixed(2), 7),
    pad(String(r.upstream), 8),
    pad(`${((r.upstream / Math.max(1, r.requests)) * 100).toFixed(0)}%`, 6),
    pad(String(r.hits), 7),
    pad(String(r.coalesced), 6),
    pad(r.cpuUsPerRequest.toFixed(0), 8),
    pad(String(r.errors), 4),
  ].join(' ');
}

async function main(): Promise<void> {
  const s = parse(process.argv.slice(2));
  const children = new ChildProcesses();
  process.on('exit', () => children.killAll());
  const { process: fake, value: backend } = await spawnPinned(
    {
      name: 'fake Triton',
      cpus: s.loadCpus,
      command: process.execPath,
      args: [
        join(distDir, 'src', 'fake-triton', 'cli.js'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--latency-ms',
        String(s.latencyMs),
      ],
      ready: listeningAddress,
      timeoutMs: 20_000,
    },
    children,
  );
  log(
    `cache bench: ${Math.round(s.repeat * 100)}% of requests repeat one of ${s.hotInputs} questions, ` +
      `the rest are new; backend fake Triton +${s.latencyMs} ms per call; concurrency ${s.concurrency}; ` +
      `${s.durationMs / 1000} s windows; proxy on CPU ${s.proxyCpus}, load and backend on CPU ${s.loadCpus}; ` +
      `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  try {
    const off = await measureRun(
      `${Math.round(s.repeat * 100)}% repeats, no cache`,
      s,
      backend,
      { CACHE_MODELS: '' },
      workload(s.repeat, s.hotInputs),
      children,
    );
    const on = await measureRun(
      `${Math.round(s.repeat * 100)}% repeats, CACHE_MODELS=simple`,
      s,
      backend,
      { CACHE_MODELS: 'simple:10m' },
      workload(s.repeat, s.hotInputs),
      children,
    );
    // CPU per hit: every request the same question (all hits after the first),
    // against every request a new question without the cache (all proxied).
    const allHits = await measureRun(
      'all hits (one question, cache)',
      s,
      backend,
      { CACHE_MODELS: 'simple:10m' },
      workload(1, 1),
      children,
    );
    const allProxied = await measureRun(
      'all proxied (new questions, no cache)',
      s,
      backend,
      { CACHE_MODELS: '' },
      workload(0, 1),
      children,
    );
    log(`\n${'run'.padEnd(34)}   req/s  p50 ms  p99 ms upstream  share    hits coals CPU us/r err`);
    for (const r of [off, on, allHits, allProxied]) log(row(r));
    const saved = 1 - on.upstream / Math.max(1, on.requests);
    log(
      `\nwith the cache: ${(saved * 100).toFixed(0)}% of requests never reached Triton ` +
        `(${on.hits} hits, ${on.coalesced} coalesced); throughput x${(on.rps / off.rps).toFixed(2)}, ` +
        `p50 x${(on.p50 / off.p50).toFixed(2)}, proxy CPU per request x${(on.cpuUsPerRequest / off.cpuUsPerRequest).toFixed(2)}`,
    );
    log(
      `a hit costs ${allHits.cpuUsPerRequest.toFixed(0)} us of proxy CPU against ` +
        `${allProxied.cpuUsPerRequest.toFixed(0)} us for a proxied call (x${(allHits.cpuUsPerRequest / allProxied.cpuUsPerRequest).toFixed(2)})`,
    );
  } finally {
    await fake.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `cache bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
