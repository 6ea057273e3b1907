import type { BenchCase } from './cases';
import type { HttpClient } from './http-client';
import { quantile, runLoad } from './load';
import type { ModeId } from './options';
import type { ProcStats } from './proc-stats';

export interface Measurement {
  backend: string;
  caseId: string;
  mode: ModeId;
  /** Repetition index (0-based) when a case is measured more than once. */
  rep?: number;
  concurrency: number;
  completed: number;
  errors: number;
  firstError?: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Tensor MB (1e6 bytes) per second, client to model and back. */
  mbPerSecIn: number;
  mbPerSecOut: number;
  /**
   * CPU (user + system, all threads) of the process in the middle (the proxy
   * or rest-proxy) per request and per MB of tensor bytes in + out.
   */
  proxyCpuUsPerReq?: number;
  proxyCpuUsPerMb?: number;
  /** Share of the proxy's CPU time spent in the kernel (sockets, page faults). */
  proxyCpuSystemShare?: number;
  /** Proxy CPU use over the window as a fraction of one core. */
  proxyCpuLoad?: number;
  proxyRssPeakMb?: number;
  /** Share of the window the hop's main thread spent waiting for its CPU behind other work. */
  proxyRunQueueWaitShare?: number;
  backendCpuUsPerReq: number;
  loadGenCpuUsPerReq: number;
}

export interface Target {
  mode: ModeId;
  /** One request; resolves when the full answer has arrived. */
  once: () => Promise<void>;
  proxy?: ProcStats;
}

export interface Measured {
  backendName: string;
  backendStats: ProcStats;
  warmupMs: number;
  durationMs: number;
}

const MB = 1e6;

export async function measure(c: BenchCase, target: Target, env: Measured): Promise<Measurement> {
  let proxyCpu0 = { user: 0, system: 0 };
  let proxyCpu1 = { user: 0, system: 0 };
  let backendCpu0 = 0;
  let backendCpu1 = 0;
  let loadCpu0 = 0;
  let loadCpu1 = 0;
  let peak = 0;
  let wait0 = 0;
  let wait1 = 0;
  let sampler: NodeJS.Timeout | undefined;
  const sample = () => {
    if (target.proxy) peak = Math.max(peak, target.proxy.memory().peak);
  };
  const result = await runLoad({
    concurrency: c.concurrency,
    warmupMs: env.warmupMs,
    durationMs: env.durationMs * c.durationScale,
    once: target.once,
    onWindowStart: () => {
      if (target.proxy) {
        target.proxy.resetPeak();
        proxyCpu0 = target.proxy.cpuSplit();
        wait0 = target.proxy.runQueueWaitNs();
        sampler = setInterval(sample, 250);
      }
      backendCpu0 = env.backendStats.cpuMicros();
      const u = process.cpuUsage();
      loadCpu0 = u.user + u.system;
    },
    onWindowEnd: () => {
      if (target.proxy) {
        clearInterval(sampler);
        sample();
        proxyCpu1 = target.proxy.cpuSplit();
        wait1 = target.proxy.runQueueWaitNs();
      }
      backendCpu1 = env.backendStats.cpuMicros();
      const u = process.cpuUsage();
      loadCpu1 = u.user + u.system;
    },
  });
  const seconds = result.elapsedMs / 1000;
  const n = Math.max(1, result.completed);
  const mbMoved = (n * (c.tensorBytesIn + c.tensorBytesOut)) / MB;
  const proxySystem = proxyCpu1.system - proxyCpu0.system;
  const proxyCpu = proxyCpu1.user - proxyCpu0.user + proxySystem;
  return {
    backend: env.backendName,
    caseId: c.id,
    mode: target.mode,
    concurrency: c.concurrency,
    completed: result.completed,
    errors: result.errors,
    firstError: result.firstError,
    reqPerSec: result.completed / seconds,
    p50Ms: quantile(result.latenciesMs, 0.5),
    p99Ms: quantile(result.latenciesMs, 0.99),
    mbPerSecIn: (result.completed * c.tensorBytesIn) / MB / seconds,
    mbPerSecOut: (result.completed * c.tensorBytesOut) / MB / seconds,
    proxyCpuUsPerReq: target.proxy ? proxyCpu / n : undefined,
    proxyCpuUsPerMb: target.proxy ? proxyCpu / mbMoved : undefined,
    proxyCpuSystemShare: target.proxy && proxyCpu > 0 ? proxySystem / proxyCpu : undefined,
    proxyCpuLoad: target.proxy ? proxyCpu / 1e6 / seconds : undefined,
    proxyRssPeakMb: target.proxy ? peak / MB : undefined,
    proxyRunQueueWaitShare: target.proxy ? (wait1 - wait0) / 1e6 / result.elapsedMs : undefined,
    backendCpuUsPerReq: (backendCpu1 - backendCpu0) / n,
    loadGenCpuUsPerReq: (loadCpu1 - loadCpu0) / n,
  };
}

/** Wraps an HTTP client as a load target; the answer's bytes are counted, not kept. */
export function httpTarget(
  mode: ModeId,
  client: HttpClient,
  c: BenchCase,
  proxy: ProcStats,
): Target {
  return {
    mode,
    proxy,
    once: async () => {
      await client.sendCounting(c.http);
    },
  };
}
