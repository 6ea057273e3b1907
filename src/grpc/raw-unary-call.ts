import {
  constants as h2,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { gunzip, inflate } from 'node:zlib';
import { Metadata, status as GrpcStatus, type ServerErrorResponse } from '@grpc/grpc-js';
import { GrpcCallError, UnaryMessageReader, type UnaryResponseSink } from '../triton';

/** gRPC's 5-byte message prefix: compressed flag and big-endian length. */
const FRAME_HEADER_BYTES = 5;

/** grpc-timeout: up to 8 digits and a unit (gRPC over HTTP/2 spec). */
const TIMEOUT_PATTERN = /^(\d{1,8})\s*([HMSmun])$/;
const UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};
/** setTimeout's largest delay; longer deadlines never fire in practice. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Request headers that are transport, not the caller's metadata (grpc-js drops the same). */
const TRANSPORT_HEADERS = [
  'grpc-timeout',
  'grpc-encoding',
  'grpc-accept-encoding',
  'accept-encoding',
  'te',
  'content-type',
];

const RESPONSE_HEADERS: OutgoingHttpHeaders = {
  [h2.HTTP2_HEADER_STATUS]: 200,
  [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
  // Responses are never compressed; requests may be (see decompress).
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};

const OK_TRAILERS: OutgoingHttpHeaders = { 'grpc-status': '0', 'grpc-message': 'OK' };

/**
 * Bytes of a passed-through answer the client's stream may hold unsent
 * before the upstream is paused: large enough that a 16 KiB chunk at a
 * time does not stop and start the upstream, small next to a 4 MiB answer.
 */
const PASS_THROUGH_BUFFER_BYTES = 1 << 20;

export interface RawUnaryLimits {
  /** Largest request message, checked from its prefix before the body is buffered. */
  maxReceiveMessageBytes: number;
  /** Largest answer sent (RESOURCE_EXHAUSTED above it, as grpc-js answers). */
  maxSendMessageBytes: number;
}

/** One unary call as the handler sees it, once its request message arrived whole. */
export interface RawUnaryCall {
  readonly path: string;
  readonly metadata: Metadata;
  /**
   * The request message (decompressed when the client compressed it) in the
   * pieces it arrived in: views of the received DATA chunks, never joined.
   */
  readonly request: readonly Buffer[];
  /** Its length in bytes. */
  readonly requestBytes: number;
  /** Aborted when the client cancels, the connection drops or the deadline passes. */
  readonly signal: AbortSignal;
  /** The client's deadline (ms since epoch), Infinity when it set none. */
  getDeadline(): number;
  /** Sends the answer with these response headers, then OK trailers. */
  respond(message: Buffer, headers: Metadata): void;
  /**
   * The answer as it arrives (pass-through): begin() sends these response
   * headers (RESOURCE_EXHAUSTED over the send limit, nothing sent), write()
   * the framed bytes with the client's flow control; end() then sends OK
   * trailers, fail() an error status as trailers.
   */
  answer(headers: Metadata): UnaryResponseSink;
  /** Ends a passed-through answer with OK trailers. */
  end(): void;
  /** Ends the call with an error status (trailers-only, or trailers after a passed-through answer). */
  fail(error: ServerErrorResponse): void;
}

/**
 * Serves one unary gRPC call straight on its HTTP/2 stream, for the hot RPC
 * (ModelInfer): the request is kept as the DATA chunks it arrived in (no
 * copy), and the answer goes out either as a 5-byte prefix and the message,
 * or passed through as it arrives from upstream (answer()), where grpc-js's
 * server copies every answer into a new framed buffer and runs a chain of
 * interceptor objects per call. Everything a
 * client can observe is what grpc-js gives: 415 for a non-gRPC content type,
 * trailers-only errors, `grpc-timeout` ending the call with
 * DEADLINE_EXCEEDED, gzip/deflate requests, the same limit messages.
 * `handle` runs once the message is complete; nothing is answered after the
 * client has gone.
 */
export function acceptRawUnaryCall(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  limits: RawUnaryLimits,
  handle: (call: RawUnaryCall) => void,
): void {
  // A reset stream emits 'error'; 'close' below is what ends the call.
  stream.on('error', () => {});
  const contentType = headers[h2.HTTP2_HEADER_CONTENT_TYPE];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
    stream.respond(
      { [h2.HTTP2_HEADER_STATUS]: h2.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE },
      { endStream: true },
    );
    return;
  }
  new UnaryStreamCall(stream, headers, limits, handle).start();
}

class UnaryStreamCall implements RawUnaryCall {
  readonly path: string;
  readonly metadata: Metadata;
  request: readonly Buffer[] = [];
  requestBytes = 0;
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  private deadline = Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** Set once a status went out (or the client left): nothing more is sent. */
  private done = false;
  /** A passed-through answer has begun: the status goes out as trailers. */
  private streaming = false;
  private trailers: OutgoingHttpHeaders = OK_TRAILERS;
  private readonly reader: UnaryMessageReader;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly limits: RawUnaryLimits,
    private readonly handle: (call: RawUnaryCall) => void,
  ) {
    this.path = String(headers[h2.HTTP2_HEADER_PATH]);
    // Compressed requests are inflated in received(), with the client's grpc-encoding.
    this.reader = new UnaryMessageReader(limits.maxReceiveMessageBytes, {
      collect: 'parts',
      compressedAllowed: true,
      secondMessageError: `Received a second request message for unary method ${this.path}`,
    });
    this.metadata = Metadata.fromHttp2Headers(headers);
    for (const name of TRANSPORT_HEADERS) this.metadata.remove(name);
  }

  start(): void {
    this.stream.once('close', () => {
      if (this.done) return;
      // The client cancelled (RST_STREAM) or the connection went away.
      this.done = true;
      this.clearTimer();
      this.controller.abort();
    });
    const timeout = this.headers['grpc-timeout'];
    if (timeout !== undefined) {
      const match = TIMEOUT_PATTERN.exec(String(timeout));
      if (!match) {
        this.fail(statusError(GrpcStatus.INTERNAL, `Invalid grpc-timeout value "${timeout}"`));
        return;
      }
      const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
      this.deadline = Date.now() + ms;
      this.timer = setTimeout(() => this.expire(), Math.min(Math.ceil(ms), MAX_TIMER_MS));
    }
    this.stream.on('data', (chunk: Buffer) => this.push(chunk));
    this.stream.once('end', () => this.received());
  }

  getDeadline(): number {
    return this.deadline;
  }

  respond(message: Buffer, headers: Metadata): void {
    if (this.done) return;
    if (message.length > this.limits.maxSendMessageBytes) {
      this.fail(
        statusError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `Sent message larger than max (${message.length} vs. ${this.limits.maxSendMessageBytes})`,
        ),
      );
      return;
    }
    this.finish();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const prefix = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    prefix[0] = 0;
    prefix.writeUInt32BE(message.length, 1);
    stream.respond({ ...RESPONSE_HEADERS, ...headers.toHttp2Headers() }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
    stream.write(prefix);
    stream.end(message);
  }

  answer(headers: Metadata): UnaryResponseSink {
    return {
      begin: (length) => this.beginAnswer(length, headers),
      write: (chunk, resume) => this.writeAnswer(chunk, resume),
    };
  }

  end(): void {
    if (this.done) return;
    this.finish();
    const stream = this.stream;
    if (!stream.destroyed && !stream.closed) stream.end();
  }

  fail(error: ServerErrorResponse): void {
    if (this.done) return;
    this.finish();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const status: OutgoingHttpHeaders = {
      'grpc-status': String(error.code ?? GrpcStatus.UNKNOWN),
      'grpc-message': encodeURI(error.details ?? error.message),
      ...error.metadata?.toHttp2Headers(),
    };
    if (this.streaming) {
      // Part of the answer went out: the status follows it as trailers.
      this.trailers = status;
      stream.end();
      return;
    }
    stream.respond(
      {
        [h2.HTTP2_HEADER_STATUS]: 200,
        [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
        ...status,
      },
      { endStream: true },
    );
  }

  private beginAnswer(length: number, headers: Metadata): void {
    const stream = this.stream;
    if (this.done || stream.destroyed || stream.closed) {
      throw new GrpcCallError(GrpcStatus.CANCELLED, 'The client call has ended');
    }
    if (this.streaming)
      throw new GrpcCallError(GrpcStatus.INTERNAL, 'The answer has begun already');
    if (length > this.limits.maxSendMessageBytes) {
      throw new GrpcCallError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `Sent message larger than max (${length} vs. ${this.limits.maxSendMessageBytes})`,
      );
    }
    this.streaming = true;
    stream.respond({ ...RESPONSE_HEADERS, ...headers.toHttp2Headers() }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(this.trailers));
  }

  private writeAnswer(chunk: Buffer, resume: () => void): boolean {
    const stream = this.stream;
    // A call that ended (deadline, client gone) has its upstream call cancelled; the bytes go nowhere.
    if (this.done || stream.destroyed) return true;
    stream.write(chunk);
    if (stream.writableLength < PASS_THROUGH_BUFFER_BYTES) return true;
    stream.once('drain', resume);
    return false;
  }

  private finish(): void {
    this.done = true;
    this.clearTimer();
    // Whatever the client still sends is of no use now.
    if (!this.stream.readableEnded) this.stream.resume();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    if (this.done) return;
    this.fail(statusError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    this.controller.abort();
  }

  /** Reassembles the one message from DATA chunks; the limit is checked from the prefix. */
  private push(chunk: Buffer): void {
    if (this.done) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      const e = err as GrpcCallError;
      this.fail(statusError(e.code, e.details));
    }
  }

  /** The client half-closed: hand over the message. */
  private received(): void {
    if (this.done) return;
    const parts = this.reader.parts();
    if (parts === undefined || this.reader.partial()) {
      this.fail(
        statusError(
          GrpcStatus.UNIMPLEMENTED,
          this.reader.partial()
            ? `Received a truncated request message for unary method ${this.path}`
            : `Received no request message for unary method ${this.path}`,
        ),
      );
      return;
    }
    if (!this.reader.compressed()) {
      this.request = parts;
      this.requestBytes = this.reader.messageLength()!;
      this.handle(this);
      return;
    }
    this.decompress(this.reader.result()!).then(
      (request) => {
        if (this.done) return;
        this.request = [request];
        this.requestBytes = request.length;
        this.handle(this);
      },
      (err: ServerErrorResponse) => this.fail(err),
    );
  }

  /** A compressed request in the encoding the client named (grpc-js accepts the same two). */
  private decompress(message: Buffer): Promise<Buffer> {
    const encoding = String(this.headers['grpc-encoding'] ?? 'identity');
    const run = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (run === undefined) {
      return Promise.reject(
        statusError(
          encoding === 'identity' ? GrpcStatus.INTERNAL : GrpcStatus.UNIMPLEMENTED,
          encoding === 'identity'
            ? 'Received a compressed message without a grpc-encoding'
            : `Received message compressed with unsupported encoding "${encoding}"`,
        ),
      );
    }
    const max = this.limits.maxReceiveMessageBytes;
    return new Promise((resolve, reject) =>
      run(message, { maxOutputLength: Math.max(1, max) }, (err, out) => {
        if (!err) {
          resolve(out);
          return;
        }
        reject(
          (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
            ? statusError(
                GrpcStatus.RESOURCE_EXHAUSTED,
                `Received message that decompresses to a size larger than ${max}`,
              )
            : statusError(GrpcStatus.INTERNAL, 'Failed to decompress message'),
        );
      }),
    );
  }
}

function statusError(code: GrpcStatus, details: string): ServerErrorResponse {
  return { name: 'GrpcStatus', message: details, code, details };
}
