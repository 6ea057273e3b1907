import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// Accept ids a client sends if they are short and printable; anything else is replaced.
const VALID_ID = /^[\x21-\x7e]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && VALID_ID.test(given)) return given;
  return randomUUID();
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A valid W3C traceparent header and its trace id, or undefined. */
export function traceOf(req: IncomingMessage): { traceparent: string; traceId: string } | undefined {
  const value = req.headers.traceparent;
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m || m[1] === '00000000000000000000000000000000') return undefined;
  return { traceparent: value, traceId: m[1]! };
}
