import {
  status as GrpcStatus,
  type Client,
  type ClientDuplexStream,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import type { ModelInferRequest } from '../protocol';
import { GrpcCallError } from './grpc-call-error';
import { MODEL_STREAM_INFER_PATH, encodeModelInferRequest } from './wire';

/** How long a stream may run, who it is for, and how much it may buffer. */
export interface ModelStreamOptions {
  /** Absolute deadline of the whole stream (the gRPC deadline), ms since epoch; none when absent. */
  deadline?: number;
  /** Absolute time by which the server's first message must have arrived; none when absent. */
  firstMessageDeadline?: number;
  /**
   * Longest wait, in ms, for the next message while a reader is waiting for
   * one (0 or absent: no limit). The clock runs only while the reader waits,
   * so a slow reader never times the server out.
   */
  idleTimeoutMs?: number;
  requestId?: string;
  traceparent?: string;
  /** Aborting cancels the stream on the wire at once. */
  signal?: AbortSignal;
  /**
   * Messages received and not yet read before the stream stops reading from
   * the server (HTTP/2 flow control then holds the server back). Default 16.
   */
  highWaterMark?: number;
  /** The owner's set of open calls (see CallContext.open); the stream is in it while open. */
  open?: Set<{ cancel(): void }>;
  /** Called once when the stream is over: null after a clean end, else the error readers get. */
  onClose?: (error: Error | null) => void;
  /** Turns a failure (a grpc-js ServiceError or GrpcCallError) into what readers get. */
  mapError?: (error: Error) => Error;
}

const DEFAULT_HIGH_WATER_MARK = 16;

const identity = (b: Buffer): Buffer => b;

interface Waiter {
  resolve: (message: Buffer | null) => void;
  reject: (error: Error) => void;
}

/**
 * One ModelStreamInfer call on a server's long-lived channel, independent of
 * the protocol the proxy's client speaks: requests go in as encoded
 * `inference.ModelInferRequest` messages (or request objects), responses come
 * out as the encoded `inference.ModelStreamInferResponse` bytes the server
 * sent, so a gRPC front end can forward them untouched and the REST side can
 * decode them (decodeModelStreamInferResponse).
 *
 * Reading is pull-based: `next()` resolves with the next message, or null once
 * the server ended the stream with OK. While `highWaterMark` messages wait
 * unread the stream stops asking grpc-js for more, so a slow reader slows the
 * server down instead of growing memory.
 */
export class ModelStream {
  private readonly call: ClientDuplexStream<Buffer, Buffer>;
  private readonly queue: Buffer[] = [];
  private readonly highWaterMark: number;
  private waiter: Waiter | undefined;
  private paused = false;
  private ended = false;
  private failure: Error | undefined;
  private received = 0;
  private firstTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private cancelled = false;
  private readonly onAbort: (() => void) | undefined;
  private readonly entry = { cancel: () => this.cancel() };

  constructor(
    channel: Client,
    metadata: Metadata,
    private readonly options: ModelStreamOptions = {},
  ) {
    this.highWaterMark = Math.max(1, options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK);
    this.call = channel.makeBidiStreamRequest(
      MODEL_STREAM_INFER_PATH,
      identity,
      identity,
      metadata,
      options.deadline === undefined ? {} : { deadline: options.deadline },
    );
    this.call.on('data', (message: Buffer) => this.onMessage(message));
    this.call.on('end', () => this.finish(null));
    this.call.on('error', (error: ServiceError) => this.finish(error));
    options.open?.add(this.entry);
    if (options.firstMessageDeadline !== undefined) {
      const ms = Math.max(0, options.firstMessageDeadline - Date.now());
      this.firstTimer = setTimeout(
        () => this.timeOut('no response from the server before the deadline'),
        ms,
      );
    }
    if (options.signal !== undefined) {
      const signal = options.signal;
      if (signal.aborted) {
        queueMicrotask(() => this.cancel());
      } else {
        this.onAbort = () => this.cancel();
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
    }
  }

  /** Messages received from the server so far. */
  get messagesReceived(): number {
    return this.received;
  }

  /** Whether the stream is over (ended, failed or cancelled). */
  get done(): boolean {
    return this.closed;
  }

  /**
   * Sends one request: an encoded inference.ModelInferRequest, or a request
   * object encoded here. Returns false when the send buffer is full; wait for
   * drained() before writing more.
   */
  write(request: Buffer | ModelInferRequest): boolean {
    if (this.closed) return false;
    const bytes = Buffer.isBuffer(request) ? request : encodeModelInferRequest(request);
    return this.call.write(bytes);
  }

  /** Resolves when the send buffer has room again (at once when it has). */
  drained(): Promise<void> {
    if (this.closed || !this.call.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.call.off('drain', done);
        this.call.off('close', done);
        resolve();
      };
      this.call.once('drain', done);
      this.call.once('close', done);
    });
  }

  /** Half-closes: no more requests; the server ends the stream when its answers are sent. */
  end(): void {
    if (!this.closed) this.call.end();
  }

  /** Cancels the call on the wire (the server sees it cancelled); readers get CANCELLED. */
  cancel(): void {
    if (this.closed) return;
    this.cancelled = true;
    this.queue.length = 0;
    // grpc-js reports the cancellation as an 'error' event; settle first so a
    // reader sees CANCELLED even if nothing else arrives.
    this.finish(new GrpcCallError(GrpcStatus.CANCELLED, 'call cancelled by the client'));
    this.call.cancel();
  }

  /** The next message, or null when the server ended the stream cleanly. */
  next(): Promise<Buffer | null> {
    const message = this.queue.shift();
    if (message !== undefined) {
      if (this.paused && !this.closed && this.queue.length <= this.highWaterMark >> 1) {
        this.paused = false;
        this.call.resume();
      }
      return Promise.resolve(message);
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    if (this.waiter !== undefined) return Promise.reject(new Error('next() is already pending'));
    return new Promise<Buffer | null>((resolve, reject) => {
      this.waiter = { resolve, reject };
      const idle = this.options.idleTimeoutMs ?? 0;
      if (idle > 0 && this.received > 0) {
        this.idleTimer = setTimeout(
          () => this.timeOut(`no message from the server for ${idle} ms`),
          idle,
        );
      }
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const message = await this.next();
      if (message === null) return;
      yield message;
    }
  }

  private onMessage(message: Buffer): void {
    // After a failure, messages grpc-js had already buffered are still
    // delivered before the error; after a cancel or a timeout nobody wants them.
    if (this.cancelled) return;
    this.received++;
    if (this.firstTimer !== undefined) {
      clearTimeout(this.firstTimer);
      this.firstTimer = undefined;
    }
    const waiter = this.takeWaiter();
    if (waiter !== undefined) {
      waiter.resolve(message);
      return;
    }
    this.queue.push(message);
    if (!this.paused && !this.closed && this.queue.length >= this.highWaterMark) {
      this.paused = true;
      this.call.pause();
    }
  }

  private timeOut(why: string): void {
    if (this.closed) return;
    this.cancelled = true;
    this.queue.length = 0;
    this.finish(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, why));
    this.call.cancel();
  }

  private takeWaiter(): Waiter | undefined {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    return waiter;
  }

  private finish(error: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.firstTimer !== undefined) clearTimeout(this.firstTimer);
    this.firstTimer = undefined;
    this.options.open?.delete(this.entry);
    if (this.onAbort !== undefined) this.options.signal?.removeEventListener('abort', this.onAbort);
    const mapped =
      error === null ? null : this.options.mapError ? this.options.mapError(error) : error;
    if (mapped === null) this.ended = true;
    else {
      this.failure = mapped;
      // Let what grpc-js still holds reach the queue; the reader gets it before the error.
      if (this.paused && !this.cancelled) {
        this.paused = false;
        this.call.resume();
      }
    }
    const waiter = this.takeWaiter();
    if (waiter !== undefined) {
      if (mapped === null) waiter.resolve(null);
      else waiter.reject(mapped);
    }
    // Later 'error' events (the cancellation we caused) must not go unhandled.
    this.call.on('error', () => undefined);
    this.options.onClose?.(mapped);
  }
}
