import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { loadConfig } from '../../../src/config';
import { startProxy, type Proxy } from '../../../src/proxy';
import { silentLogger } from '../../../src/observability';
import { simpleRequest } from '../../helpers/proxy-harness';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const MAIN_JS = path.join(REPO_ROOT, 'dist', 'src', 'main.js');

/** The `simple` model body every test sends (INT32 [1,16] twice). */
export const SIMPLE_BODY = JSON.stringify(
  simpleRequest(
    Array.from({ length: 16 }, (_, i) => i),
    Array.from({ length: 16 }, () => 1),
  ),
);

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A loopback port free right now (for a child process that must be told its PORT). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface InferResult {
  status: number;
  retryAfter: string | null;
  body: string;
  /** ms from send to the full answer. */
  ms: number;
}

export async function infer(
  url: string,
  options: { model?: string; signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<InferResult> {
  const started = performance.now();
  const res = await fetch(`${url}/v2/models/${options.model ?? 'simple'}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: SIMPLE_BODY,
    signal: options.signal,
  });
  const body = await res.text();
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body,
    ms: performance.now() - started,
  };
}

/** Starts the in-process proxy with prom-client's process metrics on (the harness turns them off). */
export async function startProxyWithProcessMetrics(
  env: Record<string, string>,
): Promise<{ proxy: Proxy; url: string }> {
  const config = loadConfig({
    env: {
      PORT: '0',
      GRPC_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      TRITON_HEALTH_INTERVAL_MS: '200',
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
  });
  const proxy = await startProxy(config, { logger: silentLogger, defaultMetrics: true });
  return { proxy, url: `http://127.0.0.1:${proxy.port()}` };
}

// ---- Prometheus text format ------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string | undefined;
  type: string | undefined;
  samples: Sample[];
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

function familyOf(families: Map<string, Family>, sampleName: string): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    const base = sampleName.slice(0, -suffix.length);
    if (sampleName.endsWith(suffix) && families.get(base)?.type === 'histogram') return base;
  }
  return sampleName;
}

/** Families by name, from HELP/TYPE lines; histogram samples are filed under their family. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, help: undefined, type: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3];
      else f.type = meta[3];
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(LABEL_PAIR)) labels[pair[1]!] = pair[2]!;
    const sample = { name: m[1]!, labels, value: Number(m[3]) };
    family(familyOf(families, sample.name)).samples.push(sample);
  }
  return families;
}

export async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

/** Sum of the samples of `name` whose labels include `labels` (0 when none). */
export function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}

/** Distinct values of one label across the samples of a family. */
export function labelValues(family: Family | undefined, label: string): Set<string> {
  const values = new Set<string>();
  for (const s of family?.samples ?? []) {
    const v = s.labels[label];
    if (v !== undefined) values.add(v);
  }
  return values;
}

// ---- the built proxy as a process -------------------------------------------

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * `npm run build`, unless dist/src/main.js is already newer than every source
 * file: a full tsc run costs a third of this suite's time budget.
 */
export function ensureBuilt(): void {
  const sources = Math.max(
    newestMtime(path.join(REPO_ROOT, 'src')),
    statSync(path.join(REPO_ROOT, 'tsconfig.json')).mtimeMs,
  );
  if (existsSync(MAIN_JS) && statSync(MAIN_JS).mtimeMs > sources) return;
  const run = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (run.status === 0) return;
  // tsc still emits on type errors; those are the typecheck script's to report, and these
  // tests judge what the emitted code does. A build that emitted nothing is a failure.
  const emitted = existsSync(MAIN_JS) && statSync(MAIN_JS).mtimeMs > sources;
  const report = `npm run build failed:\n${run.stdout}\n${run.stderr}`.slice(-4000);
  if (!emitted) throw new Error(report);
  console.warn(`      (build had errors but emitted dist/)\n${report.slice(-600)}`);
}

export interface ProxyProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote (JSON log lines). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `node dist/src/main.js` with only `env` (plus PATH) in its environment;
 * `nodeArgs` go before the script (V8 flags such as --trace-gc, which
 * NODE_OPTIONS does not take).
 */
export function spawnProxy(
  port: number,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): ProxyProcess {
  const child = spawn(process.execPath, [...nodeArgs, MAIN_JS], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      GRPC_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}
