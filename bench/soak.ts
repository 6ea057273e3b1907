import { startFirstBackend } from './backends';
import { buildCase } from './cases';
import { HttpClient } from './http-client';
import { runLoad } from './load';
import type { BenchOptions } from './options';
import type { ChildProcesses } from './processes';
import { startProxyProcess } from './proxy-process';

const MB = 1e6;

/**
 * 4 MiB binary tensors through the proxy for `options.soakSeconds`, its RSS
 * sampled every `soakIntervalMs`: the memory should level off, not climb.
 * Uses the first backend of `options.backends` that starts.
 */
export async function runSoak(
  options: BenchOptions,
  paths: { distDir: string; root: string },
  children: ChildProcesses,
  log: (line: string) => void,
): Promise<void> {
  const backend = await startFirstBackend(options, paths, children, log, 'the soak');
  const c = buildCase('bin-4m');
  const proxy = await startProxyProcess(
    backend.address,
    options,
    paths.distDir,
    `soak-${backend.id}`,
    children,
  );
  const http = new HttpClient('127.0.0.1', proxy.port, c.concurrency);
  const samples: Array<{ t: number; rssMb: number; requests: number }> = [];
  let requests = 0;
  try {
    const idle = proxy.stats.memory().rss / MB;
    log(
      `soak: ${options.soakSeconds} s of ${c.description} at concurrency ${c.concurrency} through the proxy, backend ${backend.id}; idle RSS ${idle.toFixed(0)} MB`,
    );
    const start = performance.now();
    const sampler = setInterval(() => {
      const t = (performance.now() - start) / 1000;
      const rssMb = proxy.stats.memory().rss / MB;
      samples.push({ t, rssMb, requests });
      log(
        `t=${t.toFixed(0).padStart(4)} s  RSS ${rssMb.toFixed(0).padStart(5)} MB  requests ${requests}`,
      );
    }, options.soakIntervalMs);
    const cpu0 = proxy.stats.cpuMicros();
    const result = await runLoad({
      concurrency: c.concurrency,
      warmupMs: 0,
      durationMs: options.soakSeconds * 1000,
      once: async () => {
        await http.sendCounting(c.http);
        requests++;
      },
    });
    clearInterval(sampler);
    const cpu = proxy.stats.cpuMicros() - cpu0;
    const rss = samples.map((s) => s.rssMb);
    const third = Math.max(1, Math.floor(samples.length / 3));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    log(
      `soak done: ${result.completed} requests (${(result.completed / (result.elapsedMs / 1000)).toFixed(1)} req/s), ` +
        `${result.errors} errors${result.firstError ? ` (first: ${result.firstError})` : ''}, proxy CPU ${(cpu / Math.max(1, requests)).toFixed(0)} us/req`,
    );
    log(
      `RSS MB: idle ${idle.toFixed(0)}, min ${Math.min(...rss).toFixed(0)}, max ${Math.max(...rss).toFixed(0)}, last ${rss.at(-1)?.toFixed(0)}; ` +
        `mean of first third ${mean(rss.slice(0, third)).toFixed(0)}, of last third ${mean(rss.slice(-third)).toFixed(0)}`,
    );
  } finally {
    http.close();
    await proxy.process.stop();
    await backend.process.stop();
  }
}
