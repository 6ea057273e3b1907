import { simpleRequest } from '../../helpers/proxy-harness';

/** One client request of a load run. */
export interface Sample {
  /** performance.now() when the request was sent. */
  startedAt: number;
  latencyMs: number;
  status: number;
  /** Response body, kept for failures only. */
  body?: string;
}

export interface LoadOptions {
  url: string;
  /** Concurrent clients, each sending one request after another. */
  clients: number;
  durationMs: number;
  body?: unknown;
  model?: string;
}

const SIMPLE_BODY = JSON.stringify(
  simpleRequest(
    Array.from({ length: 16 }, (_, i) => i),
    Array.from({ length: 16 }, () => 1),
  ),
);

/**
 * Closed-loop load: `clients` loops each sending the next request when the
 * previous one answered, for `durationMs`. Node's fetch keeps connections
 * alive, so this measures the proxy, not TCP setup.
 */
export async function runLoad(options: LoadOptions): Promise<Sample[]> {
  const samples: Sample[] = [];
  const target = `${options.url}/v2/models/${options.model ?? 'simple'}/infer`;
  const body = options.body === undefined ? SIMPLE_BODY : JSON.stringify(options.body);
  const end = performance.now() + options.durationMs;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const startedAt = performance.now();
      const res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await res.text();
      const sample: Sample = {
        startedAt,
        latencyMs: performance.now() - startedAt,
        status: res.status,
      };
      if (res.status !== 200) sample.body = text;
      samples.push(sample);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  return samples;
}

/** Nearest-rank percentile; `p` in (0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * The value of one sample of /metrics, e.g. metric('triton_proxy_breaker_state', { server: 't1' });
 * the sum over label sets that match when several do; 0 when none does.
 */
export async function scrapeMetric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      found[pair[1]!] = pair[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) total += Number(m[3]);
  }
  return total;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `simple` request with extra request-level parameters (e.g. sequence_id). */
export function simpleWithParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return {
    ...simpleRequest(new Array<number>(16).fill(2), new Array<number>(16).fill(1)),
    parameters,
  };
}

export function inferUrl(url: string, model = 'simple'): string {
  return `${url}/v2/models/${model}/infer`;
}
