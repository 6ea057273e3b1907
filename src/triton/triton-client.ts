import { readFileSync } from 'node:fs';
import {
  Client,
  Metadata,
  credentials,
  status as GrpcStatus,
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import type { PackageDefinition, MethodDefinition } from '@grpc/proto-loader';
import type { ModelInferRequest, ModelInferResponse } from '../protocol';
import type { TlsConfig } from '../config';
import { SERVICE_NAME, SERVICE_PATH, withoutNulls } from './protos';
import { GRPC_FRAME_HEADER_BYTES, decodeModelInferResponse, encodeModelInferRequest } from './wire';
import { GrpcCallError } from './grpc-call-error';
import { Http2UnaryChannel, type UnaryResponseSink } from './http2-unary';
import { encodeModelInferRequestFrameParts } from './model-infer-frame';
import { ModelStream, type ModelStreamOptions } from './model-stream';

/**
 * How ModelInfer reaches the server: 'http2' is the lean unary path over
 * node:http2 (src/triton/http2-unary.ts), 'grpc-js' the generic client.
 * Every other RPC always uses grpc-js.
 */
export type InferTransport = 'http2' | 'grpc-js';

export interface ChannelSettings {
  maxMessageBytes: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  flowControlWindowBytes: number;
  connectTimeoutMs: number;
  channelsPerServer: number;
  /** Default DEFAULT_INFER_TRANSPORT. */
  inferTransport?: InferTransport;
  /** Largest HTTP/2 DATA frame the server may send on the lean path; default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  /** Silence before a PING on a lean ModelInfer connection with calls open (0 = off). */
  inferPingAfterMs?: number;
  /** How long that PING may go unanswered before the connection is closed. */
  inferPingTimeoutMs?: number;
  /** Where the lean path reassembles a large ModelInfer answer (default: a fresh buffer). */
  allocateMessage?: (bytes: number) => Buffer;
}

export const DEFAULT_INFER_TRANSPORT: InferTransport = 'http2';
// Measured no difference between 16 KiB and 1 or 16 MiB frames for 4 MiB
// replies (client CPU within run-to-run noise), so the protocol default stays.
const DEFAULT_MAX_FRAME_BYTES = 16 * 1024;

export interface CallContext {
  /** Absolute deadline, ms since epoch. */
  deadline: number;
  requestId?: string;
  traceparent?: string;
  signal?: AbortSignal;
  /**
   * The caller's set of open calls: each call is in it from start to finish,
   * so the caller can cancel every call still waiting on a server that
   * stopped answering (a Set keeps that O(1) per call, no listener per call).
   */
  open?: Set<OpenCall>;
}

/** A call in flight, as `CallContext.open` holds it. */
export interface OpenCall {
  cancel(): void;
}

type Json = Record<string, unknown>;

const MODEL_INFER_PATH = `${SERVICE_PATH}ModelInfer`;

const identity = (b: Buffer): Buffer => b;

function channelCredentials(tls: TlsConfig | undefined): ChannelCredentials {
  if (!tls || !tls.enabled) return credentials.createInsecure();
  const read = (file: string) => (file ? readFileSync(file) : null);
  return credentials.createSsl(read(tls.caFile), read(tls.keyFile), read(tls.certFile));
}

/** The options each channel to a server is created with (exported for the compatibility check in tests). */
export function channelOptions(
  settings: ChannelSettings,
  tls: TlsConfig | undefined,
  index: number,
): ClientOptions {
  const options: ClientOptions = {
    'grpc.max_receive_message_length': settings.maxMessageBytes,
    'grpc.max_send_message_length': settings.maxMessageBytes,
    // Triton (gRPC core) accepts a ping every 5 minutes without data by default;
    // pinging more often earns a GOAWAY "too_many_pings".
    'grpc.keepalive_time_ms': settings.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 0,
    'grpc-node.flow_control_window': settings.flowControlWindowBytes,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 5000,
    // Each channel of a server's pool gets its own connection.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
    'triton-proxy.channel-index': index,
  } as ClientOptions;
  if (tls?.serverName) options['grpc.ssl_target_name_override'] = tls.serverName;
  return options;
}

/**
 * One Triton server: a small pool of long-lived channels (one by default) and
 * the RPCs the proxy makes. ModelInfer uses the hand-written wire codec so
 * tensor bytes are copied once into the frame and come back as views; every
 * other RPC goes through proto-loader.
 */
export class TritonClient {
  private readonly channels: Client[];
  private next = 0;
  /** The lean ModelInfer connections; empty when ModelInfer goes through grpc-js. */
  private readonly inferChannels: Http2UnaryChannel[] = [];
  private nextInfer = 0;
  private readonly methods: Record<string, MethodDefinition<object, object>>;

  constructor(
    readonly name: string,
    readonly address: string,
    packageDefinition: PackageDefinition,
    settings: ChannelSettings,
    tls?: TlsConfig,
  ) {
    const creds = channelCredentials(tls);
    this.channels = Array.from(
      { length: Math.max(1, settings.channelsPerServer) },
      (_, i) => new Client(address, creds, channelOptions(settings, tls, i)),
    );
    this.methods = packageDefinition[SERVICE_NAME] as unknown as Record<
      string,
      MethodDefinition<object, object>
    >;
    if ((settings.inferTransport ?? DEFAULT_INFER_TRANSPORT) === 'http2') {
      for (let i = 0; i < Math.max(1, settings.channelsPerServer); i++) {
        this.inferChannels.push(
          new Http2UnaryChannel({
            address,
            tls,
            maxMessageBytes: settings.maxMessageBytes,
            allocateMessage: settings.allocateMessage,
            flowControlWindowBytes: settings.flowControlWindowBytes,
            maxFrameBytes: settings.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
            keepaliveTimeMs: settings.keepaliveTimeMs,
            keepaliveTimeoutMs: settings.keepaliveTimeoutMs,
            connectTimeoutMs: settings.connectTimeoutMs,
            initialBackoffMs: 100,
            maxBackoffMs: 5000,
            pingAfterMs: settings.inferPingAfterMs ?? 0,
            pingTimeoutMs: settings.inferPingTimeoutMs ?? settings.keepaliveTimeoutMs,
          }),
        );
      }
    }
  }

  /** Which transport ModelInfer uses. */
  get inferTransport(): InferTransport {
    return this.inferChannels.length > 0 ? 'http2' : 'grpc-js';
  }

  private channel(): Client {
    const c = this.channels[this.next]!;
    this.next = (this.next + 1) % this.channels.length;
    return c;
  }

  private static metadata(ctx: CallContext): Metadata {
    const md = new Metadata();
    if (ctx.requestId) md.set('x-request-id', ctx.requestId);
    if (ctx.traceparent) md.set('traceparent', ctx.traceparent);
    return md;
  }

  private unary<Res>(
    path: string,
    serialize: (value: never) => Buffer,
    deserialize: (buf: Buffer) => Res,
    request: unknown,
    ctx: CallContext,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (ctx.signal?.aborted) {
        reject(
          Object.assign(new Error('call cancelled by the client'), {
            code: 1,
            details: 'call cancelled by the client',
          }),
        );
        return;
      }
      const options: CallOptions = { deadline: ctx.deadline };
      const call = this.channel().makeUnaryRequest(
        path,
        serialize as (value: unknown) => Buffer,
        deserialize,
        request,
        TritonClient.metadata(ctx),
        options,
        (err: ServiceError | null, value?: Res) => {
          ctx.open?.delete(call);
          if (onAbort) ctx.signal!.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(value as Res);
        },
      );
      ctx.open?.add(call);
      const onAbort = ctx.signal ? () => call.cancel() : undefined;
      if (onAbort) ctx.signal!.addEventListener('abort', onAbort, { once: true });
    });
  }

  modelInfer(request: ModelInferRequest, ctx: CallContext): Promise<ModelInferResponse> {
    if (this.inferChannels.length > 0) return this.leanInfer(request, ctx);
    return this.unary(
      `${SERVICE_PATH}ModelInfer`,
      encodeModelInferRequest as (value: never) => Buffer,
      decodeModelInferResponse,
      request,
      ctx,
    );
  }

  /**
   * ModelInfer with an already encoded request (the pieces it arrived in),
   * answered with the encoded response: the gRPC front end forwards a
   * client's message as it came (only a 5-byte frame header is added, the
   * pieces are written as they are) and hands Triton's answer back the same
   * way. With a `sink` (lean transport only) the answer is passed on as it
   * arrives and the promise resolves without a message once it is complete.
   */
  modelInferBytes(
    message: readonly Buffer[],
    ctx: CallContext,
    sink?: UnaryResponseSink,
  ): Promise<Buffer | undefined> {
    let length = 0;
    for (const part of message) length += part.length;
    if (this.inferChannels.length === 0) {
      const whole = message.length === 1 ? message[0]! : Buffer.concat(message, length);
      return this.unary(MODEL_INFER_PATH, identity, identity, whole, ctx);
    }
    return new Promise<Buffer | undefined>((resolve, reject) => {
      if (ctx.signal?.aborted) {
        reject(new GrpcCallError(GrpcStatus.CANCELLED, 'call cancelled by the client'));
        return;
      }
      const header = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES);
      header[0] = 0;
      header.writeUInt32BE(length, 1);
      const channel = this.inferChannels[this.nextInfer]!;
      this.nextInfer = (this.nextInfer + 1) % this.inferChannels.length;
      const call = channel.call(
        {
          path: MODEL_INFER_PATH,
          frame: [header, ...message],
          deadline: ctx.deadline,
          metadata: TritonClient.headers(ctx),
          sink,
        },
        (err, response) => {
          ctx.open?.delete(call);
          if (onAbort) ctx.signal!.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(response);
        },
      );
      ctx.open?.add(call);
      const onAbort = ctx.signal ? () => call.cancel() : undefined;
      if (onAbort) ctx.signal!.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * ModelInfer on the lean path. Failures have grpc-js's shape and wording
   * (code, details; serialization and parsing errors as INTERNAL), so the
   * error mapping and the retry policy cannot tell the transports apart.
   */
  private leanInfer(request: ModelInferRequest, ctx: CallContext): Promise<ModelInferResponse> {
    return new Promise<ModelInferResponse>((resolve, reject) => {
      if (ctx.signal?.aborted) {
        reject(new GrpcCallError(GrpcStatus.CANCELLED, 'call cancelled by the client'));
        return;
      }
      let frame: Buffer[];
      try {
        frame = encodeModelInferRequestFrameParts(request);
      } catch (err) {
        reject(
          new GrpcCallError(
            GrpcStatus.INTERNAL,
            `Request message serialization failure: ${(err as Error).message}`,
          ),
        );
        return;
      }
      const channel = this.inferChannels[this.nextInfer]!;
      this.nextInfer = (this.nextInfer + 1) % this.inferChannels.length;
      const call = channel.call(
        {
          path: MODEL_INFER_PATH,
          frame,
          deadline: ctx.deadline,
          metadata: TritonClient.headers(ctx),
        },
        (err, message) => {
          ctx.open?.delete(call);
          if (onAbort) ctx.signal!.removeEventListener('abort', onAbort);
          if (err) {
            reject(err);
            return;
          }
          try {
            resolve(decodeModelInferResponse(message!));
          } catch (e) {
            reject(
              new GrpcCallError(
                GrpcStatus.INTERNAL,
                `Response message parsing error: ${(e as Error).message}`,
              ),
            );
          }
        },
      );
      ctx.open?.add(call);
      const onAbort = ctx.signal ? () => call.cancel() : undefined;
      if (onAbort) ctx.signal!.addEventListener('abort', onAbort, { once: true });
    });
  }

  private static headers(ctx: CallContext): Record<string, string> | undefined {
    if (!ctx.requestId && !ctx.traceparent) return undefined;
    const headers: Record<string, string> = {};
    if (ctx.requestId) headers['x-request-id'] = ctx.requestId;
    if (ctx.traceparent) headers['traceparent'] = ctx.traceparent;
    return headers;
  }

  /**
   * Opens a ModelStreamInfer stream on one of this server's channels (always
   * grpc-js: it owns HTTP/2 flow control, which is what holds a server back
   * when the reader is slow).
   */
  openStream(options: ModelStreamOptions = {}): ModelStream {
    const md = new Metadata();
    if (options.requestId) md.set('x-request-id', options.requestId);
    if (options.traceparent) md.set('traceparent', options.traceparent);
    return new ModelStream(this.channel(), md, options);
  }

  /** Any other RPC of the service, with proto-loader's generic codec. */
  call<Res = Json>(method: string, request: Json, ctx: CallContext): Promise<Res> {
    const def = this.methods[method];
    if (!def) return Promise.reject(new Error(`unknown RPC ${method}`));
    return this.unary(
      def.path,
      def.requestSerialize as (value: never) => Buffer,
      (buf: Buffer) => withoutNulls((def.responseDeserialize as (b: Buffer) => Res)(buf)),
      request,
      ctx,
    );
  }

  /**
   * Triton's ServerReady. A ready answer also ends the reconnect backoff of
   * the lean ModelInfer connections: after a restart the server takes
   * inference at once instead of after up to 5 s of failing fast.
   */
  async serverReady(deadline: number): Promise<boolean> {
    const res = await this.call<{ ready: boolean }>('ServerReady', {}, { deadline });
    if (res.ready === true) for (const c of this.inferChannels) c.resetBackoff();
    return res.ready === true;
  }

  /**
   * An HTTP/2 PING on each lean ModelInfer connection: false when one went
   * unanswered within timeoutMs (that connection is then closed and its calls
   * fail over). True with the grpc-js transport, whose keepalive does this.
   */
  async pingInference(timeoutMs: number): Promise<boolean> {
    const alive = await Promise.all(this.inferChannels.map((c) => c.checkAlive(timeoutMs)));
    return alive.every((a) => a);
  }

  /** Resolves once a connection is up, or rejects at the deadline. */
  waitForReady(deadline: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.channels[0]!.waitForReady(deadline, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    for (const c of this.channels) c.close();
    for (const c of this.inferChannels) c.close();
  }
}
