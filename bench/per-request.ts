import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startFirstBackend } from './backends';
import { buildCase } from './cases';
import { HttpClient } from './http-client';
import type { BenchOptions } from './options';
import type { ChildProcesses, Pinned } from './processes';
import { clockTicksPerSecond } from './proc-stats';
import { startProxyProcess } from './proxy-process';
import { startRestProxy } from './rest-proxy-process';

/** What the kernel counted for one process (all its threads) at one moment. */
interface Counts {
  userUs: number;
  systemUs: number;
  /** CPU of the main thread (the event loop, or Go's busiest thread) alone. */
  mainUs: number;
  voluntary: number;
  involuntary: number;
  minorFaults: number;
  threads: number;
}

/** One row of the per-request table, every value divided by the requests sent. */
export interface PerRequest {
  process: string;
  requests: number;
  p50Us: number;
  userUs: number;
  systemUs: number;
  /** CPU of the thread that used most of it; the rest ran on other threads (GC helpers, Go's Ps). */
  busiestThreadUs: number;
  voluntary: number;
  involuntary: number;
  minorFaults: number;
  threads: number;
  /** From strace -c in a second pass (its own overhead does not touch the rows above). */
  syscalls?: Map<string, number>;
}

function fields(stat: string): string[] {
  // The command name (field 2) may hold spaces; fields after its ')' start at field 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function statusNumber(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

function snapshot(pid: number, usPerTick: number): Counts & { perThread: Map<string, number> } {
  const f = fields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const perThread = new Map<string, number>();
  let voluntary = 0;
  let involuntary = 0;
  let threads = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const tf = fields(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      voluntary += statusNumber(status, 'voluntary_ctxt_switches');
      involuntary += statusNumber(status, 'nonvoluntary_ctxt_switches');
      perThread.set(tid, (Number(tf[11]) + Number(tf[12])) * usPerTick);
      threads++;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return {
    userUs: Number(f[11]) * usPerTick,
    systemUs: Number(f[12]) * usPerTick,
    mainUs: perThread.get(String(pid)) ?? 0,
    voluntary,
    involuntary,
    minorFaults: Number(f[7]),
    threads,
    perThread,
  };
}

/** Sends `n` requests one after another (concurrency 1); resolves with the median latency, us. */
async function sequential(send: () => Promise<number>, n: number): Promise<number> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await send();
    latencies.push((performance.now() - start) * 1000);
  }
  latencies.sort((a, b) => a - b);
  return latencies[Math.floor(latencies.length / 2)] ?? 0;
}

/** Calls per syscall name from the table `strace -c` writes (the total row left out). */
export function parseStraceSummary(text: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of text.split('\n')) {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== 'total') calls.set(m[2]!, Number(m[1]));
  }
  return calls;
}

/** strace -c -f on a running process while `work` runs; syscalls by name. */
async function countSyscalls(
  pid: number,
  outFile: string,
  work: () => Promise<unknown>,
): Promise<Map<string, number> | undefined> {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  rmSync(outFile, { force: true });
  const tracer = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', outFile], {
    stdio: 'ignore',
  });
  // strace attaches to every thread before the first request goes out.
  await new Promise((r) => setTimeout(r, 1000));
  await work();
  const exited = new Promise((r) => tracer.once('exit', r));
  tracer.kill('SIGINT');
  await exited;
  return parseStraceSummary(readFileSync(outFile, 'utf8'));
}

async function measureOne(
  name: string,
  proc: Pinned,
  http: HttpClient,
  requests: number,
  cacheDir: string,
): Promise<PerRequest> {
  const c = buildCase('small-json-c1');
  const send = () => http.sendCounting(c.http);
  const usPerTick = 1e6 / clockTicksPerSecond();
  // Warm: connections open, the proxy's JavaScript optimised.
  await sequential(send, 2000);
  await new Promise((r) => setTimeout(r, 500));
  const a = snapshot(proc.pid, usPerTick);
  const p50Us = await sequential(send, requests);
  const b = snapshot(proc.pid, usPerTick);
  let busiest = 0;
  for (const [tid, us] of b.perThread)
    busiest = Math.max(busiest, us - (a.perThread.get(tid) ?? 0));
  const syscalls = await countSyscalls(proc.pid, join(cacheDir, `strace-${name}.txt`), () =>
    sequential(send, requests),
  );
  const per = (k: keyof Counts) => (b[k] - a[k]) / requests;
  return {
    process: name,
    requests,
    p50Us,
    userUs: per('userUs'),
    systemUs: per('systemUs'),
    busiestThreadUs: busiest / requests,
    voluntary: per('voluntary'),
    involuntary: per('involuntary'),
    minorFaults: per('minorFaults'),
    threads: b.threads,
    syscalls: syscalls && new Map([...syscalls].map(([k, v]) => [k, v / requests])),
  };
}

/** The per-request table: one column per process, syscalls that occur at least once per 20 requests. */
export function formatPerRequest(rows: PerRequest[]): string {
  const names = new Set<string>();
  for (const r of rows) for (const [k, v] of r.syscalls ?? []) if (v >= 0.05) names.add(k);
  const lines: Array<[string, ...string[]]> = [
    ['per request, c=1', ...rows.map((r) => r.process)],
    ['requests (each pass)', ...rows.map((r) => String(r.requests))],
    ['latency p50, us', ...rows.map((r) => r.p50Us.toFixed(0))],
    [
      'CPU user + system, us',
      ...rows.map((r) => `${r.userUs.toFixed(0)} + ${r.systemUs.toFixed(0)}`),
    ],
    ['  of it the busiest thread, us', ...rows.map((r) => r.busiestThreadUs.toFixed(0))],
    [
      'context switches vol / invol',
      ...rows.map((r) => `${r.voluntary.toFixed(2)} / ${r.involuntary.toFixed(2)}`),
    ],
    ['minor page faults', ...rows.map((r) => r.minorFaults.toFixed(2))],
    ['threads', ...rows.map((r) => String(r.threads))],
  ];
  if (names.size > 0) {
    const total = (r: PerRequest) => [...(r.syscalls?.values() ?? [])].reduce((s, v) => s + v, 0);
    lines.push(['syscalls (strace -c -f), all', ...rows.map((r) => total(r).toFixed(2))]);
    for (const n of [...names].sort())
      lines.push([`  ${n}`, ...rows.map((r) => (r.syscalls?.get(n) ?? 0).toFixed(2))]);
  }
  const width = Math.max(...lines.map((l) => l[0].length));
  return lines
    .map(
      ([label, ...cells]) => `${label.padEnd(width)}  ${cells.map((c) => c.padStart(12)).join('')}`,
    )
    .join('\n');
}

/**
 * What one small request costs the proxy (and the Go peer, when given) at
 * concurrency 1, in kernel counts rather than time: syscalls, context
 * switches, page faults, CPU split by user/system and by thread. Counts do
 * not depend on how busy the shared box is; they show whether a c=1 premium
 * comes from extra wake-ups and syscalls or from the same work done slower.
 */
export async function runPerRequest(
  options: BenchOptions,
  paths: { distDir: string; root: string },
  children: ChildProcesses,
  log: (line: string) => void,
): Promise<PerRequest[]> {
  const backend = await startFirstBackend(options, paths, children, log, 'the per-request counts');
  const rows: PerRequest[] = [];
  /** Counts one started process's requests, then stops it. */
  const measure = async (name: string, started: { port: number; process: Pinned }) => {
    const http = new HttpClient('127.0.0.1', started.port, 1);
    try {
      rows.push(
        await measureOne(name, started.process, http, options.perRequest, options.cacheDir),
      );
    } finally {
      http.close();
      await started.process.stop();
    }
  };
  try {
    if (options.modes.includes('proxy')) {
      await measure(
        'proxy',
        await startProxyProcess(
          backend.address,
          options,
          paths.distDir,
          `per-request-${backend.id}`,
          children,
        ),
      );
    }
    if (options.modes.includes('rest-proxy') && options.restProxyBin) {
      await measure(
        'rest-proxy',
        await startRestProxy(
          options.restProxyBin,
          backend.address,
          options.proxyCpus,
          options.nice,
          options.cacheDir,
          children,
        ),
      );
    }
  } finally {
    await backend.process.stop();
  }
  log(`backend ${backend.id}; small JSON request (add/sub INT32 [1,16] x2), one at a time\n`);
  log(formatPerRequest(rows));
  return rows;
}
