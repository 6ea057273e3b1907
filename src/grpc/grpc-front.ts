import type {
  Http2Server,
  IncomingHttpHeaders,
  ServerHttp2Session,
  ServerHttp2Stream,
} from 'node:http2';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type MethodDefinition,
  type ServerDuplexStream,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import {
  mayUseModel,
  type AccessControl,
  type Client,
  type QuotaEnforcer,
  type Scope,
} from '../access';
import { toProxyError } from '../errors';
import type { ControlService, InferService, SettingsService } from '../inference';
import { ServedExtensions, TRITON_EXTENSIONS, type TritonExtension } from '../protocol';
import type { ErrorReporter, Metrics, RequestTrace, Tracer } from '../observability';
import { MODEL_INFER_PATH, MODEL_STREAM_INFER_PATH, SERVICE_NAME, grpcStatusName } from '../triton';
import { callMetaOf, startGrpcSpan, type GrpcCallMeta } from './call-meta';
import { acceptRawUnaryCall, type RawUnaryCall } from './raw-unary-call';
import { errorResponse } from './status';

export interface GrpcFrontOptions {
  host: string;
  /** Port to bind; 0 picks a free one (the proxy's config uses 0 to mean "off" and never starts this). */
  port: number;
  /** Largest message a client may send (MAX_BODY_BYTES), checked from the frame header before it is read. */
  maxReceiveMessageBytes: number;
  /** Largest message sent back (Triton's answers pass through, so the upstream limit). */
  maxSendMessageBytes: number;
  /** HTTP/2 receive window per connection and stream. */
  flowControlWindowBytes: number;
  /** Accept W3C traceparent metadata, forward it and log the trace id. */
  tracing: boolean;
  /**
   * The HTTP listener's certificate, key and client CA (mutual TLS when
   * `ca` is set); without it the port speaks plaintext HTTP/2.
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
}

export interface GrpcFrontDeps {
  infer: InferService;
  control: ControlService;
  /** LogSettings and TraceSetting, fanned out to the fleet as the REST routes do. */
  settings: SettingsService;
  /** The same authentication, scopes and model globs as the REST routes. */
  access: AccessControl;
  /** The same per-client quotas as the REST routes. */
  quota: QuotaEnforcer;
  packageDefinition: PackageDefinition;
  metrics: Metrics;
  errors: ErrorReporter;
  /** OpenTelemetry, when an OTLP endpoint is configured: a span per call. */
  tracer?: Tracer;
}

type Json = Record<string, unknown>;

/** One unary control RPC: the scope it needs, the model it names, and what it does. */
interface ControlRpc {
  scope: Scope;
  /** The model the request names ('' for none), checked against the client's model globs. */
  model?: (request: Json) => string;
  run: (request: Json, meta: GrpcCallMeta, headers: Metadata, client: Client) => Promise<Json>;
}

const identity = (b: Buffer): Buffer => b;

/**
 * The RPC that serves each of Triton's extensions over gRPC; the rest are
 * features of ModelInfer requests, which are passed to Triton as sent.
 */
const EXTENSION_RPCS: Partial<Record<TritonExtension, string>> = {
  model_repository: 'RepositoryModelLoad',
  'model_repository(unload_dependents)': 'RepositoryModelUnload',
  model_configuration: 'ModelConfig',
  statistics: 'ModelStatistics',
  system_shared_memory: 'SystemSharedMemoryRegister',
  cuda_shared_memory: 'CudaSharedMemoryRegister',
  trace: 'TraceSetting',
  logging: 'LogSettings',
};

type Timer = { observe(seconds: number): void };

type StreamListener = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

/**
 * The gRPC front end: Triton's inference.GRPCInferenceService for clients
 * that speak gRPC (tritonclient.grpc, perf_analyzer -i grpc, generated
 * stubs), with the same use cases, and so the same policies, as the REST
 * routes. ModelInfer is passed through without transcoding: its request and
 * response are bytes here (served on the HTTP/2 stream, see
 * serveModelInferDirectly), and only the use case reads the few fields it
 * routes on; ModelStreamInfer likewise with identity serializers.
 */
export class GrpcFront {
  private readonly server: Server;
  private boundPort = 0;
  /** What ServerMetadata lists: the extensions whose RPCs this front end implements. */
  private readonly served = new ServedExtensions();

  constructor(
    private readonly options: GrpcFrontOptions,
    private readonly deps: GrpcFrontDeps,
  ) {
    this.server = new Server({
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
      'grpc.max_send_message_length': options.maxSendMessageBytes,
    });
    const base = deps.packageDefinition[SERVICE_NAME] as unknown as Record<
      string,
      MethodDefinition<unknown, unknown>
    >;
    const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
    const implementation: UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(this.controlRpcs())) {
      const method = base[name];
      if (!method) throw new Error(`${SERVICE_NAME} has no method ${name}`);
      definition[name] = method;
      implementation[name] = this.unary(name, handler);
    }
    for (const e of TRITON_EXTENSIONS) {
      const rpc = EXTENSION_RPCS[e];
      if (rpc === undefined || implementation[rpc] !== undefined) this.served.serve(e);
    }
    // ModelInfer is served on the HTTP/2 stream itself (see serveModelInferDirectly).
    const modelStreamInfer: MethodDefinition<Buffer, Buffer> = {
      path: MODEL_STREAM_INFER_PATH,
      originalName: 'modelStreamInfer',
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    definition.ModelStreamInfer = modelStreamInfer as MethodDefinition<unknown, unknown>;
    implementation.ModelStreamInfer = (call: ServerDuplexStream<Buffer, Buffer>) =>
      this.modelStreamInfer(call);
    this.server.addService(definition as ServiceDefinition, implementation);
  }

  /** Binds HOST:port and starts serving; resolves with the bound port. */
  start(): Promise<number> {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${this.options.port}`, this.credentials(), (err, port) => {
        if (err) {
          reject(
            new Error(
              `gRPC front end cannot listen on ${host}:${this.options.port}: ${err.message}`,
            ),
          );
          return;
        }
        this.boundPort = port;
        try {
          for (const http2Server of this.http2Servers()) {
            this.tuneSessions(http2Server);
            this.serveModelInferDirectly(http2Server);
          }
        } catch (e) {
          this.server.forceShutdown();
          reject(e as Error);
          return;
        }
        resolve(port);
      });
    });
  }

  port(): number {
    return this.boundPort;
  }

  /**
   * Serves a renewed certificate (and client CA) to new connections; open
   * ones keep theirs. The files are watched by the same code as the HTTP
   * listener's, which keeps the previous certificate when a new pair does
   * not load; grpc-js's own file watcher would instead refuse connections
   * until its first read and after a failed one.
   */
  setSecureContext(secure: SecureContextOptions): void {
    for (const http2Server of this.http2Servers()) {
      (http2Server as unknown as TlsServer).setSecureContext(secure);
    }
  }

  private credentials(): ServerCredentials {
    const tls = this.options.tls;
    if (tls === undefined) return ServerCredentials.createInsecure();
    return ServerCredentials.createSsl(
      tls.ca ?? null,
      [{ private_key: tls.key, cert_chain: tls.cert }],
      // With a client CA, a client without a certificate it signed fails the handshake.
      tls.ca !== undefined,
    );
  }

  /**
   * Stops accepting connections and calls (clients get GOAWAY and move to
   * another replica); resolves when the calls already open have finished.
   */
  drain(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }

  /** Ends everything at once (open calls are cancelled). */
  close(): void {
    this.server.forceShutdown();
  }

  /**
   * grpc-js keeps its HTTP/2 servers in a private map and has no option for
   * their windows or for serving one method outside its call machinery. The
   * tests check both (the window a client sees, ModelInfer answered), so a
   * grpc-js change that moves the map fails there and at start, not quietly.
   */
  private http2Servers(): Http2Server[] {
    const servers = (this.server as unknown as { http2Servers?: Map<Http2Server, unknown> })
      .http2Servers;
    if (!(servers instanceof Map) || servers.size === 0) {
      throw new Error('gRPC front end: @grpc/grpc-js no longer exposes its HTTP/2 servers');
    }
    return [...servers.keys()];
  }

  /**
   * grpc-js sizes a server's HTTP/2 windows at 64 KiB; 4 MiB tensors would
   * then crawl in 64 KiB round trips. Each new session gets the same window
   * as the upstream channels instead.
   */
  private tuneSessions(http2Server: Http2Server): void {
    const window = this.options.flowControlWindowBytes;
    if (window <= 65_535) return;
    http2Server.on('session', (session: ServerHttp2Session) => {
      const apply = () => {
        try {
          session.settings({ initialWindowSize: window });
          session.setLocalWindowSize(window);
        } catch {
          // A session closing already keeps the defaults.
        }
      };
      if (session.encrypted === undefined || session.socket) apply();
      else session.once('connect', apply);
    });
  }

  /**
   * ModelInfer streams are taken before grpc-js sees them and served by
   * acceptRawUnaryCall: grpc-js copies every answer into a new framed buffer
   * (a 4 MiB copy and allocation per call) and builds interceptor objects
   * per call; measured with the bench (README "Performance"). Every other
   * RPC, and connection handling (settings, keepalive, GOAWAY on drain),
   * stays with grpc-js.
   */
  private serveModelInferDirectly(http2Server: Http2Server): void {
    const grpcJs = http2Server.listeners('stream') as StreamListener[];
    http2Server.removeAllListeners('stream');
    const limits = {
      maxReceiveMessageBytes: this.options.maxReceiveMessageBytes,
      maxSendMessageBytes: this.options.maxSendMessageBytes,
    };
    http2Server.on(
      'stream',
      (
        stream: ServerHttp2Stream,
        headers: IncomingHttpHeaders,
        flags: number,
        rawHeaders: string[],
      ) => {
        if (headers[':path'] === MODEL_INFER_PATH) {
          acceptRawUnaryCall(stream, headers, limits, (call) => this.modelInfer(call));
          return;
        }
        for (const listener of grpcJs)
          listener.call(http2Server, stream, headers, flags, rawHeaders);
      },
    );
  }

  private timer(method: string, code: GrpcStatus, client: Client | undefined): Timer {
    // LeanHistogram keeps one child per label set.
    return this.deps.metrics.grpcRequestDuration.labels(
      method,
      grpcStatusName(code),
      client?.label ?? 'none',
    );
  }

  /**
   * The front door for one call, in REST's order: the client, its scope
   * (and the model, when the request names it), then its quota; the quota's
   * RateLimit values go into the response metadata.
   */
  private async admit(
    metadata: Metadata,
    scope: Scope,
    model: string,
    bytes: number,
    headers: Metadata,
  ): Promise<Client> {
    const client = await this.authenticate(metadata);
    this.deps.access.authorize(client, scope, model === '' ? undefined : model);
    const quota = await this.deps.quota.consume(client, bytes);
    for (const [name, value] of Object.entries(quota.headers)) headers.set(name, value);
    return client;
  }

  /** The caller's client from `authorization: Bearer` or `x-api-key` metadata (401/403 otherwise). */
  private authenticate(metadata: Metadata): Promise<Client> {
    const auth = metadata.get('authorization')[0];
    const key = metadata.get('x-api-key')[0];
    return this.deps.access.authenticate({
      bearer: typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : undefined,
      apiKey: typeof key === 'string' ? key : undefined,
    });
  }

  private fail(
    method: string,
    err: unknown,
    meta: GrpcCallMeta,
    send: (error: ServerErrorResponse) => void,
    started: number,
    client: Client | undefined,
    span: RequestTrace | undefined,
  ): void {
    const e = toProxyError(err);
    this.deps.errors.report(e, {
      requestId: meta.requestId,
      path: `/${SERVICE_NAME}/${method}`,
      traceId: meta.traceId,
    });
    const response = errorResponse(e, meta.requestId);
    this.timer(method, response.code!, client).observe((performance.now() - started) / 1000);
    send(response);
    span?.end(response.code!, e);
  }

  private modelInfer(call: RawUnaryCall): void {
    const started = performance.now();
    const meta = callMetaOf(call, this.options.tracing);
    const tracer = this.deps.tracer;
    const span =
      tracer === undefined ? undefined : startGrpcSpan(tracer, 'ModelInfer', call.metadata, meta);
    let client: Client | undefined;
    const headers = new Metadata();
    headers.set('x-request-id', meta.requestId);
    // The model is checked once the use case has read it from the message.
    this.admit(call.metadata, 'infer', '', call.requestBytes, headers)
      .then((c) => {
        client = c;
        return this.deps.infer.inferMessage({
          message: call.request,
          messageBytes: call.requestBytes,
          answer: call.answer(headers),
          deadline: meta.deadline,
          requestId: meta.requestId,
          traceparent: meta.traceparent,
          trace: span,
          signal: call.signal,
          authorize: (model) => this.deps.access.authorize(c, 'infer', model),
          priority: c.priority,
        });
      })
      .then(
        (answer) => {
          if (answer.cacheStatus !== undefined) headers.set('x-cache', answer.cacheStatus);
          this.timer('ModelInfer', GrpcStatus.OK, client).observe(
            (performance.now() - started) / 1000,
          );
          if (answer.message === undefined) call.end();
          else call.respond(answer.message, headers);
          span?.end(GrpcStatus.OK);
        },
        (err: unknown) => {
          if (call.signal.aborted) {
            // The client is gone (or its deadline passed): nobody reads an answer.
            this.timer('ModelInfer', GrpcStatus.CANCELLED, client).observe(
              (performance.now() - started) / 1000,
            );
            span?.end(GrpcStatus.CANCELLED, toProxyError(err));
            return;
          }
          this.fail('ModelInfer', err, meta, (e) => call.fail(e), started, client, span);
        },
      );
  }

  /**
   * ModelStreamInfer: requests are read as they come (at most a few held
   * unread, then the client is paused by HTTP/2 flow control), responses are
   * written as Triton sends them, waiting for the client to drain.
   */
  private modelStreamInfer(call: ServerDuplexStream<Buffer, Buffer>): void {
    const started = performance.now();
    const meta = callMetaOf(call, this.options.tracing);
    const tracer = this.deps.tracer;
    const span =
      tracer === undefined
        ? undefined
        : startGrpcSpan(tracer, 'ModelStreamInfer', call.metadata, meta);
    const controller = new AbortController();
    const incoming = new RequestQueue(call);
    call.once('cancelled', () => {
      controller.abort();
      incoming.close();
    });
    call.on('error', () => incoming.close());
    let client: Client | undefined;
    const observe = (code: GrpcStatus) =>
      this.timer('ModelStreamInfer', code, client).observe((performance.now() - started) / 1000);
    const headers = new Metadata();
    headers.set('x-request-id', meta.requestId);
    // One stream spends one request of the client's quota.
    this.admit(call.metadata, 'infer', '', 0, headers)
      .then(async (c) => {
        client = c;
        const first = await incoming.next();
        if (first === null) return;
        call.sendMetadata(headers);
        await this.deps.infer.forwardStream({
          first,
          nextRequest: () => incoming.next(),
          send: (response) =>
            call.write(response) || call.destroyed
              ? Promise.resolve()
              : new Promise<void>((resolve) => {
                  const done = () => {
                    call.off('drain', done);
                    call.off('close', done);
                    resolve();
                  };
                  call.once('drain', done);
                  call.once('close', done);
                }),
          deadline: meta.deadline,
          requestId: meta.requestId,
          traceparent: meta.traceparent,
          trace: span,
          signal: controller.signal,
          authorize: (model) => this.deps.access.authorize(c, 'infer', model),
          priority: c.priority,
        });
      })
      .then(
        () => {
          observe(GrpcStatus.OK);
          call.end();
          span?.end(GrpcStatus.OK);
        },
        (err: unknown) => {
          if (controller.signal.aborted) {
            observe(GrpcStatus.CANCELLED);
            span?.end(GrpcStatus.CANCELLED, toProxyError(err));
            return;
          }
          const e = toProxyError(err);
          this.deps.errors.report(e, {
            requestId: meta.requestId,
            path: MODEL_STREAM_INFER_PATH,
            traceId: meta.traceId,
          });
          const response = errorResponse(e, meta.requestId);
          observe(response.code!);
          call.emit('error', response);
          span?.end(response.code!, e);
        },
      );
  }

  private unary(method: string, rpc: ControlRpc) {
    return (call: ServerUnaryCall<Json, Json>, callback: sendUnaryData<Json>): void => {
      const started = performance.now();
      const meta = callMetaOf(call, this.options.tracing);
      const tracer = this.deps.tracer;
      const span =
        tracer === undefined ? undefined : startGrpcSpan(tracer, method, call.metadata, meta);
      const headers = new Metadata();
      headers.set('x-request-id', meta.requestId);
      let client: Client | undefined;
      this.admit(call.metadata, rpc.scope, rpc.model?.(call.request) ?? '', 0, headers)
        .then((c) => {
          client = c;
          return rpc.run(call.request, meta, headers, c);
        })
        .then(
          (response) => {
            call.sendMetadata(headers);
            this.timer(method, GrpcStatus.OK, client).observe((performance.now() - started) / 1000);
            callback(null, response);
            span?.end(GrpcStatus.OK);
          },
          (err: unknown) => this.fail(method, err, meta, (e) => callback(e), started, client, span),
        );
    };
  }

  /**
   * The control RPCs, each a call of one ControlService use case, with the
   * scope the REST route of the same call needs.
   */
  private controlRpcs(): Record<string, ControlRpc> {
    const { control, access, settings } = this.deps;
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    const byName = (req: Json) => str(req.name);
    const byModelName = (req: Json) => str(req.model_name);
    const params = (req: Json): Json => (req.parameters as Json | undefined) ?? {};
    // Fleet-wide settings: the answer names the server(s) that read or applied them.
    const settingsRpc =
      (method: 'LogSettings' | 'TraceSetting'): ControlRpc['run'] =>
      async (req, meta, headers) => {
        const answer = await settings.rpc(method, req, meta.targetServer, meta);
        headers.set('x-triton-server', answer.servers.join(','));
        return answer.settings;
      };
    return {
      ServerLive: {
        scope: 'read',
        run: async (_req, meta) => ({ live: await control.serverLive(meta) }),
      },
      ServerReady: { scope: 'read', run: async () => ({ ready: control.serverReady() }) },
      // Triton's gRPC endpoint answers ready=false (not an error) for unknown models and versions.
      ModelReady: {
        scope: 'read',
        model: byName,
        run: async (req, meta) => ({
          ready: await control.modelReady(str(req.name), str(req.version), meta),
        }),
      },
      ServerMetadata: {
        scope: 'read',
        run: async (_req, meta) => {
          const metadata = await control.serverMetadata(meta);
          const upstream = Array.isArray(metadata.extensions) ? metadata.extensions : undefined;
          return { ...metadata, extensions: this.served.list(upstream) };
        },
      },
      ModelMetadata: {
        scope: 'read',
        model: byName,
        run: (req, meta) => control.modelMetadata(str(req.name), str(req.version), meta),
      },
      ModelConfig: {
        scope: 'read',
        model: byName,
        run: async (req, meta) => ({
          config: await control.modelConfig(str(req.name), str(req.version), meta),
        }),
      },
      ModelStatistics: {
        scope: 'read',
        model: byName,
        run: async (req, meta, _headers, client) => {
          const stats = await control.modelStatistics(str(req.name), str(req.version), meta);
          // Statistics of every model: a client limited to some models sees only those.
          const list = (stats.model_stats as Array<{ name?: unknown }> | undefined) ?? [];
          return {
            ...stats,
            model_stats: list.filter((s) => mayUseModel(client, String(s.name))),
          };
        },
      },
      RepositoryIndex: {
        scope: 'read',
        run: async (req, meta, _headers, client) => ({
          models: (await control.repositoryIndex({ ready: req.ready === true }, meta)).filter((e) =>
            mayUseModel(client, e.name),
          ),
        }),
      },
      RepositoryModelLoad: {
        scope: 'admin',
        model: byModelName,
        run: async (req, meta, headers, client) => {
          access.authorizeLoad(client, str(req.model_name), Object.keys(params(req)));
          const server = await control.loadModel(
            str(req.model_name),
            params(req),
            meta.targetServer,
            meta,
          );
          headers.set('x-triton-server', server);
          return {};
        },
      },
      LogSettings: { scope: 'admin', run: settingsRpc('LogSettings') },
      TraceSetting: { scope: 'admin', model: byModelName, run: settingsRpc('TraceSetting') },
      RepositoryModelUnload: {
        scope: 'admin',
        model: byModelName,
        run: async (req, meta, headers) => {
          const servers = await control.unloadModel(
            str(req.model_name),
            params(req),
            meta.targetServer,
            meta,
          );
          if (servers.length > 0) headers.set('x-triton-server', servers.join(','));
          return {};
        },
      },
    };
  }
}

/** Requests of one client stream, pulled one at a time; the client is paused while a few wait. */
class RequestQueue {
  private static readonly HIGH_WATER = 8;
  private readonly queue: Buffer[] = [];
  private waiter: ((message: Buffer | null) => void) | undefined;
  private ended = false;
  private paused = false;

  constructor(private readonly call: ServerDuplexStream<Buffer, Buffer>) {
    call.on('data', (message: Buffer) => {
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = undefined;
        waiter(message);
        return;
      }
      this.queue.push(message);
      if (!this.paused && this.queue.length >= RequestQueue.HIGH_WATER) {
        this.paused = true;
        call.pause();
      }
    });
    call.on('end', () => this.close());
  }

  /** The next request, or null once the client half-closed (or went away). */
  next(): Promise<Buffer | null> {
    const message = this.queue.shift();
    if (message !== undefined) {
      if (this.paused && this.queue.length <= RequestQueue.HIGH_WATER >> 1) {
        this.paused = false;
        this.call.resume();
      }
      return Promise.resolve(message);
    }
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(null);
  }
}
