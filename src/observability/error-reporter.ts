import type { ProxyError } from '../errors';
import type { Logger } from './logger';

/**
 * Logs failed requests without flooding: client errors at debug; server-side
 * errors at warn, at most one line per error code per interval, with the
 * count of the ones left out. An outage then costs a line a second, not a
 * line per request.
 */
export class ErrorReporter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  report(err: ProxyError, meta: { requestId: string; path: string; traceId?: string }): void {
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
}
