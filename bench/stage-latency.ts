import { get } from 'node:http';

export const STAGES = ['parse', 'queue', 'upstream', 'encode'] as const;
export type StageName = (typeof STAGES)[number];

/** Cumulative bucket counts of triton_proxy_stage_duration_seconds, per stage, by upper bound. */
export type StageBuckets = Map<string, Map<number, number>>;

export interface StageQuantiles {
  caseId: string;
  backend?: string;
  /** Requests per stage observed during the case (all of its repetitions). */
  count: Partial<Record<StageName, number>>;
  /** p95 per stage in seconds, interpolated within buckets as Prometheus' histogram_quantile does. */
  p95: Partial<Record<StageName, number>>;
}

const BUCKET_LINE =
  /^triton_proxy_stage_duration_seconds_bucket\{([^}]*)\}\s+([0-9.eE+-]+|\+Inf|NaN)\s*$/;

function labelValue(labels: string, name: string): string | undefined {
  const match = new RegExp(`(?:^|,)\\s*${name}="([^"]*)"`).exec(labels);
  return match?.[1];
}

/** Reads the stage histogram's buckets out of a /metrics body. */
export function parseStageBuckets(exposition: string): StageBuckets {
  const stages: StageBuckets = new Map();
  for (const line of exposition.split('\n')) {
    const match = BUCKET_LINE.exec(line);
    if (!match) continue;
    const stage = labelValue(match[1]!, 'stage');
    const le = labelValue(match[1]!, 'le');
    if (stage === undefined || le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    let buckets = stages.get(stage);
    if (!buckets) stages.set(stage, (buckets = new Map()));
    buckets.set(bound, Number(match[2]));
  }
  return stages;
}

/**
 * The q-quantile of the observations between two scrapes, the way PromQL's
 * histogram_quantile reads a rate of buckets: linear within the bucket that
 * holds the rank, the lowest bucket starting at 0, and the highest finite
 * bound when the rank falls in +Inf. Undefined when nothing was observed.
 */
export function quantileBetween(
  q: number,
  before: Map<number, number> | undefined,
  after: Map<number, number>,
): { value: number; count: number } | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((le) => (after.get(le) ?? 0) - (before?.get(le) ?? 0));
  const count = delta[delta.length - 1] ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  for (let i = 0; i < bounds.length; i++) {
    if (delta[i]! < rank) continue;
    const upper = bounds[i]!;
    if (upper === Infinity) return { value: bounds[i - 1] ?? 0, count };
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const below = i === 0 ? 0 : delta[i - 1]!;
    const inBucket = delta[i]! - below;
    const value = inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    return { value, count };
  }
  return undefined;
}

/** p95 per stage of what the proxy observed between two scrapes. */
export function stageQuantiles(
  caseId: string,
  before: StageBuckets,
  after: StageBuckets,
): StageQuantiles {
  const result: StageQuantiles = { caseId, count: {}, p95: {} };
  for (const stage of STAGES) {
    const buckets = after.get(stage);
    if (!buckets) continue;
    const q = quantileBetween(0.95, before.get(stage), buckets);
    if (!q) continue;
    result.p95[stage] = q.value;
    result.count[stage] = q.count;
  }
  return result;
}

export function formatStageQuantiles(s: StageQuantiles): string {
  const parts = STAGES.map((stage) => {
    const v = s.p95[stage];
    return v === undefined ? `${stage} -` : `${stage} ${(v * 1000).toFixed(2)} ms`;
  });
  return `stage p95 through the proxy, ${s.caseId}: ${parts.join(', ')}`;
}

/** GET /metrics of a proxy. */
export function scrapeStageBuckets(port: number): Promise<StageBuckets> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`/metrics answered ${res.statusCode}`));
        else resolve(parseStageBuckets(Buffer.concat(chunks).toString('utf8')));
      });
      res.on('error', reject);
    }).on('error', reject);
  });
}
