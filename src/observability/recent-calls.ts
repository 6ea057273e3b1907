/** What a RecentCalls window says about the last `windowSeconds`. */
export interface RecentCallsSummary {
  readonly windowSeconds: number;
  readonly calls: number;
  readonly errors: number;
  /** errors / calls; null when there were no calls. */
  readonly errorRatio: number | null;
  /**
   * 99th percentile of the calls' durations, as the upper bound of the
   * latency bucket it falls in (buckets grow by 20%, so it reads at most 20%
   * high, and calls over two minutes read as two minutes); null when there
   * were no calls.
   */
  readonly p99Seconds: number | null;
}

export interface RecentCallsOptions {
  /** Length of the window. Default 60 s. */
  windowMs?: number;
  /** The window slides by windowMs / slots. Default 12 (5 s steps for 60 s). */
  slots?: number;
}

/** Latency bucket upper bounds, seconds: 0.5 ms growing by 20% up to ~2 minutes. */
const BOUNDS: Float64Array = (() => {
  const bounds: number[] = [];
  for (let b = 0.0005; b < 120; b *= 1.2) bounds.push(b);
  return Float64Array.from(bounds);
})();
/** One more bucket for anything above the last bound. */
const BUCKETS = BOUNDS.length + 1;

/**
 * Calls, errors and a latency histogram over a sliding window, for the
 * status page's "recent error rate and p99" per server. The window is a ring
 * of time slots in typed arrays allocated once: recording a call finds its
 * slot (clearing it when its time has passed), bumps two counters and one
 * bucket found by binary search, and allocates nothing. Reading sums the
 * slots still inside the window; it runs per status request, not per call.
 */
export class RecentCalls {
  private readonly slotMs: number;
  private readonly slots: number;
  /** Slot epoch (time / slotMs) each slot's counts belong to; -1 when empty. */
  private readonly epochs: Float64Array;
  private readonly calls: Uint32Array;
  private readonly errors: Uint32Array;
  /** slots x BUCKETS latency counts. */
  private readonly latency: Uint32Array;

  constructor(options: RecentCallsOptions = {}) {
    const windowMs = options.windowMs ?? 60_000;
    this.slots = Math.max(1, Math.floor(options.slots ?? 12));
    this.slotMs = windowMs / this.slots;
    this.epochs = new Float64Array(this.slots).fill(-1);
    this.calls = new Uint32Array(this.slots);
    this.errors = new Uint32Array(this.slots);
    this.latency = new Uint32Array(this.slots * BUCKETS);
  }

  get windowSeconds(): number {
    return (this.slotMs * this.slots) / 1000;
  }

  /**
   * One finished call: `seconds` it took, whether it failed, and `nowMs`
   * on the clock the reader uses (performance.now() in the proxy).
   */
  record(seconds: number, failed: boolean, nowMs: number): void {
    const epoch = Math.floor(nowMs / this.slotMs);
    const slot = epoch % this.slots;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.calls[slot] = 0;
      this.errors[slot] = 0;
      this.latency.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS);
    }
    this.calls[slot]!++;
    if (failed) this.errors[slot]!++;
    this.latency[slot * BUCKETS + bucketOf(seconds)]!++;
  }

  summary(nowMs: number): RecentCallsSummary {
    const current = Math.floor(nowMs / this.slotMs);
    let calls = 0;
    let errors = 0;
    const counts = new Float64Array(BUCKETS);
    for (let s = 0; s < this.slots; s++) {
      const epoch = this.epochs[s]!;
      if (epoch < 0 || epoch <= current - this.slots || epoch > current) continue;
      calls += this.calls[s]!;
      errors += this.errors[s]!;
      for (let b = 0; b < BUCKETS; b++) counts[b]! += this.latency[s * BUCKETS + b]!;
    }
    return {
      windowSeconds: this.windowSeconds,
      calls,
      errors,
      errorRatio: calls === 0 ? null : errors / calls,
      p99Seconds: calls === 0 ? null : quantileBound(counts, calls, 0.99),
    };
  }
}

function bucketOf(seconds: number): number {
  // First bound >= seconds; NaN and negatives land in the first bucket.
  if (!(seconds > BOUNDS[0]!)) return 0;
  let lo = 0;
  let hi = BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (BOUNDS[mid]! < seconds) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function quantileBound(counts: Float64Array, total: number, q: number): number {
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < BUCKETS; b++) {
    seen += counts[b]!;
    if (seen >= rank) return BOUNDS[Math.min(b, BOUNDS.length - 1)]!;
  }
  return BOUNDS[BOUNDS.length - 1]!;
}
