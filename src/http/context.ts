import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { invalidRequest } from '../errors';
import { acceptRequestId, parseTraceparent } from '../observability';

export function requestIdOf(req: IncomingMessage): string {
  return acceptRequestId(req.headers['x-request-id']);
}

/** A valid W3C traceparent header and its trace id, or undefined. */
export function traceOf(
  req: IncomingMessage,
): { traceparent: string; traceId: string } | undefined {
  return parseTraceparent(req.headers.traceparent);
}

/** X-Request-Timeout-Ms: a client's own bound on the request, in milliseconds; undefined when absent. */
export function requestTimeoutOf(req: IncomingMessage): number | undefined {
  const value = req.headers['x-request-timeout-ms'];
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' && /^[0-9]+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw invalidRequest(
      `X-Request-Timeout-Ms must be a positive integer number of milliseconds, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/**
 * The Cache-Control request directives the response cache honours: no-store
 * (neither read nor write) and no-cache (do not read; the fresh answer
 * refreshes the entry). `max-age=0` means the same as no-cache.
 */
export function cacheControlOf(req: IncomingMessage): { noStore: boolean; noCache: boolean } {
  const value = req.headers['cache-control'];
  if (value === undefined || value === '') return NO_DIRECTIVES;
  let noStore = false;
  let noCache = false;
  for (const raw of value.split(',')) {
    const directive = raw.trim().toLowerCase();
    if (directive === 'no-store') noStore = true;
    else if (directive === 'no-cache' || directive === 'max-age=0') noCache = true;
  }
  return { noStore, noCache };
}

const NO_DIRECTIVES = Object.freeze({ noStore: false, noCache: false });

/** The Triton server a control call names by `?server=` or the X-Triton-Server header; undefined leaves it to the proxy. */
export function targetServerOf(req: Request): string | undefined {
  const q = req.query.server;
  if (q !== undefined && typeof q !== 'string')
    throw invalidRequest("query parameter 'server' must be a single name");
  return q ?? req.get('x-triton-server');
}
