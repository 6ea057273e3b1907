import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import { invalidRequest, payloadTooLarge } from '../errors';

const EMPTY = Buffer.alloc(0);

/**
 * Reads a request body as one Buffer, refusing it before reading when the
 * declared length is over the limit and as soon as the received bytes pass
 * it. With a Content-Length the bytes land in one preallocated buffer (one
 * copy, no concatenation). gzip/deflate bodies (tritonclient's
 * request_compression_algorithm) are inflated under the same limit.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > limit) {
    return Promise.reject(
      payloadTooLarge(`request body of ${length} bytes exceeds the limit of ${limit} bytes`),
    );
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  let source: Readable = req;
  if (encoding === 'gzip') source = req.pipe(createGunzip());
  else if (encoding === 'deflate') source = req.pipe(createInflate());
  else if (encoding !== 'identity') {
    return Promise.reject(
      invalidRequest(`unsupported Content-Encoding '${encoding}' (use gzip, deflate or identity)`),
    );
  }
  const exact = encoding === 'identity' ? length : undefined;
  return collect(source, req, limit, exact);
}

function collect(
  source: Readable,
  req: IncomingMessage,
  limit: number,
  exact: number | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffer = exact === undefined ? undefined : Buffer.allocUnsafe(exact);
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      cleanup();
      source.resume();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        fail(payloadTooLarge(`request body exceeds the limit of ${limit} bytes`));
        return;
      }
      if (buffer) {
        if (received > buffer.length) {
          fail(invalidRequest('request body is longer than its Content-Length'));
          return;
        }
        chunk.copy(buffer, received - chunk.length);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      if (done) return;
      done = true;
      cleanup();
      if (buffer) {
        if (received !== buffer.length) {
          reject(
            invalidRequest(
              `request body has ${received} bytes, Content-Length said ${buffer.length}`,
            ),
          );
          return;
        }
        resolve(buffer);
      } else
        resolve(
          chunks.length === 0
            ? EMPTY
            : chunks.length === 1
              ? chunks[0]!
              : Buffer.concat(chunks, received),
        );
      buffer = undefined;
    };
    const onError = (err: Error) =>
      fail(
        source === req
          ? invalidRequest(`request body could not be read: ${err.message}`)
          : invalidRequest(`request body could not be decompressed: ${err.message}`),
      );
    const onAborted = () =>
      fail(invalidRequest('client closed the connection before the body was complete'));
    const cleanup = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    if (source !== req) req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Parses a small JSON body of a control route; empty means {}. */
export function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw invalidRequest(`failed to parse ${what} JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidRequest(`${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
