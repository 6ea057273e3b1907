import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchOptions } from './options';
import { createServer } from 'node:net';
import { proxyPort, spawnPinned, type ChildProcesses, type Pinned } from './processes';
import { ProcStats } from './proc-stats';

export interface ProxyProcess {
  port: number;
  /** The gRPC front end's port. */
  grpcPort: number;
  process: Pinned;
  stats: ProcStats;
}

/**
 * Runs the production entry (node dist/src/main.js) pinned to its own CPU,
 * configured by environment like a deployment, with one Triton server.
 * Resolves once /v2/health/ready answers 200.
 */
export async function startProxyProcess(
  backendAddress: string,
  options: BenchOptions,
  distDir: string,
  label: string,
  children: ChildProcesses,
): Promise<ProxyProcess> {
  const nodeArgs: string[] = [...options.proxyNodeFlags];
  if (options.cpuProfDir) {
    mkdirSync(options.cpuProfDir, { recursive: true });
    nodeArgs.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      options.cpuProfDir,
      '--cpu-prof-name',
      `proxy-${label}-${Date.now()}.cpuprofile`,
    );
  }
  // GRPC_PORT=0 means "off", so the gRPC front end gets a port that was free a moment ago.
  const grpcPort = await freePort();
  const { process: proc, value } = await spawnPinned(
    {
      name: 'proxy',
      cpus: options.proxyCpus,
      nice: options.nice,
      command: process.execPath,
      args: [...nodeArgs, join(distDir, 'src', 'main.js')],
      env: {
        ...process.env,
        PORT: '0',
        GRPC_PORT: String(grpcPort),
        HOST: '127.0.0.1',
        TRITON_SERVERS: `bench=${backendAddress}`,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        // Each proxy process starts from nothing: no Redis, no demo backend.
        REDIS_URL: '',
        DEMO_BACKEND: 'false',
        // Stop at once when the bench is done (a CPU profile is written at exit).
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_GRACE_MS: '2000',
      },
      ready: proxyPort,
      timeoutMs: 30_000,
    },
    children,
  );
  const port = Number(value);
  await waitReady(port, 20_000, proc);
  return { port, grpcPort, process: proc, stats: new ProcStats(proc.pid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(port: number, timeoutMs: number, proc: Pinned): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/health/ready`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until)
      throw new Error(`proxy on port ${port} not ready within ${timeoutMs} ms:\n${proc.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
