import { readFileSync } from 'node:fs';

/** The parts of a V8 .cpuprofile (node --cpu-prof) this summary reads. */
interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time outside (idle), (program) and (garbage collector). */
  busyMs: number;
  lines: ProfileLine[];
  /** Self time per area. */
  byArea: Map<string, number>;
  /** Time of samples with the area anywhere on the stack (what the area causes, callees included). */
  inclusiveByArea: Map<string, number>;
}

/** Self time per function (summed over call sites), largest first, and time per area. */
export function summarize(profile: CpuProfile): ProfileSummary {
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, ProfileLine>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (us === 0) continue;
    total += us;
    const f = node.callFrame;
    const where = shortUrl(f.url, f.lineNumber);
    const key = `${f.functionName}@${where}`;
    const line = byFunction.get(key) ?? {
      name: f.functionName || '(anonymous)',
      where,
      selfMs: 0,
      share: 0,
    };
    line.selfMs += us / 1000;
    byFunction.set(key, line);
    const area = areaOf(f.url, f.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + us / 1000);
  }
  const lines = [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs);
  for (const l of lines) l.share = l.selfMs / (total / 1000);
  return {
    totalMs: total / 1000,
    busyMs:
      total / 1000 -
      ['(idle)', '(program)', '(garbage collector)'].reduce((a, k) => a + (byArea.get(k) ?? 0), 0),
    lines,
    byArea,
    inclusiveByArea: inclusive(profile, self),
  };
}

/** Time of samples with the function anywhere on the stack, per function (name and place). */
export function inclusiveByFunction(profile: CpuProfile): Map<string, number> {
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const result = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (f.url === '') continue;
      seen.add(`${f.functionName || '(anonymous)'}  ${shortUrl(f.url, f.lineNumber)}`);
    }
    for (const k of seen) result.set(k, (result.get(k) ?? 0) + us / 1000);
  }
  return result;
}

function inclusive(profile: CpuProfile, self: Map<number, number>): Map<string, number> {
  const parent = new Map<number, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const result = new Map<string, number>();
  for (const [id, us] of self) {
    const areas = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (f.url !== '') areas.add(areaOf(f.url, f.functionName));
    }
    for (const a of areas) result.set(a, (result.get(a) ?? 0) + us / 1000);
  }
  return result;
}

function shortUrl(url: string, line: number): string {
  if (url === '') return '';
  const i = url.lastIndexOf('node_modules/');
  const tail =
    i >= 0
      ? url.slice(i + 'node_modules/'.length)
      : url.replace(/^.*\/dist\//, '').replace(/^file:\/\//, '');
  return `${tail}:${line + 1}`;
}

/** Coarse owner of a function: which library or which part of the proxy. */
function areaOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:'))
    return url.split('/')[0]!.replace(/^node:internal\/?/, 'node:') || url;
  const src = /dist\/src\/([^/]+)/.exec(url);
  if (src) return `proxy:${src[1]}`;
  return url;
}

function main(): void {
  const [file, countText, requestsText] = process.argv.slice(2);
  if (!file) {
    process.stderr.write(
      'usage: node dist/bench/profile-summary.js FILE.cpuprofile [TOP=30] [REQUESTS]\n',
    );
    process.exitCode = 2;
    return;
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { totalMs, busyMs, lines, byArea, inclusiveByArea } = summarize(profile);
  const top = Number(countText ?? 30);
  process.stdout.write(
    `sampled ${totalMs.toFixed(0)} ms of ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms\n\nself time by area:\n`,
  );
  for (const [area, ms] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    process.stdout.write(
      `${((100 * ms) / totalMs).toFixed(1).padStart(6)}%  ${ms.toFixed(0).padStart(7)} ms  ${area}\n`,
    );
  }
  process.stdout.write(
    `\ninclusive time by area (samples with the area anywhere on the stack), share of busy JS time ${busyMs.toFixed(0)} ms:\n`,
  );
  for (const [area, ms] of [...inclusiveByArea].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    process.stdout.write(
      `${((100 * ms) / busyMs).toFixed(1).padStart(6)}%  ${ms.toFixed(0).padStart(7)} ms  ${area}\n`,
    );
  }
  process.stdout.write(`\ntop ${top} functions by self time:\n`);
  for (const l of lines.slice(0, top)) {
    process.stdout.write(
      `${(100 * l.share).toFixed(1).padStart(6)}%  ${l.selfMs.toFixed(0).padStart(7)} ms  ${l.name}  ${l.where}\n`,
    );
  }
  // With the request count, inclusive time becomes microseconds per request.
  const requests = Number(requestsText ?? 0);
  const unit = requests > 0 ? 'us/req' : 'ms';
  const scale = (ms: number) => (requests > 0 ? (ms * 1000) / requests : ms);
  process.stdout.write(`\ntop ${top} functions by inclusive time (${unit}):\n`);
  for (const [name, ms] of [...inclusiveByFunction(profile)]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(
      `${((100 * ms) / busyMs).toFixed(1).padStart(6)}%  ${scale(ms).toFixed(1).padStart(8)}  ${name}\n`,
    );
  }
}

if (require.main === module) main();
