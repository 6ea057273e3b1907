import type { ServerResponse } from 'node:http';
import type { ProxyError } from '../errors';

/** Triton's error body, plus our stable code and the request id. */
export function sendError(res: ServerResponse, err: ProxyError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const fields: Record<string, unknown> = {
    error: err.message,
    code: err.code,
    request_id: requestId,
  };
  for (const [key, value] of Object.entries(err.details ?? {}))
    if (!(key in fields)) fields[key] = value;
  const body = JSON.stringify(fields);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  };
  if (err.retryAfterSeconds !== undefined)
    headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  if (err.headers !== undefined) Object.assign(headers, err.headers);
  // A client too slow to send its body is not kept: whatever it sends next is not read.
  if (err.code === 'REQUEST_TIMEOUT') headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(body);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  requestId: string,
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status: number, requestId: string): void {
  res.writeHead(status, { 'content-length': 0, 'x-request-id': requestId });
  res.end();
}

/** Writes a body made of several chunks (JSON header + raw tensors) without joining them. */
export function sendChunks(
  res: ServerResponse,
  chunks: readonly Buffer[],
  byteLength: number,
  headers: Record<string, string | number>,
  status = 200,
): void {
  headers['content-length'] = byteLength;
  res.writeHead(status, headers);
  if (chunks.length === 1) {
    res.end(chunks[0]);
    return;
  }
  res.cork();
  for (const c of chunks) res.write(c);
  res.end();
  res.uncork();
}
