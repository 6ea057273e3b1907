import type { Measurement } from './measure';

/** RSS of the process in the middle (the proxy or the Go peer) over one backend's run. */
export interface ProcessMemory {
  backend: string;
  process: 'proxy' | 'rest-proxy';
  idleRssMbAtStart: number;
  /** RSS one second after the c=256 case (connections and their buffers still open). */
  afterHighConcurrencyRssMb?: number;
  /**
   * RSS once the c=256 burst has been over long enough for the proxy's idle
   * heap trim (src/heap-trim.ts) to have run.
   */
  afterIdleTrimRssMb?: number;
  peakRssMb: number;
  idleRssMbAtEnd: number;
}

const COLUMNS = [
  'backend',
  'case',
  'path',
  'conc',
  'req/s',
  'p50 ms',
  'p99 ms',
  'MB/s in',
  'MB/s out',
  'proxy us/req',
  'proxy us/MB',
  'proxy core',
  'waited',
  'peak RSS MB',
  'x req/s',
  'x p50',
  'err',
] as const;

function fixed(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toFixed(digits);
}

function significant(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * One row per measurement; the proxy row carries the through-proxy/direct
 * ratios of the same case and backend from the same run.
 */
export function formatTable(rows: Measurement[]): string {
  const lines: string[][] = [[...COLUMNS]];
  for (const m of rows) {
    const direct = rows.find(
      (d) =>
        d.mode === 'direct' && d.backend === m.backend && d.caseId === m.caseId && d.rep === m.rep,
    );
    const ratio = m.mode !== 'direct' && direct ? m.reqPerSec / direct.reqPerSec : undefined;
    const latencyRatio = m.mode !== 'direct' && direct ? m.p50Ms / direct.p50Ms : undefined;
    lines.push([
      m.backend,
      m.caseId,
      m.mode,
      String(m.concurrency),
      significant(m.reqPerSec),
      significant(m.p50Ms),
      significant(m.p99Ms),
      significant(m.mbPerSecIn),
      significant(m.mbPerSecOut),
      fixed(m.proxyCpuUsPerReq, 0),
      fixed(m.proxyCpuUsPerMb, 0),
      fixed(m.proxyCpuLoad, 2),
      fixed(m.proxyRunQueueWaitShare, 2),
      fixed(m.proxyRssPeakMb, 0),
      fixed(ratio, 2),
      fixed(latencyRatio, 2),
      String(m.errors),
    ]);
  }
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l, row) => {
      const text = l
        .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join('  ');
      return row === 0 ? `${text}\n${'-'.repeat(text.length)}` : text;
    })
    .join('\n');
}

export function formatMemory(memory: ProcessMemory[]): string {
  return memory
    .map(
      (m) =>
        `${m.process} RSS (${m.backend} run): idle at start ${m.idleRssMbAtStart.toFixed(0)} MB, ` +
        (m.afterHighConcurrencyRssMb !== undefined
          ? `after c=256 ${m.afterHighConcurrencyRssMb.toFixed(0)} MB, `
          : '') +
        (m.afterIdleTrimRssMb !== undefined
          ? `after its idle trim ${m.afterIdleTrimRssMb.toFixed(0)} MB, `
          : '') +
        `peak ${m.peakRssMb.toFixed(0)} MB, idle at end ${m.idleRssMbAtEnd.toFixed(0)} MB`,
    )
    .join('\n');
}

function median(values: number[]): number | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const SUMMARY_COLUMNS = [
  'backend',
  'case',
  'conc',
  'us/req proxy',
  'us/req peer',
  'CPU proxy/peer',
  'req/s proxy',
  'req/s peer',
  'req/s direct',
  'proxy/peer',
  'proxy/direct',
  'p50 ms proxy',
  'p50 ms peer',
  'p50 ms direct',
  '+p50 proxy',
  '+p50 peer',
] as const;

/**
 * Medians over the repetitions of each (backend, case, path), side by side:
 * the proxy against kserve/rest-proxy ("peer") and direct gRPC, as ratios
 * from the same run. "+p50" is the latency the hop adds to direct gRPC's p50.
 */
export function formatSummary(
  rows: Measurement[],
  memory: ProcessMemory[],
  repeat: number,
): string {
  const keys = [...new Set(rows.map((r) => `${r.backend}\u0000${r.caseId}`))];
  const lines: string[][] = [[...SUMMARY_COLUMNS]];
  for (const key of keys) {
    const [backend, caseId] = key.split('\u0000') as [string, string];
    const of = (mode: string) =>
      rows.filter((r) => r.backend === backend && r.caseId === caseId && r.mode === mode);
    const pick = (mode: string, f: (m: Measurement) => number | undefined) =>
      median(of(mode).map((m) => f(m) ?? Number.NaN));
    const proxy = of('proxy');
    const concurrency = (proxy[0] ?? of('direct')[0])?.concurrency ?? 0;
    const cpu = pick('proxy', (m) => m.proxyCpuUsPerReq);
    const cpuPeer = pick('rest-proxy', (m) => m.proxyCpuUsPerReq);
    const rps = pick('proxy', (m) => m.reqPerSec);
    const rpsPeer = pick('rest-proxy', (m) => m.reqPerSec);
    const rpsDirect = pick('direct', (m) => m.reqPerSec);
    const p50 = pick('proxy', (m) => m.p50Ms);
    const p50Peer = pick('rest-proxy', (m) => m.p50Ms);
    const p50Direct = pick('direct', (m) => m.p50Ms);
    const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
    const minus = (a?: number, b?: number) =>
      a !== undefined && b !== undefined ? a - b : undefined;
    lines.push([
      backend,
      caseId,
      String(concurrency),
      fixed(cpu, 0),
      fixed(cpuPeer, 0),
      fixed(ratio(cpu, cpuPeer), 2),
      significant(rps),
      significant(rpsPeer),
      significant(rpsDirect),
      fixed(ratio(rps, rpsPeer), 2),
      fixed(ratio(rps, rpsDirect), 2),
      fixed(p50, 3),
      fixed(p50Peer, 3),
      fixed(p50Direct, 3),
      fixed(minus(p50, p50Direct), 3),
      fixed(minus(p50Peer, p50Direct), 3),
    ]);
  }
  const table = alignedTable(lines);
  const rss = (process: string, f: (m: ProcessMemory) => number | undefined) =>
    median(memory.filter((m) => m.process === process).map((m) => f(m) ?? Number.NaN));
  const memoryLine = (['proxy', 'rest-proxy'] as const)
    .filter((p) => memory.some((m) => m.process === p))
    .map(
      (p) =>
        `${p} idle ${fixed(
          rss(p, (m) => m.idleRssMbAtStart),
          0,
        )} MB, after c=256 ` +
        `${fixed(
          rss(p, (m) => m.afterHighConcurrencyRssMb),
          0,
        )} MB, after idle trim ${fixed(
          rss(p, (m) => m.afterIdleTrimRssMb),
          0,
        )} MB, peak ${fixed(
          rss(p, (m) => m.peakRssMb),
          0,
        )} MB`,
    )
    .join('; ');
  return `summary: medians of ${repeat} repetition(s); peer = kserve/rest-proxy\n${table}\nRSS: ${memoryLine}`;
}

const GRPC_SUMMARY_COLUMNS = [
  'backend',
  'case',
  'conc',
  'us/req grpc',
  'us/req rest',
  'CPU grpc/rest',
  'req/s grpc',
  'req/s direct',
  'grpc/direct',
  'p50 ms grpc',
  '+p50 grpc',
] as const;

/**
 * The gRPC front end beside the REST path and direct gRPC: medians over the
 * repetitions, and the ratios as medians of each repetition's own ratio
 * (the paths of one repetition ran back to back, so they saw the same box).
 */
export function formatGrpcSummary(rows: Measurement[]): string {
  const grpcRows = rows.filter((r) => r.mode === 'proxy-grpc');
  const keys = [...new Set(grpcRows.map((r) => `${r.backend}\u0000${r.caseId}`))];
  const lines: string[][] = [[...GRPC_SUMMARY_COLUMNS]];
  for (const key of keys) {
    const [backend, caseId] = key.split('\u0000') as [string, string];
    const of = (mode: string, rep?: number) =>
      rows.filter(
        (r) =>
          r.backend === backend &&
          r.caseId === caseId &&
          r.mode === mode &&
          (rep === undefined || r.rep === rep),
      );
    const pick = (mode: string, f: (m: Measurement) => number | undefined) =>
      median(of(mode).map((m) => f(m) ?? Number.NaN));
    /** This gRPC row's value over the same repetition's value on path `other`. */
    const perRep = (other: string, f: (m: Measurement) => number | undefined) =>
      median(
        of('proxy-grpc').map((g) => {
          const o = of(other, g.rep)[0];
          const x = f(g);
          const y = o ? f(o) : undefined;
          return x !== undefined && y ? x / y : Number.NaN;
        }),
      );
    const p50 = pick('proxy-grpc', (m) => m.p50Ms);
    const p50Direct = pick('direct', (m) => m.p50Ms);
    lines.push([
      backend,
      caseId,
      String(of('proxy-grpc')[0]?.concurrency ?? 0),
      fixed(
        pick('proxy-grpc', (m) => m.proxyCpuUsPerReq),
        0,
      ),
      fixed(
        pick('proxy', (m) => m.proxyCpuUsPerReq),
        0,
      ),
      fixed(
        perRep('proxy', (m) => m.proxyCpuUsPerReq),
        2,
      ),
      significant(pick('proxy-grpc', (m) => m.reqPerSec)),
      significant(pick('direct', (m) => m.reqPerSec)),
      fixed(
        perRep('direct', (m) => m.reqPerSec),
        2,
      ),
      fixed(p50, 3),
      fixed(p50 !== undefined && p50Direct !== undefined ? p50 - p50Direct : undefined, 3),
    ]);
  }
  const table = alignedTable(lines);
  return `gRPC front end (proxy-grpc) against REST through the proxy and direct gRPC; ratios are medians of per-repetition ratios\n${table}`;
}

export const LEGEND = `MB = 10^6 bytes of tensor data (JSON cases: the raw FP32 bytes they encode); "in" is client to model.
proxy us/req and us/MB: proxy process CPU (user+system, all threads, /proc/<pid>/stat) over the timed window,
per request and per MB moved (in + out); "proxy core": that CPU as a fraction of one core; "waited": share
of the window its main thread was runnable but waiting for the CPU (other work on the core; /proc/<pid>/schedstat).
"proxy" columns describe the process in the middle: the proxy, or rest-proxy in its rows.
x req/s and x p50: this row / direct (grpc-js client), same backend and case, same run.
proxy is REST through the proxy, proxy-grpc the same grpc-js client as direct through the proxy's gRPC front end.`;

/** Rows of cells as aligned text: the first two columns left-aligned, numbers right-aligned, the header ruled. */
function alignedTable(lines: string[][]): string {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l, row) => {
      const text = l
        .map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join('  ');
      return row === 0 ? `${text}\n${'-'.repeat(text.length)}` : text;
    })
    .join('\n');
}
