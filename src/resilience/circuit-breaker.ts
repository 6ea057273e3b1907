import { EventEmitter } from 'node:events';
import OpossumBreaker from 'opossum';
import { ProxyError, isProxyError } from '../errors';

export type BreakerState = 'closed' | 'open' | 'half-open';

export type BreakerStateListener = (server: string, from: BreakerState, to: BreakerState) => void;

export interface CircuitBreakerOptions {
  /** Server name; it names the breaker in errors and state-change events. */
  server: string;
  /** Server-fault percentage in the rolling window above which the breaker opens. Default 50. */
  errorThresholdPercentage?: number;
  /** Calls in the rolling window before the breaker may open at all. Default 5. */
  volumeThreshold?: number;
  /** Milliseconds the breaker stays open before it half-opens to let one probe through. Default 5000. */
  resetTimeout?: number;
  /** Length of the rolling statistics window, in ms. Default 10 000. */
  rollingCountTimeout?: number;
  /** Buckets the rolling window slides by. Default 10. */
  rollingCountBuckets?: number;
  /** Which failures count against the server; the rest pass through uncounted. */
  isServerFault?: (err: unknown) => boolean;
}

/**
 * Default classification: a ProxyError counts when the mapping marked it a
 * server fault (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, connection loss);
 * anything else thrown is unexpected and counts, except an AbortError, which
 * says the caller gave up (client gone, shutdown), not that the server failed.
 */
export function defaultIsServerFault(err: unknown): boolean {
  if (isProxyError(err)) return err.serverFault;
  return !(err instanceof Error && err.name === 'AbortError');
}

type Action = () => Promise<unknown>;

// opossum's `fire` passes its arguments to the action: handing it the caller's
// function avoids building a wrapper closure per call.
const invoke = (fn: Action): Promise<unknown> => fn();

/**
 * A per-server circuit breaker on top of opossum, fed only by server faults.
 *
 * Differences from plain opossum, and why:
 * - Client errors (errorFilter) are not failures; opossum counts them as
 *   successes, so a half-open probe answered with e.g. INVALID_ARGUMENT
 *   closes the breaker: the server did answer.
 * - No timeout: every call already carries a gRPC deadline.
 * - When open, execute() rejects with our own ProxyError before touching
 *   opossum, so a rejection neither allocates opossum's error nor counts as
 *   a call in the window.
 * - The window is cleared when the breaker closes. opossum keeps the failures
 *   that opened it, so the first failure after recovery would re-open it at
 *   once; a closed breaker should judge the server on fresh evidence.
 * - Latency percentiles and snapshots are off: the failure check reads the
 *   stats, and with percentiles on that sorts every latency in the window.
 */
export class CircuitBreaker {
  readonly server: string;
  private readonly breaker: OpossumBreaker<[Action], unknown>;
  private readonly rotate = new EventEmitter();
  private readonly rotateTimer: NodeJS.Timeout;
  private readonly buckets: number;
  private readonly listeners: BreakerStateListener[] = [];
  private current: BreakerState = 'closed';
  private stopped = false;

  constructor(options: CircuitBreakerOptions) {
    this.server = options.server;
    const isServerFault = options.isServerFault ?? defaultIsServerFault;
    const rollingCountTimeout = options.rollingCountTimeout ?? 10_000;
    this.buckets = options.rollingCountBuckets ?? 10;
    this.breaker = new OpossumBreaker<[Action], unknown>(invoke, {
      name: options.server,
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
      volumeThreshold: options.volumeThreshold ?? 5,
      resetTimeout: options.resetTimeout ?? 5000,
      rollingCountTimeout,
      rollingCountBuckets: this.buckets,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // We drive bucket rotation so that close() can flush the window.
      rotateBucketController: this.rotate,
      errorFilter: (err: unknown) => !isServerFault(err),
    });
    this.rotateTimer = setInterval(
      () => this.rotate.emit('rotate'),
      Math.max(1, Math.floor(rollingCountTimeout / this.buckets)),
    );
    this.rotateTimer.unref();
    this.breaker.on('open', () => this.transition('open'));
    this.breaker.on('halfOpen', () => this.transition('half-open'));
    this.breaker.on('close', () => {
      for (let i = 0; i < this.buckets; i++) this.rotate.emit('rotate');
      this.transition('closed');
    });
  }

  get state(): BreakerState {
    return this.current;
  }

  /**
   * True when a call now would be rejected: open, half-open with its one probe
   * already in flight, or shut down. Cheap enough for every pick.
   */
  isOpen(): boolean {
    return this.stopped || (!this.breaker.closed && !this.breaker.pendingClose);
  }

  /**
   * Runs fn under the breaker. Rejects with UPSTREAM_UNAVAILABLE (retryable,
   * not a server fault, so the retry loop moves on without counting twice)
   * when the breaker refuses the call; otherwise settles as fn does.
   */
  execute<T>(fn: () => Promise<T>): Promise<T> {
    if (this.isOpen()) return Promise.reject(this.rejection());
    return this.breaker.fire(fn) as Promise<T>;
  }

  /**
   * Subscribe to state changes; returns the unsubscribe function. Listeners
   * run synchronously during the transition; an exception they throw is ignored.
   */
  onStateChange(listener: BreakerStateListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /** Stops timers and refuses further calls; for servers leaving the fleet. */
  shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.rotateTimer);
    this.breaker.shutdown();
    this.listeners.length = 0;
  }

  private rejection(): ProxyError {
    const why = this.stopped
      ? 'has been removed from the fleet'
      : this.current === 'half-open'
        ? 'is being probed after failures (circuit half-open)'
        : 'is failing (circuit open)';
    return new ProxyError('UPSTREAM_UNAVAILABLE', `Triton server '${this.server}' ${why}`, {
      server: this.server,
      serverFault: false,
    });
  }

  private transition(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    for (const listener of this.listeners.slice()) {
      // Listeners run inside opossum's bookkeeping (and its reset timer): one
      // that throws would leave the triggering call unsettled, so its error
      // is dropped here. Listeners are for logs and metrics and must not throw.
      try {
        listener(this.server, from, to);
      } catch {
        continue;
      }
    }
  }
}
