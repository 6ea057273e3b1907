import { randomUUID } from 'node:crypto';

// Accept ids a client sends if they are short and printable; anything else is replaced.
const VALID_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The request id of one request, for every protocol: the client's own
 * (`X-Request-ID` header or `x-request-id` gRPC metadata) when it is usable,
 * else a new one.
 */
export function acceptRequestId(given: unknown): string {
  if (typeof given === 'string' && VALID_ID.test(given)) return given;
  return randomUUID();
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A valid W3C traceparent value and its trace id, or undefined. */
export function parseTraceparent(
  value: unknown,
): { traceparent: string; traceId: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m || m[1] === '00000000000000000000000000000000') return undefined;
  return { traceparent: value, traceId: m[1]! };
}
