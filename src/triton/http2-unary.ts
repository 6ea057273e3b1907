import { readFileSync } from 'node:fs';
import {
  connect,
  constants as h2,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TlsConfig } from '../config';
import { GrpcCallError, decodeGrpcMessage, statusFromHttp } from './grpc-call-error';
import { UnaryMessageReader } from './grpc-message-reader';
import { GRPC_FRAME_HEADER_BYTES } from './wire';

export interface Http2UnaryOptions {
  /** host:port of the server. */
  address: string;
  tls?: TlsConfig;
  /** Largest message sent or received, header excluded. */
  maxMessageBytes: number;
  /** HTTP/2 receive window of the connection and of each stream. */
  flowControlWindowBytes: number;
  /** Largest DATA frame the server may send us (16 KiB to 16 MiB - 1). */
  maxFrameBytes: number;
  /** Ping period while calls are open (0 = never), and how long a ping may go unanswered. */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /**
   * A connection with calls open that has received nothing for this long is
   * sent one PING (0 = never); unanswered within `pingTimeoutMs`, it is closed
   * and its calls fail with UNAVAILABLE (retryable elsewhere). One PING per
   * silent spell: gRPC servers count a PING as a strike unless they sent
   * data since the previous one, and close the connection after two strikes.
   */
  pingAfterMs?: number;
  pingTimeoutMs?: number;
  connectTimeoutMs: number;
  /** Failed connects are retried no sooner than this, doubling up to the maximum. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  userAgent?: string;
  /** Where a large answer is reassembled (see UnaryMessageReaderOptions.allocate). */
  allocateMessage?: (bytes: number) => Buffer;
}

export interface UnaryRequest {
  /** e.g. /inference.GRPCInferenceService/ModelInfer */
  path: string;
  /** A gRPC length-prefixed message, in one or more pieces. */
  frame: readonly Buffer[];
  /** Absolute deadline, ms since epoch. */
  deadline: number;
  /** Custom metadata, sent as headers (lower-case ASCII names). */
  metadata?: Readonly<Record<string, string>>;
  /**
   * Where a large answer goes as it arrives (pass-through), instead of being
   * reassembled: the callback then succeeds without a message.
   */
  sink?: UnaryResponseSink;
}

/**
 * Takes a unary answer's bytes as they arrive. The call hands them over only
 * once the answer is certain to be a message: HEADERS with :status 200 and
 * content-type application/grpc, then a 5-byte prefix within the size limit,
 * not compressed, and announcing at least PASS_THROUGH_MIN_BYTES (a smaller
 * answer is returned whole, as without a sink). Before that moment a failure is the call's like any
 * other (and may be retried elsewhere); from it on, the bytes are the
 * receiver's, and a failure ends the call with its status after them.
 */
export interface UnaryResponseSink {
  /**
   * The answer begins: a message of `length` bytes follows. A GrpcCallError
   * thrown here refuses it: the call ends with that error, nothing taken.
   */
  begin(length: number): void;
  /**
   * The answer's next bytes, 5-byte prefix first, exactly as the server
   * framed them. False when the receiver is full: the call stops reading
   * (HTTP/2 flow control holds the server back) until `resume` is called.
   */
  write(chunk: Buffer, resume: () => void): boolean;
}

/**
 * Answers smaller than this are not passed through but held whole and
 * returned as a message, so the call stays an attempt that may be retried
 * elsewhere until its very end (a server killed under load of small calls
 * costs no errors); the copy this takes is cheap at this size. Larger ones
 * go on as they arrive (see UnaryResponseSink).
 */
export const PASS_THROUGH_MIN_BYTES = 256 * 1024;

/** A call in flight; cancel() ends it with CANCELLED (no-op once it finished). */
export interface UnaryCall {
  cancel(): void;
}

export type UnaryCallback = (err: GrpcCallError | null, message?: Buffer) => void;

const DEFAULT_USER_AGENT = 'triton-proxy-http2-unary/1';
// gRPC's grpc-timeout allows at most 8 digits.
const MAX_TIMEOUT_DIGITS_VALUE = 99_999_999;

/** Connection-level reasons a stream ended, which tell the caller to try elsewhere. */
const DROPPED_ERRORS = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
]);

// Longest delay a Node timer takes; longer ones would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

function grpcTimeout(ms: number): string {
  if (ms <= MAX_TIMEOUT_DIGITS_VALUE) return `${ms}m`;
  return `${Math.min(Math.ceil(ms / 1000), MAX_TIMEOUT_DIGITS_VALUE)}S`;
}

function frameLength(frame: readonly Buffer[]): number {
  let n = 0;
  for (const part of frame) n += part.length;
  return n;
}

interface SessionState {
  session: ClientHttp2Session;
  open: number;
  /** Set when the connection went away under its streams (not a GOAWAY drain). */
  dropped: boolean;
  /** Date.now() of the last frame a stream received, or of the first call on an idle connection. */
  lastReceivedAt: number;
  /** A silence PING was sent and nothing has been received since. */
  silencePinged: boolean;
}

/**
 * One HTTP/2 connection to a gRPC server that makes unary calls with
 * pre-encoded frames: what grpc-js does per call (filter stacks, metadata
 * objects, resolver and picker layers, a copy of the message to prepend the
 * frame header) is left out, and the response message is copied at most once.
 *
 * Semantics follow gRPC over HTTP/2 as grpc-js implements it: the deadline is
 * sent as grpc-timeout and enforced by a local timer (RST_STREAM CANCEL, then
 * DEADLINE_EXCEEDED); cancel() resets the stream (CANCELLED); grpc-status and
 * the percent-decoded grpc-message come from trailers or a trailers-only
 * response; messages over the limit are refused before sending
 * (RESOURCE_EXHAUSTED) or when their header arrives (stream reset, nothing
 * buffered); RST_STREAM codes and lost connections map to the statuses
 * grpc-js gives them. After a GOAWAY the connection finishes its streams while
 * new calls open a new one; a failed connect makes calls fail fast with
 * UNAVAILABLE until a backoff (100 ms doubling to 5 s) has passed.
 */
export class Http2UnaryChannel {
  private current: SessionState | undefined;
  private connecting: SessionState | undefined;
  private waiting: Array<(state: SessionState | GrpcCallError) => void> = [];
  private backoffMs: number;
  private retryAt = 0;
  private lastConnectError = '';
  private closed = false;
  private readonly keepalive: NodeJS.Timeout | undefined;
  private readonly silenceCheck: NodeJS.Timeout | undefined;
  private readonly url: string;
  private readonly tlsOptions: SecureClientSessionOptions | undefined;

  constructor(private readonly options: Http2UnaryOptions) {
    this.backoffMs = options.initialBackoffMs ?? 100;
    const tls = options.tls;
    this.url = `${tls?.enabled ? 'https' : 'http'}://${options.address}`;
    if (tls?.enabled) {
      const read = (file: string) => (file ? readFileSync(file) : undefined);
      this.tlsOptions = {
        ca: read(tls.caFile),
        key: read(tls.keyFile),
        cert: read(tls.certFile),
        servername: tls.serverName || undefined,
      };
    }
    if (options.keepaliveTimeMs > 0) {
      this.keepalive = setInterval(() => this.ping(), options.keepaliveTimeMs);
      this.keepalive.unref();
    }
    const pingAfterMs = options.pingAfterMs ?? 0;
    if (pingAfterMs > 0) {
      this.silenceCheck = setInterval(
        () => this.checkSilence(pingAfterMs),
        Math.max(25, Math.floor(pingAfterMs / 4)),
      );
      this.silenceCheck.unref();
    }
  }

  /** The server answered a health check: the next call connects at once, without waiting out the backoff. */
  resetBackoff(): void {
    this.retryAt = 0;
    this.backoffMs = this.options.initialBackoffMs ?? 100;
  }

  /**
   * Sends a PING on the current connection: true when it is answered within
   * timeoutMs (or there is no connection to check), false when it was not,
   * in which case the connection has been closed and its calls fail over.
   */
  checkAlive(timeoutMs: number): Promise<boolean> {
    const state = this.current;
    if (!state || state.session.destroyed) return Promise.resolve(true);
    return this.pingSession(state, timeoutMs);
  }

  /** Starts a unary call; `callback` is always called once, never synchronously. */
  call(request: UnaryRequest, callback: UnaryCallback): UnaryCall {
    const call = new PendingCall(
      request,
      callback,
      this.options.maxMessageBytes,
      this.options.allocateMessage,
    );
    const size = frameLength(request.frame) - GRPC_FRAME_HEADER_BYTES;
    if (this.closed) {
      call.failSoon(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'Channel has been shut down'));
    } else if (size > this.options.maxMessageBytes) {
      call.failSoon(
        new GrpcCallError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `Sent message larger than max (${size} vs. ${this.options.maxMessageBytes})`,
        ),
      );
    } else if (request.deadline <= Date.now()) {
      call.failSoon(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    } else {
      call.armDeadline();
      const state = this.current;
      if (state) call.start(state, this.options.userAgent);
      else this.whenConnected(call);
    }
    return call;
  }

  /** Closes the connection; open calls end with UNAVAILABLE, later ones fail at once. */
  close(): void {
    this.closed = true;
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.silenceCheck) clearInterval(this.silenceCheck);
    this.current?.session.destroy();
    this.connecting?.session.destroy();
    this.current = undefined;
  }

  private whenConnected(call: PendingCall): void {
    if (Date.now() < this.retryAt) {
      call.failSoon(new GrpcCallError(GrpcStatus.UNAVAILABLE, this.lastConnectError));
      return;
    }
    this.waiting.push((state) => {
      if (state instanceof GrpcCallError) call.fail(state);
      else call.start(state, this.options.userAgent);
    });
    if (!this.connecting) this.connect();
  }

  private connect(): void {
    const o = this.options;
    const session = connect(this.url, {
      ...this.tlsOptions,
      settings: {
        initialWindowSize: o.flowControlWindowBytes,
        maxFrameSize: o.maxFrameBytes,
        enablePush: false,
      },
      // Node refuses new streams once queued outbound data passes this (in MB);
      // the in-flight bytes cap bounds memory instead, as with grpc-js.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      maxSendHeaderBlockLength: 1 << 20,
    });
    session.unref();
    const state: SessionState = {
      session,
      open: 0,
      dropped: false,
      lastReceivedAt: Date.now(),
      silencePinged: false,
    };
    this.connecting = state;
    let connectError: Error | undefined;
    const timer = setTimeout(() => {
      connectError = new Error(`connect timed out after ${o.connectTimeoutMs} ms`);
      session.destroy();
    }, o.connectTimeoutMs);
    timer.unref();

    session.once('connect', () => {
      clearTimeout(timer);
      // The SETTINGS above size each stream's window; the connection's own
      // window starts at 64 KiB and only grows by WINDOW_UPDATE.
      if (o.flowControlWindowBytes > 65_535) {
        try {
          session.setLocalWindowSize(o.flowControlWindowBytes);
        } catch {
          // A session that is already closing keeps the default window.
        }
      }
      this.connecting = undefined;
      this.backoffMs = o.initialBackoffMs ?? 100;
      this.retryAt = 0;
      if (this.closed) {
        session.destroy();
        this.release(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'Channel has been shut down'));
        return;
      }
      this.current = state;
      this.release(state);
    });
    session.on('error', (err: Error) => {
      connectError ??= err;
      state.dropped = true;
    });
    session.on('goaway', () => {
      // The server drains this connection: its open streams finish, new calls go to a new one.
      if (this.current === state) this.current = undefined;
    });
    session.once('close', () => {
      clearTimeout(timer);
      state.dropped = true;
      if (this.current === state) this.current = undefined;
      if (this.connecting === state) {
        this.connecting = undefined;
        this.lastConnectError = `Failed to connect to ${o.address}: ${connectError?.message ?? 'connection closed'}`;
        this.retryAt = Date.now() + this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, o.maxBackoffMs ?? 5000);
        this.release(new GrpcCallError(GrpcStatus.UNAVAILABLE, this.lastConnectError));
      }
    });
  }

  private release(outcome: SessionState | GrpcCallError): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w(outcome);
  }

  private checkSilence(pingAfterMs: number): void {
    const state = this.current;
    if (!state || state.open === 0 || state.silencePinged) return;
    if (Date.now() - state.lastReceivedAt < pingAfterMs) return;
    state.silencePinged = true;
    void this.pingSession(state, this.options.pingTimeoutMs ?? this.options.keepaliveTimeoutMs);
  }

  private pingSession(state: SessionState, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        // Unanswered: the link is dead (black hole, half-open TCP). Closing
        // it fails its calls with UNAVAILABLE now instead of at their deadlines.
        state.dropped = true;
        state.session.destroy();
        resolve(false);
      }, timeoutMs);
      timer.unref();
      try {
        const sent = state.session.ping((err) => {
          clearTimeout(timer);
          resolve(err === null);
        });
        if (!sent) {
          clearTimeout(timer);
          resolve(true);
        }
      } catch {
        // A session that is closing cannot be pinged; nothing to take back there.
        clearTimeout(timer);
        resolve(true);
      }
    });
  }

  private ping(): void {
    const state = this.current;
    if (!state || state.open === 0) return;
    const timer = setTimeout(() => state.session.destroy(), this.options.keepaliveTimeoutMs);
    timer.unref();
    try {
      state.session.ping(() => clearTimeout(timer));
    } catch {
      clearTimeout(timer);
    }
  }
}

/** One call: its stream, deadline timer, reassembly and final status. */
class PendingCall implements UnaryCall {
  private stream: ClientHttp2Stream | undefined;
  private state: SessionState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  /** Why we ended the call ourselves (deadline, cancel, limit); wins over what the stream says. */
  private localError: GrpcCallError | undefined;
  private httpStatus = 0;
  private grpcStatus = -1;
  private grpcMessage = '';
  private trailers: Record<string, string> = {};
  private streamError: (Error & { code?: string }) | undefined;
  private readonly reader: UnaryMessageReader;
  /** The response HEADERS said :status 200 and a gRPC content type. */
  private grpcAnswer = false;
  /** Set once the answer went to the sink (see UnaryResponseSink). */
  private begun = false;
  /** Chunks that arrived before the message prefix was complete (sink only). */
  private held: Buffer[] | undefined;

  constructor(
    private readonly request: UnaryRequest,
    private readonly callback: UnaryCallback,
    maxMessageBytes: number,
    allocate: ((bytes: number) => Buffer) | undefined,
  ) {
    this.reader = new UnaryMessageReader(maxMessageBytes, {
      collect: request.sink === undefined ? 'copy' : 'none',
      allocate,
    });
  }

  armDeadline(): void {
    const remaining = this.request.deadline - Date.now();
    // A deadline beyond a timer's reach is left to the server (grpc-timeout).
    if (remaining > MAX_TIMER_MS) return;
    this.timer = setTimeout(
      () => this.abort(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded')),
      remaining,
    );
  }

  cancel(): void {
    this.abort(new GrpcCallError(GrpcStatus.CANCELLED, 'Cancelled on client'));
  }

  /** Fails on the next tick: for failures found while call() has not returned yet. */
  failSoon(err: GrpcCallError): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    process.nextTick(() => this.callback(err));
  }

  fail(err: GrpcCallError): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.callback(err);
  }

  start(state: SessionState, userAgent: string | undefined): void {
    if (this.done) return;
    const remaining = this.request.deadline - Date.now();
    if (remaining <= 0) {
      this.failSoon(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      return;
    }
    // The array form skips node:http2's header-object walk and copy; pseudo
    // headers first, as HTTP/2 requires (node adds :scheme and :authority).
    const headers: string[] = [
      h2.HTTP2_HEADER_METHOD,
      'POST',
      h2.HTTP2_HEADER_PATH,
      this.request.path,
      h2.HTTP2_HEADER_CONTENT_TYPE,
      'application/grpc',
      h2.HTTP2_HEADER_TE,
      'trailers',
      h2.HTTP2_HEADER_USER_AGENT,
      userAgent ?? DEFAULT_USER_AGENT,
      'grpc-timeout',
      grpcTimeout(remaining),
    ];
    const metadata = this.request.metadata;
    if (metadata !== undefined) {
      for (const name in metadata) {
        if (Object.hasOwn(metadata, name)) headers.push(name, metadata[name]!);
      }
    }
    let stream: ClientHttp2Stream;
    try {
      stream = state.session.request(headers, { endStream: false });
    } catch (err) {
      // The session went away between the pick and the request (GOAWAY, destroyed).
      this.failSoon(
        new GrpcCallError(
          GrpcStatus.UNAVAILABLE,
          `Cannot start a stream: ${(err as Error).message}`,
        ),
      );
      return;
    }
    this.stream = stream;
    this.state = state;
    // Silence is measured from the first call on an idle connection.
    if (state.open === 0) state.lastReceivedAt = Date.now();
    state.open++;
    stream.on('response', (h) => this.onHeaders(h));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('trailers', (h) => this.onHeaders(h));
    stream.on('error', (err: Error) => {
      this.streamError ??= err;
    });
    stream.once('close', () => this.onClose());
    stream.cork();
    for (const part of this.request.frame) stream.write(part);
    stream.end();
  }

  private abort(err: GrpcCallError): void {
    if (this.done || this.localError) return;
    this.localError = err;
    if (this.stream && !this.stream.closed) this.stream.close(h2.NGHTTP2_CANCEL);
    else this.fail(err);
  }

  private heard(): void {
    const state = this.state!;
    state.lastReceivedAt = Date.now();
    state.silencePinged = false;
  }

  private onHeaders(headers: IncomingHttpHeaders): void {
    this.heard();
    const status = headers[h2.HTTP2_HEADER_STATUS];
    if (typeof status === 'number') {
      this.httpStatus = status;
      const type = headers[h2.HTTP2_HEADER_CONTENT_TYPE];
      this.grpcAnswer =
        status === 200 && typeof type === 'string' && type.startsWith('application/grpc');
    }
    const grpcStatus = headers['grpc-status'];
    if (grpcStatus === undefined) return;
    this.grpcStatus = Number(grpcStatus);
    this.grpcMessage = decodeGrpcMessage(headers['grpc-message'] as string | undefined);
    if (this.grpcStatus === GrpcStatus.OK) return;
    for (const [k, v] of Object.entries(headers)) {
      if (k[0] !== ':' && v !== undefined)
        this.trailers[k] = Array.isArray(v) ? v.join(', ') : String(v);
    }
  }

  private onData(chunk: Buffer): void {
    this.heard();
    if (this.localError) return;
    try {
      this.reader.push(chunk);
      const sink = this.request.sink;
      if (sink !== undefined) this.pass(sink, chunk);
    } catch (err) {
      this.abort(err as GrpcCallError);
    }
  }

  /** Pass-through: the chunk goes on once the answer has begun (see UnaryResponseSink). */
  private pass(sink: UnaryResponseSink, chunk: Buffer): void {
    if (!this.begun) {
      (this.held ??= []).push(chunk);
      // A small answer, or anything but a gRPC answer, is held whole and
      // handled as without a sink (see PASS_THROUGH_MIN_BYTES).
      const length = this.reader.messageLength();
      if (!this.grpcAnswer || length === undefined || length < PASS_THROUGH_MIN_BYTES) return;
      sink.begin(length);
      this.begun = true;
      const held = this.held;
      this.held = undefined;
      let room = true;
      for (const h of held) room = sink.write(h, this.resume);
      if (!room) this.stream!.pause();
      return;
    }
    if (!sink.write(chunk, this.resume)) this.stream!.pause();
  }

  private readonly resume = (): void => {
    const stream = this.stream;
    if (stream !== undefined && !stream.destroyed) stream.resume();
  };

  private onClose(): void {
    this.state!.open--;
    if (this.done) return;
    if (this.localError) {
      this.fail(this.localError);
      return;
    }
    const err = this.outcome();
    if (err) this.fail(err);
  }

  /** The call's result from what the stream delivered; undefined when it succeeded. */
  private outcome(): GrpcCallError | undefined {
    if (this.grpcStatus === GrpcStatus.OK) {
      if (this.reader.received() && !this.reader.partial()) {
        this.succeed(this.begun ? undefined : (this.reader.result() ?? this.heldMessage()));
        return undefined;
      }
      return new GrpcCallError(
        this.reader.partial() ? GrpcStatus.INTERNAL : GrpcStatus.UNIMPLEMENTED,
        this.reader.partial() ? 'Stream ended in the middle of a message' : 'No message received',
      );
    }
    if (this.grpcStatus >= 0) {
      const code =
        this.grpcStatus <= GrpcStatus.UNAUTHENTICATED
          ? (this.grpcStatus as GrpcStatus)
          : GrpcStatus.UNKNOWN;
      return new GrpcCallError(code, this.grpcMessage, this.trailers);
    }
    if (this.httpStatus !== 0 && this.httpStatus !== 200) {
      return new GrpcCallError(
        statusFromHttp(this.httpStatus),
        `Received HTTP status code ${this.httpStatus}`,
      );
    }
    return this.resetOutcome();
  }

  private resetOutcome(): GrpcCallError {
    const rst = this.stream!.rstCode;
    const cause = this.streamError;
    // Node resets the streams of a connection that went away with a synthesized
    // CANCEL (before the session's own close event): the session tells.
    const session = this.state!.session;
    if (
      this.state!.dropped ||
      session.destroyed ||
      session.closed ||
      (cause?.code !== undefined && DROPPED_ERRORS.has(cause.code))
    ) {
      return new GrpcCallError(
        GrpcStatus.UNAVAILABLE,
        `Connection dropped${cause ? `: ${cause.message}` : ''}`,
      );
    }
    switch (rst) {
      case h2.NGHTTP2_NO_ERROR:
        return new GrpcCallError(
          GrpcStatus.INTERNAL,
          `Received RST_STREAM with code ${rst} (Call ended without gRPC status)`,
        );
      case h2.NGHTTP2_REFUSED_STREAM:
        return new GrpcCallError(GrpcStatus.UNAVAILABLE, 'Stream refused by server');
      case h2.NGHTTP2_CANCEL:
        return new GrpcCallError(GrpcStatus.CANCELLED, 'Call cancelled');
      case h2.NGHTTP2_ENHANCE_YOUR_CALM:
        return new GrpcCallError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          'Bandwidth exhausted or memory limit exceeded',
        );
      case h2.NGHTTP2_INADEQUATE_SECURITY:
        return new GrpcCallError(GrpcStatus.PERMISSION_DENIED, 'Protocol not secure enough');
      default:
        return new GrpcCallError(GrpcStatus.INTERNAL, `Received RST_STREAM with code ${rst}`);
    }
  }

  /** A small answer held whole by pass(): its message, without the 5-byte prefix. */
  private heldMessage(): Buffer {
    const held = this.held ?? [];
    const framed = held.length === 1 ? held[0]! : Buffer.concat(held);
    const length = this.reader.messageLength() ?? 0;
    return framed.subarray(GRPC_FRAME_HEADER_BYTES, GRPC_FRAME_HEADER_BYTES + length);
  }

  private succeed(message: Buffer | undefined): void {
    this.done = true;
    clearTimeout(this.timer);
    this.callback(null, message);
  }
}
