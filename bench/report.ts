import type { Measurement } from './measure';

export interface ProxyMemory {
  backend: string;
  idleRssMbAtStart: number;
  idleRssMbAtEnd: number;
  peakRssMb: number;
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
      (d) => d.mode === 'direct' && d.backend === m.backend && d.caseId === m.caseId,
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

export function formatMemory(memory: ProxyMemory[]): string {
  return memory
    .map(
      (m) =>
        `proxy RSS (${m.backend} run): idle at start ${m.idleRssMbAtStart.toFixed(0)} MB, ` +
        `peak ${m.peakRssMb.toFixed(0)} MB, idle at end ${m.idleRssMbAtEnd.toFixed(0)} MB`,
    )
    .join('\n');
}

export const LEGEND = `MB = 10^6 bytes of tensor data (JSON cases: the raw FP32 bytes they encode); "in" is client to model.
proxy us/req and us/MB: proxy process CPU (user+system, all threads, /proc/<pid>/stat) over the timed window,
per request and per MB moved (in + out); "proxy core": that CPU as a fraction of one core.
x req/s and x p50: this row / direct (grpc-js client), same backend and case, same run.
proxy is REST through the proxy, proxy-grpc the same grpc-js client as direct through the proxy's gRPC front end.`;
