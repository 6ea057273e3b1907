import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { SERVICE_NAME, loadInferenceService } from '../../src/triton';
import { startTestProxy, type TestProxy } from './proxy-harness';
import type { Logger } from '../../src/observability';

/** A TestProxy with its gRPC front end on. */
export interface GrpcTestProxy extends TestProxy {
  /** host:port of the gRPC front end. */
  grpcAddress: string;
}

/** A port that was free a moment ago (for GRPC_PORT, where 0 means "off"). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** startTestProxy with GRPC_PORT on a free port (retried if another process takes it first). */
export async function startGrpcTestProxy(
  env: Record<string, string>,
  options: { logger?: Logger } = {},
): Promise<GrpcTestProxy> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const p = await startTestProxy({ ...env, GRPC_PORT: String(port) }, options);
      return { ...p, grpcAddress: `127.0.0.1:${p.proxy.grpcPort()}` };
    } catch (err) {
      if (attempt >= 3 || !/listen|EADDRINUSE|bind/i.test(String(err))) throw err;
    }
  }
}

export interface CallOptions {
  metadata?: Record<string, string>;
  /** Relative deadline; default 10 s. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** What a unary call returned, with the metadata a client sees. */
export interface CallAnswer<T> {
  value: T;
  headers: grpc.Metadata;
}

/**
 * A plain grpc-js client with proto-loader's codec for control RPCs and
 * raw bytes for ModelInfer, so tests can compare what the proxy and a server
 * answer to the same bytes.
 */
export class GrpcTestClient {
  readonly client: grpc.Client;
  private readonly service = loadInferenceService()[SERVICE_NAME] as unknown as Record<
    string,
    MethodDefinition<object, object>
  >;

  constructor(address: string, credentials = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(address, credentials, {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  /** A control RPC (or ModelInfer) with proto-loader's codec. */
  async call<Res = Record<string, unknown>>(
    method: string,
    request: object,
    options: CallOptions = {},
  ): Promise<Res> {
    return (await this.callWithHeaders<Res>(method, request, options)).value;
  }

  callWithHeaders<Res>(
    method: string,
    request: object,
    options: CallOptions = {},
  ): Promise<CallAnswer<Res>> {
    const d = this.service[method];
    if (d === undefined) throw new Error(`no RPC ${method}`);
    return this.unary(
      d.path,
      d.requestSerialize as (v: object) => Buffer,
      d.responseDeserialize as (b: Buffer) => Res,
      request,
      options,
    );
  }

  /** ModelInfer with an encoded request, answered with the encoded response. */
  inferBytes(message: Buffer, options: CallOptions = {}): Promise<CallAnswer<Buffer>> {
    const id = (b: Buffer) => b;
    return this.unary('/inference.GRPCInferenceService/ModelInfer', id, id, message, options);
  }

  /** Encodes a ModelInferRequest object with proto-loader's codec. */
  encode(method: string, request: object): Buffer {
    return (this.service[method]!.requestSerialize as (v: object) => Buffer)(request);
  }

  decodeResponse<T = Record<string, unknown>>(method: string, bytes: Buffer): T {
    return (this.service[method]!.responseDeserialize as (b: Buffer) => T)(bytes);
  }

  private unary<Req, Res>(
    path: string,
    serialize: (v: Req) => Buffer,
    deserialize: (b: Buffer) => Res,
    request: Req,
    options: CallOptions,
  ): Promise<CallAnswer<Res>> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
    return new Promise((resolve, reject) => {
      let headers = new grpc.Metadata();
      const call = this.client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        md,
        { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
        (err: grpc.ServiceError | null, value?: Res) => {
          if (err) reject(err);
          else resolve({ value: value as Res, headers });
        },
      );
      call.on('metadata', (m: grpc.Metadata) => (headers = m));
      options.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  close(): void {
    this.client.close();
  }
}

/** Resolves with the error when `promise` fails with `code`; throws otherwise. */
export async function expectGrpcStatus(
  promise: Promise<unknown>,
  code: grpc.status,
): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    const e = error as grpc.ServiceError;
    if (e.code !== code) {
      throw new Error(`expected ${grpc.status[code]}, got ${grpc.status[e.code]}: ${e.details}`);
    }
    return e;
  }
  throw new Error(`expected ${grpc.status[code]}, but the call succeeded`);
}

export function int32Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

export function int32sOf(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) out.push(b.readInt32LE(i));
  return out;
}

/** A `simple` ModelInferRequest object (INT32 [1,16] each, raw contents). */
export function simpleInferRequest(
  a: number[],
  b: number[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    model_name: 'simple',
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: [1, 16] },
      { name: 'INPUT1', datatype: 'INT32', shape: [1, 16] },
    ],
    raw_input_contents: [int32Bytes(a), int32Bytes(b)],
    ...extra,
  };
}

export interface StreamOutcome {
  /** Each response as the client received it (encoded ModelStreamInferResponse). */
  responses: Buffer[];
  error?: grpc.ServiceError;
}

/** Opens ModelStreamInfer with raw bytes, sends `requests`, half-closes, collects everything. */
export function streamInfer(
  client: GrpcTestClient,
  requests: Buffer[],
  options: {
    metadata?: Record<string, string>;
    expect?: number;
    /** Called with the call once `onResponses` responses arrived. */
    onResponses?: [number, (call: grpc.ClientDuplexStream<Buffer, Buffer>) => void];
    halfClose?: boolean;
  } = {},
): Promise<StreamOutcome> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
  const id = (b: Buffer) => b;
  const call = client.client.makeBidiStreamRequest(
    '/inference.GRPCInferenceService/ModelStreamInfer',
    id,
    id,
    md,
    { deadline: Date.now() + 15_000 },
  );
  const responses: Buffer[] = [];
  return new Promise((resolve) => {
    call.on('data', (b: Buffer) => {
      responses.push(b);
      if (options.onResponses && responses.length === options.onResponses[0]) {
        options.onResponses[1](call);
      }
    });
    call.on('error', (error: grpc.ServiceError) => resolve({ responses, error }));
    call.on('end', () => resolve({ responses }));
    for (const r of requests) call.write(r);
    if (options.halfClose !== false) call.end();
  });
}
