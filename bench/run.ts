import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
import { formatMemory, formatTable, LEGEND, type ProxyMemory } from './report';
import { runSoak } from './soak';

const log = (line: string) => process.stdout.write(`${line}\n`);

const SMALL_TENSOR_BYTES = 256 * 1024;
const WARMUP_MS = 5000;

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

/** Pins this process (all its threads) to the load CPUs, next to the backends. */
function pinSelf(cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
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

async function benchBackend(
  backend: Backend,
  cases: BenchCase[],
  options: BenchOptions,
  settings: ChannelSettings,
  rows: Measurement[],
  memory: ProxyMemory[],
  children: ChildProcesses,
): Promise<void> {
  const backendStats = new ProcStats(backend.process.pid);
  const directClients = new Map<ModeId, TritonClient>([
    [
      'direct',
      new TritonClient('direct', backend.address, loadInferenceService(), {
        ...settings,
        inferTransport: 'grpc-js',
      }),
    ],
    [
      'direct-h2',
      new TritonClient('direct-h2', backend.address, loadInferenceService(), {
        ...settings,
        inferTransport: 'http2',
      }),
    ],
  ]);
  let proxy: ProxyProcess | undefined;
  let http: HttpClient | undefined;
  try {
    for (const client of directClients.values()) await client.waitForReady(Date.now() + 10_000);
    let grpcViaProxy: TritonClient | undefined;
    if (options.modes.includes('proxy') || options.modes.includes('proxy-grpc')) {
      proxy = await startProxyProcess(backend.address, options, distDir, backend.id, children);
      http = new HttpClient('127.0.0.1', proxy.port, Math.max(...cases.map((c) => c.concurrency)));
      // The same client as 'direct' (grpc-js), so the two rows differ only by the proxy.
      grpcViaProxy = new TritonClient(
        'proxy-grpc',
        `127.0.0.1:${proxy.grpcPort}`,
        loadInferenceService(),
        { ...settings, inferTransport: 'grpc-js' },
      );
      await grpcViaProxy.waitForReady(Date.now() + 10_000);
      await settle(1000);
    }
    const idleStart = proxy?.stats.memory().rss ?? 0;
    if (http) await warmUp(http, cases);
    let peak = idleStart;
    const env = {
      backendName: backend.id,
      backendStats,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
    };
    for (const c of cases) {
      const deadline = () => Date.now() + 120_000;
      for (const [mode, client] of directClients) {
        if (!options.modes.includes(mode)) continue;
        c.checkGrpc(await client.modelInfer(c.grpc, { deadline: deadline() }));
        const target: Target = {
          mode,
          once: async () => {
            await client.modelInfer(c.grpc, { deadline: deadline() });
          },
        };
        rows.push(await measure(c, target, env));
        log(formatTable(rows.slice(-1)).split('\n').slice(2).join('\n'));
      }
      if (proxy && http && options.modes.includes('proxy')) {
        const answer = await http.send(c.http);
        if (answer.status !== 200)
          throw new Error(
            `${c.id}: proxy answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`,
          );
        c.checkHttp(answer.body, answer.headers);
        const m = await measure(c, httpTarget(http, c, proxy.stats), env);
        rows.push(m);
        peak = Math.max(peak, (m.proxyRssPeakMb ?? 0) * 1e6);
        log(formatTable(rows.slice(-1)).split('\n').slice(2).join('\n'));
      }
      if (proxy && grpcViaProxy && options.modes.includes('proxy-grpc')) {
        const client = grpcViaProxy;
        c.checkGrpc(await client.modelInfer(c.grpc, { deadline: deadline() }));
        const m = await measure(
          c,
          {
            mode: 'proxy-grpc',
            proxy: proxy.stats,
            once: async () => {
              await client.modelInfer(c.grpc, { deadline: deadline() });
            },
          },
          env,
        );
        rows.push(m);
        peak = Math.max(peak, (m.proxyRssPeakMb ?? 0) * 1e6);
        log(formatTable(rows.slice(-1)).split('\n').slice(2).join('\n'));
      }
    }
    grpcViaProxy?.close();
    if (proxy) {
      http?.close();
      await settle(2000);
      memory.push({
        backend: backend.id,
        idleRssMbAtStart: idleStart / 1e6,
        idleRssMbAtEnd: proxy.stats.memory().rss / 1e6,
        peakRssMb: peak / 1e6,
      });
    }
  } finally {
    http?.close();
    for (const client of directClients.values()) client.close();
    await proxy?.process.stop();
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
  pinSelf(options.loadCpus);
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
      `load generator and backends to CPU ${options.loadCpus}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  log(
    `direct: @grpc/grpc-js ${versions.grpcJs} Client.makeUnaryRequest with the hand-written wire codec; ` +
      `direct-h2: the lean node:http2 ModelInfer path (src/triton/http2-unary.ts); both through src/triton TritonClient, ` +
      `the proxy's own upstream client. proxy: REST via a node:http keep-alive Agent; ` +
      `proxy-grpc: the direct grpc-js client pointed at the proxy's gRPC front end`,
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

  const cases = options.cases.map((id) => buildCase(id));
  const rows: Measurement[] = [];
  const memory: ProxyMemory[] = [];
  const backends: Array<{ id: string; description: string; skipped?: string }> = [];
  log(`window ${options.durationMs / 1000} s after ${options.warmupMs / 1000} s warmup per row\n`);
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
      await benchBackend(backend, cases, options, settings, rows, memory, children);
    } finally {
      await backend.process.stop();
    }
  }

  log(`\n${formatTable(rows)}\n\n${formatMemory(memory)}\n\n${LEGEND}`);
  for (const c of cases) log(`${c.id}: ${c.description}`);
  const failed = rows.filter((r) => r.errors > 0);
  for (const r of failed)
    log(`errors in ${r.backend}/${r.caseId}/${r.mode}: ${r.errors}, first: ${r.firstError}`);

  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(
    options.out,
    JSON.stringify(
      { date: new Date().toISOString(), versions, options, settings, backends, rows, memory },
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
