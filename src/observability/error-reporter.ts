import type { ProxyError } from '../errors';
import type { Logger } from './logger';

/** One failed request as the status page lists it. */
export interface RecentError {
  /** ms since epoch. */
  readonly at: number;
  readonly code: string;
  readonly status: number;
  readonly message: string;
  readonly server: string | undefined;
  readonly path: string;
  readonly requestId: string;
}

/** Failed requests since start by code, and the last few of them, newest first. */
export interface ErrorSummary {
  readonly byCode: ReadonlyArray<{ code: string; count: number; lastAt: number }>;
  readonly recent: readonly RecentError[];
}

/** Messages may quote request content (model names, shapes): keep the ring's memory bounded. */
const MESSAGE_LIMIT = 300;

interface Slot {
  at: number;
  code: string;
  status: number;
  message: string;
  server: string | undefined;
  path: string;
  requestId: string;
}

/**
 * Logs failed requests without flooding: client errors at debug; server-side
 * errors at warn, at most one line per error code per interval, with the
 * count of the ones left out. An outage then costs a line a second, not a
 * line per request.
 */
export class ErrorReporter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  /** Every code seen (a fixed set: the domain error codes) with its count and last time. */
  private readonly counts = new Map<string, { count: number; lastAt: number }>();
  /** The last `recentLimit` failures in slots reused in turn: an outage allocates nothing here. */
  private readonly ring: Slot[] = [];
  private next = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
    private readonly recentLimit = 50,
  ) {}

  report(err: ProxyError, meta: { requestId: string; path: string; traceId?: string }): void {
    this.remember(err, meta);
    const fields: Record<string, unknown> = {
      code: err.code,
      status: err.status,
      requestId: meta.requestId,
      path: meta.path,
      error: err.message,
    };
    if (err.server) fields.server = err.server;
    if (meta.traceId) fields.traceId = meta.traceId;
    if (err.status < 500 && err.code !== 'OVERLOADED') {
      if (this.logger.isDebugEnabled()) this.logger.debug('request failed', fields);
      return;
    }
    const now = this.now();
    const entry = this.last.get(err.code);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (entry && entry.suppressed > 0) fields.suppressedSinceLast = entry.suppressed;
    this.last.set(err.code, { at: now, suppressed: 0 });
    this.logger.warn('request failed', fields);
  }

  /** Counts by code (most frequent first) and the last failures, newest first. */
  summary(): ErrorSummary {
    const byCode = [...this.counts].map(([code, c]) => ({
      code,
      count: c.count,
      lastAt: c.lastAt,
    }));
    byCode.sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
    const recent: RecentError[] = [];
    for (let i = 1; i <= this.ring.length; i++) {
      const slot = this.ring[(this.next - i + this.ring.length) % this.ring.length]!;
      recent.push({ ...slot });
    }
    return { byCode, recent };
  }

  private remember(err: ProxyError, meta: { requestId: string; path: string }): void {
    const at = this.now();
    const counted = this.counts.get(err.code);
    if (counted === undefined) this.counts.set(err.code, { count: 1, lastAt: at });
    else {
      counted.count++;
      counted.lastAt = at;
    }
    if (this.recentLimit <= 0) return;
    const message =
      err.message.length > MESSAGE_LIMIT ? `${err.message.slice(0, MESSAGE_LIMIT)}…` : err.message;
    let slot = this.ring[this.next];
    if (slot === undefined) {
      slot = { at, code: '', status: 0, message: '', server: undefined, path: '', requestId: '' };
      this.ring.push(slot);
    }
    slot.at = at;
    slot.code = err.code;
    slot.status = err.status;
    slot.message = message;
    slot.server = err.server;
    slot.path = meta.path;
    slot.requestId = meta.requestId;
    this.next = (this.next + 1) % this.recentLimit;
  }
}
