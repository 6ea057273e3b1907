import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { pinnedCommand, type ChildProcesses, type Pinned } from './processes';
import { ProcStats } from './proc-stats';

export interface PeerProcess {
  port: number;
  process: Pinned;
  stats: ProcStats;
}

/** A free TCP port on 127.0.0.1 (the peer takes a fixed port, not 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs kserve/rest-proxy (built by scripts/build-rest-proxy.sh) pinned to the
 * proxy's CPU, configured the way its ModelMesh deployment does: by
 * environment. It dials "localhost:<port>" (host fixed in its code). It logs
 * one line per request at info; that goes to a file, the cheapest sink short
 * of /dev/null, so its cost stays in the peer and not in the load generator.
 * It maps only the inference routes and dials its backend blocking before it
 * listens, so any HTTP answer means it is serving.
 */
export async function startRestProxy(
  bin: string,
  backendAddress: string,
  cpus: string,
  nice: number,
  logDir: string,
  children: ChildProcesses,
): Promise<PeerProcess> {
  const grpcPort = backendAddress.slice(backendAddress.lastIndexOf(':') + 1);
  const port = await freePort();
  const logFile = join(logDir, 'rest-proxy.log');
  const fd = openSync(logFile, 'w');
  const [command, args] = pinnedCommand(cpus, nice, bin, []);
  const child = spawn(command, args, {
    env: {
      ...process.env,
      REST_PROXY_LISTEN_PORT: String(port),
      REST_PROXY_GRPC_PORT: grpcPort,
      // Large enough for the 1M-element JSON case's answer (its default is 16 MiB).
      REST_PROXY_GRPC_MAX_MSG_SIZE_BYTES: String(160 * 1024 * 1024),
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.add(child);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => ((exited = true), resolve())),
  );
  const pinned: Pinned = {
    name: 'rest-proxy',
    pid: child.pid ?? -1,
    child,
    tail: () => `(see ${logFile})`,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
  const until = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`rest-proxy exited before serving (see ${logFile})`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      await res.arrayBuffer();
      break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) {
      await pinned.stop();
      throw new Error(`rest-proxy on port ${port} not ready within 20 s (see ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, process: pinned, stats: new ProcStats(pinned.pid) };
}
