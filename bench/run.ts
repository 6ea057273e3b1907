import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../src/config';
import { TritonClient, loadInferenceService, protosDir, type ChannelSettings } from '../src/triton';
import { startBackend, type Backend } from './backends';
import { buildCase, label, type BenchCase } from './cases';
import { HttpClient } from './http-client';
import { runLoad } from './load';
import { httpTarget, measure, type Measurement, type Target } from './measure';
import { parseOptions, UsageError, type BenchOptions, type ModeId } from './options';
import { ProcStats } from './proc-stats';
import { ChildProcesses } from './processes';
import { startProxyProcess, type ProxyProcess } from './proxy-process';
import {
  formatStageQuantiles,
  scrapeStageBuckets,
  stageQuantiles,
  type StageQuantiles,
} from './stage-latency';
import {
  formatGrpcSummary,
  formatMemory,
  formatSummary,
  formatTable,
  LEGEND,
  type ProcessMemory,
} from './report';
import { startRestProxy } from './rest-proxy-process';
import { runSoak } from './soak';
import { runPerRequest } from './per-request';

const log = (line: string) => process.stdout.write(`${line}\n`);

const SMALL_TENSOR_BYTES = 256 * 1024;
const WARMUP_MS = 5000;
/** Two of main.ts's 5 s idle-check intervals and a margin. */
const IDLE_TRIM_WAIT_MS = 11_000;

const distDir = dirname(__dirname);
const root = dirname(protosDir());

function channelSettings(): ChannelSettings {
  const t = loadConfig({ env: process.env, allowNoServers: true }).triton;
  return {
    maxMessageBytes: t.maxMessageBytes,
    keepaliveTimeMs: t.keepaliveTimeMs,
    keepaliveTimeoutMs: t.keepaliveTimeoutMs,
    flowControlWindowBytes: t.flowControlWindowBytes,
    connectTimeoutMs: t.connectTimeoutMs,
    channelsPerServer: t.channelsPerServer,
    inferTransport: t.inferTransport,
  };
}

function packageVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
}

/**
 * With autogroup scheduling (most distributions), a task's nice only orders
 * it within its session's group: other sessions' work still gets an equal
 * share of each CPU. So a run with --nice starts itself again as a session
 * of its own (children included) and sets that group's nice too.
 */
function rerunInOwnSession(): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, process.argv.slice(1), {
      detached: true,
      stdio: 'inherit',
      env: { ...process.env, BENCH_OWN_SESSION: '1' },
    });
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.on(signal, () => child.kill(signal));
    child.once('exit', (code, signal) => {
      process.exitCode = code ?? (signal ? 130 : 1);
      resolve();
    });
  });
}

/** Pins this process (all its threads) to the load CPUs, next to the backends. */
function pinSelf(cpus: string, nice: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  if (nice === 0) return;
  // The main thread is the load generator; the others are idle helpers.
  setPriority(nice);
  try {
    writeFileSync('/proc/self/autogroup', String(nice));
  } catch {
    log('(no autogroup nice: /proc/self/autogroup not writable; nice orders only this session)');
  }
}

function loadAverage(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * A fresh proxy runs its per-request JavaScript unoptimised at first: a
 * short load of the small cases before any window keeps the first rows from
 * measuring the JIT instead of the proxy.
 */
async function warmUp(http: HttpClient, cases: BenchCase[]): Promise<void> {
  const small = cases.filter((c) => c.tensorBytesIn <= SMALL_TENSOR_BYTES);
  if (small.length === 0) return;
  let i = 0;
  await runLoad({
    concurrency: 4,
    warmupMs: 0,
    durationMs: WARMUP_MS,
    once: async () => {
      await http.sendCounting(small[i++ % small.length]!.http);
    },
  });
}

/** A REST hop under test (the proxy or the Go peer) with its client and memory record. */
interface Hop {
  mode: 'proxy' | 'rest-proxy';
  http: HttpClient;
  /** The proxy's gRPC front end through the same client as 'direct' (proxy hop only). */
  grpc?: TritonClient;
  stats: ProcStats;
  stop: () => Promise<void>;
  memory: ProcessMemory;
  /** The proxy's port for GET /metrics (per-stage latency of each case). */
  metricsPort?: number;
}

async function startHops(
  backend: Backend,
  cases: BenchCase[],
  options: BenchOptions,
  settings: ChannelSettings,
  children: ChildProcesses,
): Promise<Hop[]> {
  const hops: Hop[] = [];
  const sockets = Math.max(...cases.map((c) => c.concurrency));
  const memory = (mode: Hop['mode'], stats: ProcStats): ProcessMemory => ({
    backend: backend.id,
    process: mode,
    idleRssMbAtStart: stats.memory().rss / 1e6,
    peakRssMb: 0,
    idleRssMbAtEnd: 0,
  });
  if (options.modes.includes('proxy') || options.modes.includes('proxy-grpc')) {
    const proxy: ProxyProcess = await startProxyProcess(
      backend.address,
      options,
      distDir,
      backend.id,
      children,
    );
    // The same client as 'direct' (grpc-js), so the two rows differ only by the proxy.
    const grpc = new TritonClient(
      'proxy-grpc',
      `127.0.0.1:${proxy.grpcPort}`,
      loadInferenceService(),
      { ...settings, inferTransport: 'grpc-js' },
    );
    await grpc.waitForReady(Date.now() + 10_000);
    hops.push({
      mode: 'proxy',
      http: new HttpClient('127.0.0.1', proxy.port, sockets),
      grpc,
      stats: proxy.stats,
      stop: () => proxy.process.stop(),
      memory: memory('proxy', proxy.stats),
      metricsPort: proxy.port,
    });
  }
  if (options.modes.includes('rest-proxy') && options.restProxyBin) {
    mkdirSync(options.cacheDir, { recursive: true });
    const peer = await startRestProxy(
      options.restProxyBin,
      backend.address,
      options.proxyCpus,
      options.nice,
      options.cacheDir,
      children,
    );
    hops.push({
      mode: 'rest-proxy',
      http: new HttpClient('127.0.0.1', peer.port, sockets),
      stats: peer.stats,
      stop: () => peer.process.stop(),
      memory: memory('rest-proxy', peer.stats),
    });
  }
  // Idle RSS once both have settled, before any request.
  await settle(1000);
  for (const hop of hops) hop.memory.idleRssMbAtStart = hop.stats.memory().rss / 1e6;
  return hops;
}

async function benchBackend(
  backend: Backend,
  cases: BenchCase[],
  options: BenchOptions,
  settings: ChannelSettings,
  rows: Measurement[],
  memory: ProcessMemory[],
  stages: StageQuantiles[],
  children: ChildProcesses,
): Promise<void> {
  const backendStats = new ProcStats(backend.process.pid);
  const directClients = new Map<ModeId, TritonClient>();
  if (options.modes.includes('direct'))
    directClients.set(
      'direct',
      new TritonClient('direct', backend.address, loadInferenceService(), {
        ...settings,
        inferTransport: 'grpc-js',
      }),
    );
  if (options.modes.includes('direct-h2'))
    directClients.set(
      'direct-h2',
      new TritonClient('direct-h2', backend.address, loadInferenceService(), {
        ...settings,
        inferTransport: 'http2',
      }),
    );
  let hops: Hop[] = [];
  try {
    for (const client of directClients.values()) await client.waitForReady(Date.now() + 10_000);
    hops = await startHops(backend, cases, options, settings, children);
    for (const hop of hops) {
      await warmUp(
        hop.http,
        cases.filter((c) => hop.mode === 'proxy' || c.restProxy),
      );
    }
    const proxyHop = hops.find((h) => h.mode === 'proxy');
    const grpcViaProxy = options.modes.includes('proxy-grpc') ? proxyHop?.grpc : undefined;
    const env = {
      backendName: backend.id,
      backendStats,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
    };
    const emit = (m: Measurement) => {
      rows.push(m);
      log(formatTable([m]).split('\n').slice(2).join('\n'));
    };
    for (const c of cases) {
      const deadline = () => Date.now() + 120_000;
      for (const [, client] of directClients)
        c.checkGrpc(await client.modelInfer(c.grpc, { deadline: deadline() }));
      const usable = hops.filter(
        (h) =>
          (h.mode === 'proxy' && options.modes.includes('proxy')) ||
          (h.mode === 'rest-proxy' && c.restProxy),
      );
      if (grpcViaProxy)
        c.checkGrpc(await grpcViaProxy.modelInfer(c.grpc, { deadline: deadline() }));
      for (const hop of usable) {
        const answer = await hop.http.send(c.http);
        if (answer.status !== 200)
          throw new Error(
            `${c.id}: ${hop.mode} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`,
          );
        c.checkHttp(answer.body, answer.headers);
      }
      const metricsPort = proxyHop?.metricsPort;
      const stagesBefore =
        metricsPort === undefined ? undefined : await scrapeStageBuckets(metricsPort);
      // Paths interleaved within each repetition, so a change in the box's load
      // during the run shifts all of them rather than one.
      for (let rep = 0; rep < options.repeat; rep++) {
        for (const [mode, client] of directClients) {
          const target: Target = {
            mode,
            once: async () => {
              await client.modelInfer(c.grpc, { deadline: deadline() });
            },
          };
          emit({ ...(await measure(c, target, env)), rep });
        }
        for (const hop of usable) {
          const m = await measure(c, httpTarget(hop.mode, hop.http, c, hop.stats), env);
          hop.memory.peakRssMb = Math.max(hop.memory.peakRssMb, m.proxyRssPeakMb ?? 0);
          emit({ ...m, rep });
        }
        if (grpcViaProxy && proxyHop) {
          const client = grpcViaProxy;
          const m = await measure(
            c,
            {
              mode: 'proxy-grpc',
              proxy: proxyHop.stats,
              once: async () => {
                await client.modelInfer(c.grpc, { deadline: deadline() });
              },
            },
            env,
          );
          proxyHop.memory.peakRssMb = Math.max(proxyHop.memory.peakRssMb, m.proxyRssPeakMb ?? 0);
          emit({ ...m, rep });
        }
      }
      if (metricsPort !== undefined && stagesBefore !== undefined) {
        // What the stages cost under this case's load (REST and the gRPC front end,
        // every repetition): the figures the chart's latency-budget alerts start from.
        const s = stageQuantiles(c.id, stagesBefore, await scrapeStageBuckets(metricsPort));
        stages.push({ ...s, backend: backend.id });
        log(formatStageQuantiles(s));
      }
      if (c.concurrency >= 256) {
        await settle(1000);
        for (const hop of usable) {
          const rss = hop.stats.memory().rss / 1e6;
          hop.memory.afterHighConcurrencyRssMb = Math.max(
            hop.memory.afterHighConcurrencyRssMb ?? 0,
            rss,
          );
        }
        // The proxy trims its heap once an interval of its idle check passes
        // quiet after a busy one (src/heap-trim.ts); RSS again once it has had the chance.
        await settle(IDLE_TRIM_WAIT_MS);
        for (const hop of usable) {
          const rss = hop.stats.memory().rss / 1e6;
          hop.memory.afterIdleTrimRssMb = Math.max(hop.memory.afterIdleTrimRssMb ?? 0, rss);
        }
      }
    }
    for (const hop of hops) hop.http.close();
    // Idle at end: connections closed and the proxy's idle trim has had its chance.
    await settle(IDLE_TRIM_WAIT_MS);
    for (const hop of hops) {
      hop.memory.idleRssMbAtEnd = hop.stats.memory().rss / 1e6;
      memory.push(hop.memory);
    }
  } finally {
    for (const hop of hops) {
      hop.http.close();
      hop.grpc?.close();
      await hop.stop();
    }
    for (const client of directClients.values()) client.close();
  }
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2), process.env, root);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.nice !== 0 && process.env['BENCH_OWN_SESSION'] !== '1') {
    await rerunInOwnSession();
    return;
  }
  pinSelf(options.loadCpus, options.nice);
  const children = new ChildProcesses();
  process.on('exit', () => children.killAll());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      children.killAll();
      process.exit(130);
    });
  }
  // A closed stdout (bench | head) must end the run, children included.
  process.stdout.on('error', () => process.exit(1));
  const settings = channelSettings();
  const versions = { node: process.version, grpcJs: packageVersion('@grpc/grpc-js') };
  log(
    `triton-proxy bench: Node ${versions.node}; proxy pinned to CPU ${options.proxyCpus}, ` +
      `load generator and backends to CPU ${options.loadCpus}` +
      (options.nice !== 0 ? `, all at nice ${options.nice}` : '') +
      `; load average ${loadAverage().join(' ')}`,
  );
  if (options.restProxyBin) log(`rest-proxy: ${options.restProxyBin} (kserve/rest-proxy, Go)`);
  log(
    `direct: @grpc/grpc-js ${versions.grpcJs} Client.makeUnaryRequest with the hand-written wire codec; ` +
      `direct-h2: the lean node:http2 ModelInfer path (src/triton/http2-unary.ts); both through src/triton TritonClient, ` +
      `the proxy's own upstream client. proxy: REST via a node:http keep-alive Agent`,
  );
  if (options.proxyNodeFlags.length > 0)
    log(`proxy node flags: ${options.proxyNodeFlags.join(' ')}`);
  log(
    `channel settings (proxy and direct): max message ${label(settings.maxMessageBytes)}, flow-control window ` +
      `${label(settings.flowControlWindowBytes)}, ${settings.channelsPerServer} channel(s) per server; ` +
      `proxy ModelInfer transport as configured: ${settings.inferTransport}`,
  );

  if (options.soakSeconds > 0) {
    await runSoak(options, { distDir, root }, children, log);
    return;
  }
  if (options.perRequest > 0) {
    await runPerRequest(options, { distDir, root }, children, log);
    return;
  }

  const cases = options.cases.map((id) => buildCase(id));
  const rows: Measurement[] = [];
  const memory: ProcessMemory[] = [];
  const stages: StageQuantiles[] = [];
  const backends: Array<{ id: string; description: string; skipped?: string }> = [];
  log(
    `window ${options.durationMs / 1000} s after ${options.warmupMs / 1000} s warmup per row, ` +
      `${options.repeat} repetition(s)\n`,
  );
  // The box is shared: the 1-minute load average through the run says how
  // quiet it was (ratios within the run are what to compare).
  const loads: number[] = [loadAverage()[0]!];
  const loadSampler = setInterval(() => loads.push(loadAverage()[0]!), 10_000);
  for (const id of options.backends) {
    let backend: Backend;
    try {
      backend = await startBackend(id, options, { distDir, root }, children, log);
    } catch (err) {
      const reason = (err as Error).message;
      log(`backend ${id} skipped: ${reason}`);
      backends.push({ id, description: '', skipped: reason });
      continue;
    }
    log(`backend ${id}: ${backend.description} at ${backend.address}`);
    backends.push({ id, description: backend.description });
    try {
      await benchBackend(backend, cases, options, settings, rows, memory, stages, children);
    } finally {
      await backend.process.stop();
    }
  }

  clearInterval(loadSampler);
  loads.push(loadAverage()[0]!);
  const sortedLoads = [...loads].sort((a, b) => a - b);
  const machineLoad = {
    min: sortedLoads[0]!,
    median: sortedLoads[Math.floor(sortedLoads.length / 2)]!,
    max: sortedLoads[sortedLoads.length - 1]!,
  };
  log(`\n${formatTable(rows)}\n\n${formatMemory(memory)}\n\n${LEGEND}`);
  log(`\n${formatSummary(rows, memory, options.repeat)}`);
  for (const s of stages) log(`${s.backend}: ${formatStageQuantiles(s)}`);
  if (rows.some((r) => r.mode === 'proxy-grpc')) log(`\n${formatGrpcSummary(rows)}`);
  log(
    `machine load (1-min average, sampled every 10 s): min ${machineLoad.min}, ` +
      `median ${machineLoad.median}, max ${machineLoad.max}`,
  );
  for (const c of cases) log(`${c.id}: ${c.description}`);
  const failed = rows.filter((r) => r.errors > 0);
  for (const r of failed)
    log(`errors in ${r.backend}/${r.caseId}/${r.mode}: ${r.errors}, first: ${r.firstError}`);

  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(
    options.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        versions,
        options,
        settings,
        backends,
        machineLoad,
        rows,
        memory,
        stages,
      },
      null,
      2,
    ),
  );
  log(`\nresults written to ${options.out}`);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) process.stderr.write(`${err.message}\n`);
  else
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  process.exit(1);
});
