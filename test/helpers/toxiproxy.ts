import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './redis-server';

/** One toxic as Toxiproxy's API takes it (https://github.com/Shopify/toxiproxy#toxics). */
export interface Toxic {
  name: string;
  type: 'latency' | 'bandwidth' | 'reset_peer' | 'timeout' | 'slicer' | 'slow_close' | 'limit_data';
  stream: 'upstream' | 'downstream';
  toxicity?: number;
  attributes: Record<string, number>;
}

export interface ToxiproxyProxy {
  readonly name: string;
  /** 127.0.0.1:port clients connect to. */
  readonly listen: string;
  readonly port: number;
  add(toxic: Toxic): Promise<void>;
  remove(name: string): Promise<void>;
  /** Removes every toxic of this proxy. */
  clear(): Promise<void>;
}

export interface Toxiproxy {
  proxy(name: string, upstream: string): Promise<ToxiproxyProxy>;
  stop(): Promise<void>;
}

const BINARY = process.env.TOXIPROXY_BIN ?? '';

/** Why the suite is skipped: the binary is built by scripts/ensure-toxiproxy.sh. */
export const NO_TOXIPROXY =
  'TOXIPROXY_BIN is not set: run through scripts/test-faults.sh (it builds toxiproxy)';

export function toxiproxyAvailable(): boolean {
  return BINARY !== '';
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${text}`);
}

/**
 * A real toxiproxy server (Shopify's, built from the Go module proxy) on
 * free loopback ports, driven through its HTTP API. Killed when the test
 * process exits, whatever happens.
 */
export async function startToxiproxy(): Promise<Toxiproxy> {
  if (!toxiproxyAvailable()) throw new Error(NO_TOXIPROXY);
  const port = await freePort();
  const child: ChildProcess = spawn(BINARY, ['-host', '127.0.0.1', '-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const onExit = () => child.kill('SIGKILL');
  process.on('exit', onExit);
  child.stderr?.resume();
  const base = `http://127.0.0.1:${port}`;
  const end = Date.now() + 10_000;
  for (;;) {
    const up = await fetch(`${base}/version`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > end || child.exitCode !== null) throw new Error('toxiproxy did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const toxicNames = new Map<string, Set<string>>();
  return {
    async proxy(name: string, upstream: string): Promise<ToxiproxyProxy> {
      const listenPort = await freePort();
      const listen = `127.0.0.1:${listenPort}`;
      await api(base, 'POST', '/proxies', { name, listen, upstream, enabled: true });
      const names = new Set<string>();
      toxicNames.set(name, names);
      return {
        name,
        listen,
        port: listenPort,
        add: async (toxic) => {
          await api(base, 'POST', `/proxies/${name}/toxics`, { toxicity: 1, ...toxic });
          names.add(toxic.name);
        },
        remove: async (toxic) => {
          await api(base, 'DELETE', `/proxies/${name}/toxics/${toxic}`);
          names.delete(toxic);
        },
        clear: async () => {
          for (const toxic of [...names]) {
            await api(base, 'DELETE', `/proxies/${name}/toxics/${toxic}`);
            names.delete(toxic);
          }
        },
      };
    },
    async stop(): Promise<void> {
      process.off('exit', onExit);
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
