export interface LoadOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** One request; rejects on failure. */
  once: () => Promise<void>;
  /** Called when the timed window opens and closes (CPU and memory sampling). */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

export interface LoadResult {
  /** Requests completed inside the timed window. */
  completed: number;
  errors: number;
  firstError?: string;
  /** Length of the timed window actually observed, ms. */
  elapsedMs: number;
  /** Latencies of requests completed inside the window, ms, sorted. */
  latenciesMs: Float64Array;
}

/**
 * A closed loop: `concurrency` workers each send the next request when the
 * previous one answers. Requests that finish during warmup are not counted;
 * the window closes at `durationMs` and workers stop after their current
 * request.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stopping = false;
  let windowStart = 0;
  let windowEnd = 0;

  const worker = async () => {
    while (!stopping) {
      const start = performance.now();
      try {
        await options.once();
        if (measuring) latencies.push(performance.now() - start);
      } catch (err) {
        if (measuring) errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // A failing target must not turn the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };

  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((r) => setTimeout(r, options.warmupMs));
  options.onWindowStart?.();
  windowStart = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, options.durationMs));
  measuring = false;
  windowEnd = performance.now();
  options.onWindowEnd?.();
  stopping = true;
  await Promise.all(workers);

  const sorted = Float64Array.from(latencies).sort();
  return {
    completed: latencies.length,
    errors,
    firstError,
    elapsedMs: windowEnd - windowStart,
    latenciesMs: sorted,
  };
}

/** The q-quantile (0..1) of sorted values; NaN when empty. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
