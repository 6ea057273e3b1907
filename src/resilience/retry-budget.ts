export interface RetryBudgetOptions {
  /** Retries allowed as a fraction of the requests seen in the window (0.2 = one retry per five requests). */
  ratio: number;
  /** Retries per second always allowed, so a trickle of traffic can still retry. */
  minRetriesPerSecond: number;
  /** Length of the sliding window, in ms. Default 10 000. */
  windowMs?: number;
  /** Number of buckets the window slides by. Default 10. */
  buckets?: number;
  /** Milliseconds clock; injectable for tests. Default Date.now. */
  now?: () => number;
}

/**
 * Caps retries at a fraction of recent traffic, so a fleet that is failing
 * sees at most (1 + ratio) times its normal load instead of maxAttempts times.
 *
 * Counts live in a ring of buckets (Finagle's RetryBudget, with counts
 * instead of tokens): a retry is allowed while
 *   retries < ratio * requests + minRetriesPerSecond * windowSeconds
 * over the last `windowMs`. Only original requests are recorded, never the
 * retries themselves, so retries cannot grow their own allowance.
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly floor: number;
  private readonly bucketMs: number;
  private readonly requests: Float64Array;
  private readonly retries: Float64Array;
  private readonly now: () => number;
  private requestTotal = 0;
  private retryTotal = 0;
  /** Absolute index (time / bucketMs) of the newest bucket. */
  private head: number;

  constructor(options: RetryBudgetOptions) {
    const windowMs = options.windowMs ?? 10_000;
    const buckets = options.buckets ?? 10;
    if (!(options.ratio >= 0) || !Number.isFinite(options.ratio)) {
      throw new RangeError(`retry budget ratio must be a finite number >= 0, got ${options.ratio}`);
    }
    if (!(options.minRetriesPerSecond >= 0) || !Number.isFinite(options.minRetriesPerSecond)) {
      throw new RangeError(
        `retry budget minRetriesPerSecond must be a finite number >= 0, got ${options.minRetriesPerSecond}`,
      );
    }
    if (!Number.isInteger(buckets) || buckets < 1) {
      throw new RangeError(`retry budget buckets must be an integer >= 1, got ${buckets}`);
    }
    if (!(windowMs >= buckets)) {
      throw new RangeError(
        `retry budget windowMs must be >= buckets (${buckets}), got ${windowMs}`,
      );
    }
    this.ratio = options.ratio;
    this.floor = (options.minRetriesPerSecond * windowMs) / 1000;
    this.bucketMs = windowMs / buckets;
    this.requests = new Float64Array(buckets);
    this.retries = new Float64Array(buckets);
    this.now = options.now ?? Date.now;
    this.head = Math.floor(this.now() / this.bucketMs);
  }

  /** Count one original request (call once per client request, not per attempt). */
  recordRequest(): void {
    const slot = this.advance();
    this.requests[slot]! += 1;
    this.requestTotal += 1;
  }

  /** Take one retry from the budget; false means the caller must not retry. */
  tryAcquireRetry(): boolean {
    const slot = this.advance();
    if (this.retryTotal + 1 > this.floor + this.ratio * this.requestTotal) return false;
    this.retries[slot]! += 1;
    this.retryTotal += 1;
    return true;
  }

  /** Current window counts, for metrics and tests. */
  snapshot(): { requests: number; retries: number; allowed: number } {
    this.advance();
    return {
      requests: this.requestTotal,
      retries: this.retryTotal,
      allowed: Math.floor(this.floor + this.ratio * this.requestTotal),
    };
  }

  /** Expires buckets that slid out of the window; returns the slot of the current bucket. */
  private advance(): number {
    const size = this.requests.length;
    const index = Math.floor(this.now() / this.bucketMs);
    const stale = index - this.head;
    if (stale > 0) {
      // A jump longer than the window clears every bucket once, not `stale` times.
      const clear = Math.min(stale, size);
      for (let i = 1; i <= clear; i++) {
        const slot = (this.head + i) % size;
        this.requestTotal -= this.requests[slot]!;
        this.retryTotal -= this.retries[slot]!;
        this.requests[slot] = 0;
        this.retries[slot] = 0;
      }
      this.head = index;
    }
    // A clock that steps backwards keeps counting into the newest bucket.
    return this.head % size;
  }
}
