/** How long to wait before a retry; `retry` is 0 for the first retry. */
export interface Backoff {
  delay(retry: number): number;
}

export interface ExponentialBackoffOptions {
  /** Ceiling of the first retry's delay, in ms; doubled for each further retry. */
  baseMs: number;
  /** No delay ever exceeds this, in ms. */
  capMs: number;
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: delay = random(0, min(cap, base * 2^retry)).
 * Full jitter (rather than "base plus a little noise") spreads the retries of
 * many proxies that failed at the same moment over the whole window, which is
 * what keeps a recovering server from being hit by a synchronized wave.
 */
export class ExponentialBackoff implements Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor(options: ExponentialBackoffOptions) {
    if (!(options.baseMs >= 0) || !Number.isFinite(options.baseMs)) {
      throw new RangeError(`backoff baseMs must be a finite number >= 0, got ${options.baseMs}`);
    }
    if (!(options.capMs >= options.baseMs) || !Number.isFinite(options.capMs)) {
      throw new RangeError(
        `backoff capMs must be finite and >= baseMs (${options.baseMs}), got ${options.capMs}`,
      );
    }
    this.baseMs = options.baseMs;
    this.capMs = options.capMs;
    this.random = options.random ?? Math.random;
  }

  /** The upper bound of the jittered delay for this retry. */
  ceiling(retry: number): number {
    // 2 ** retry overflows to Infinity for large retry counts; min() then yields the cap.
    return Math.min(this.capMs, this.baseMs * 2 ** Math.max(0, retry));
  }

  delay(retry: number): number {
    return this.random() * this.ceiling(retry);
  }
}
