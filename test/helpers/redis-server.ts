import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerHandle {
  /** redis://127.0.0.1:<port> (or REDIS_URL). */
  url: string;
  port: number;
  /** False when REDIS_URL points at a server the tests must not stop. */
  canRestart: boolean;
  /** Kills the server abruptly, as a crash would, and deletes its data directory. */
  stop(): Promise<void>;
  /** Starts a fresh, empty server on the same port (stops the current one first). */
  restart(): Promise<void>;
}

/** Why restart-type tests are skipped against an external Redis. */
export const EXTERNAL_REDIS_SKIP_REASON =
  'REDIS_URL is set: the test would have to stop or restart a Redis it does not own';

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const READY_TIMEOUT_MS = 10_000;

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// mocha runs with --exit: without this, servers would outlive the test process.
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/**
 * Runs redis-server with the given arguments (e.g. a TLS or Sentinel setup)
 * and resolves once its log shows `readyText`. The process is killed when the
 * test process exits, whatever happens.
 */
export async function spawnRedisProcess(
  args: readonly string[],
  readyText = 'Ready to accept connections',
): Promise<ChildProcess> {
  const child = spawn(BINARY, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  killAllOnExit();
  child.once('exit', () => live.delete(child));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start within ${READY_TIMEOUT_MS} ms: ${output}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // Logged at notice level: the readiness signal without polling the port.
      if (output.includes(readyText)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${BINARY}: ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code} before it was ready: ${output}`));
    });
  });
  // Keep draining output so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  return spawnRedisProcess([
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'notice',
  ]);
}

/** Kills a process started by spawnRedisProcess and waits for it to exit. */
export async function killRedisProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/**
 * A real redis-server for tests: no persistence, 127.0.0.1 only, a free port,
 * its own temp directory. With REDIS_URL set, that server is used instead and
 * stop/restart throw (tests check `canRestart` and skip).
 */
export async function startRedisServer(): Promise<RedisServerHandle> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && external !== '') {
    const refuse = () => Promise.reject(new Error(EXTERNAL_REDIS_SKIP_REASON));
    return {
      url: external,
      port: Number(new URL(external).port || 6379),
      canRestart: false,
      stop: refuse,
      restart: refuse,
    };
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let dir: string | undefined;

  const stop = async () => {
    if (child !== undefined) await killRedisProcess(child);
    child = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  };
  const start = async () => {
    dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
    child = await launch(port, dir);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    canRestart: true,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
  };
}
