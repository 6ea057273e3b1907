import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate } from 'node:zlib';
import type { Readable, Transform } from 'node:stream';
import { ProxyError, invalidRequest, payloadTooLarge } from '../errors';
import type { ReusableBuffers } from '../codec';

const EMPTY = Buffer.alloc(0);
/** Bodies of at least this declared length are assembled as they arrive (see collect). */
const ASSEMBLE_AS_RECEIVED_BYTES = 1024 * 1024;

export interface ReadBodyOptions {
  /** Largest body accepted, after inflation for gzip/deflate bodies. */
  limit: number;
  /** The whole body must arrive within this time (0 = no bound): 408 and the connection closes. */
  timeoutMs: number;
  /**
   * Called with the bytes of each chunk kept (after inflation) beyond
   * `reserved`; throwing refuses the body with that error.
   */
  onBytes?: (bytes: number) => void;
  /** Bytes already accounted for by the caller (the declared Content-Length). */
  reserved?: number;
  /** Where a large body of known length is assembled (see collect); fresh buffers otherwise. */
  buffers?: ReusableBuffers;
}

/**
 * Reads a request body as one Buffer. Refused before reading when the
 * declared length is over the limit, and as soon as the bytes received (or
 * inflated) pass it. Memory grows with the bytes that actually arrived,
 * never with what Content-Length announced, so a client declaring 128 MiB
 * and sending nothing holds nothing. gzip/deflate bodies (tritonclient's
 * request_compression_algorithm) are inflated under the same limit and the
 * inflater is stopped at once when it is passed (a zip bomb costs at most
 * `limit` bytes and the CPU to reach them).
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<Buffer> {
  const { limit } = options;
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > limit) {
    return Promise.reject(
      payloadTooLarge(`request body of ${length} bytes exceeds the limit of ${limit} bytes`),
    );
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  let inflater: Transform | undefined;
  if (encoding === 'gzip') inflater = createGunzip();
  else if (encoding === 'deflate') inflater = createInflate();
  else if (encoding !== 'identity') {
    return Promise.reject(
      invalidRequest(`unsupported Content-Encoding '${encoding}' (use gzip, deflate or identity)`),
    );
  }
  if (inflater) req.pipe(inflater);
  const exact = encoding === 'identity' ? length : undefined;
  return collect(req, inflater, options, exact);
}

function collect(
  req: IncomingMessage,
  inflater: Transform | undefined,
  options: ReadBodyOptions,
  exact: number | undefined,
): Promise<Buffer> {
  const source: Readable = inflater ?? req;
  const { limit } = options;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // A large body of known length is copied, chunk by chunk as it arrives, into
    // one buffer of that length, instead of being joined at the end: joining
    // 64 MiB is one copy that holds the event loop for 50+ ms. The buffer is
    // taken when the first bytes arrive; a fresh one's pages become resident
    // only as they are written, so memory grows with the bytes received (a
    // reused one, see ReusableBuffers, is resident already).
    let whole: Buffer | undefined;
    let received = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      cleanup();
      chunks.length = 0;
      // Nobody else has seen it.
      if (whole !== undefined) options.buffers?.give(whole.buffer as ArrayBuffer);
      whole = undefined;
      if (inflater) {
        req.unpipe(inflater);
        inflater.destroy();
      }
      // The rest of the body is discarded as it arrives; the answer closes the connection.
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        fail(payloadTooLarge(`request body exceeds the limit of ${limit} bytes`));
        return;
      }
      if (exact !== undefined && received > exact) {
        fail(invalidRequest('request body is longer than its Content-Length'));
        return;
      }
      if (options.onBytes !== undefined && received > (options.reserved ?? 0)) {
        const beyond = Math.min(chunk.length, received - (options.reserved ?? 0));
        try {
          options.onBytes(beyond);
        } catch (err) {
          fail(err as Error);
          return;
        }
      }
      if (whole !== undefined) {
        chunk.copy(whole, received - chunk.length);
      } else if (exact !== undefined && exact >= ASSEMBLE_AS_RECEIVED_BYTES) {
        whole = options.buffers?.take(exact) ?? Buffer.allocUnsafeSlow(exact);
        chunk.copy(whole, 0);
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      if (done) return;
      done = true;
      cleanup();
      if (exact !== undefined && received !== exact) {
        reject(invalidRequest(`request body has ${received} bytes, Content-Length said ${exact}`));
        return;
      }
      resolve(
        whole !== undefined
          ? whole
          : chunks.length === 0
            ? EMPTY
            : chunks.length === 1
              ? chunks[0]!
              : Buffer.concat(chunks, received),
      );
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
      clearTimeout(timer);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    if (options.timeoutMs > 0) {
      timer = setTimeout(
        () =>
          fail(
            new ProxyError(
              'REQUEST_TIMEOUT',
              `request body not received within ${options.timeoutMs} ms (${received} bytes arrived)`,
            ),
          ),
        options.timeoutMs,
      );
    }
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
