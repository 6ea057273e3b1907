import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { invalidRequest } from '../errors';

// Accept ids a client sends if they are short and printable; anything else is replaced.
const VALID_ID = /^[\x21-\x7e]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && VALID_ID.test(given)) return given;
  return randomUUID();
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A valid W3C traceparent header and its trace id, or undefined. */
export function traceOf(
  req: IncomingMessage,
): { traceparent: string; traceId: string } | undefined {
  const value = req.headers.traceparent;
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m || m[1] === '00000000000000000000000000000000') return undefined;
  return { traceparent: value, traceId: m[1]! };
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
