import net from 'node:net';
import {
  Server,
  ServerCredentials,
  type ChannelOptions,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { CallCounter, type CallCounts } from './call-counter';
import { CallGate } from './call-gate';
import {
  Faults,
  type FailNextRule,
  type FailureRule,
  type Latency,
  type StreamFailureRule,
} from './faults';
import { defaultModels, type ModelDefinition } from './models';
import { loadInferenceService } from './proto';
import { ModelRepository, type LoadBehaviour, type ModelState } from './repository';
import type { RpcName } from './rpc-names';
import {
  createServiceImplementation,
  type RecordedRequest,
  type ServiceState,
  type StreamCounts,
} from './service';
import { ServerSettings } from './settings';
import { serverExiting } from './triton-error';

export interface FakeTritonOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port); restarts reuse the port first bound. */
  port?: number;
  /** A label for tests and logs (e.g. which of several fakes); default "triton". */
  name?: string;
  /** ServerMetadata.name, like Triton's --id; default "triton". */
  serverId?: string;
  /** Reported as ServerMetadata.version. */
  version?: string;
  /** ServerMetadata.extensions; default the ones the fake serves. */
  extensions?: readonly string[];
  /** The repository; default defaultModels(). */
  models?: ModelDefinition[];
  /** Latency added to every call (or per RPC and model). */
  latencyMs?: Latency;
  /** Time a RepositoryModelLoad takes for models that do not set their own. */
  loadDelayMs?: number;
  /** grpc-js server options, over defaults that lift the message size limits as Triton does. */
  grpcOptions?: ChannelOptions;
  /** Where grpc_service.proto lives; found above this module by default. */
  protosDir?: string;
}

export interface StopOptions {
  /** How long a graceful stop waits for open calls and streams before forcing; default 2000. */
  graceMs?: number;
}

export interface RestartOptions {
  /**
   * Put every model in the repository back in its starting state (loaded or
   * not) with fresh statistics and load behaviour, as a restarted Triton would.
   * Default false: models keep the state they had.
   */
  resetModels?: boolean;
}

/** The extensions Triton lists in ServerMetadata, less those the fake does not serve. */
const EXTENSIONS = [
  'classification',
  'model_repository',
  'model_repository(unload_dependents)',
  'model_configuration',
  'binary_tensor_data',
  'parameters',
  'statistics',
  'trace',
  'logging',
];

// Triton sets no practical message size limit (MAX_GRPC_MESSAGE_SIZE = INT32_MAX).
const DEFAULT_GRPC_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

const BIND_ATTEMPTS = 20;
const BIND_RETRY_MS = 50;

/**
 * A Triton server double speaking inference.GRPCInferenceService over real
 * gRPC, controllable per test: latency, failures, hanging, graceful stop,
 * abrupt kill, restart on the same port, and model state changed behind the
 * proxy's back. Create with startFakeTriton().
 */
export class FakeTriton {
  readonly host: string;
  readonly name: string;
  private boundPort: number;
  private listener: Listener | undefined;
  private readonly service: ServiceDefinition;
  private readonly implementation: ReturnType<typeof createServiceImplementation>;
  private readonly state: ServiceState;
  private readonly gate: CallGate;
  private readonly grpcOptions: ChannelOptions;

  constructor(options: FakeTritonOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.name = options.name ?? 'triton';
    this.boundPort = options.port ?? 0;
    this.grpcOptions = { ...DEFAULT_GRPC_OPTIONS, ...options.grpcOptions };
    this.service = loadInferenceService(options.protosDir);
    const faults = new Faults(options.latencyMs ?? 0);
    this.gate = new CallGate(faults);
    this.state = {
      repository: new ModelRepository(options.models ?? defaultModels(), options.loadDelayMs ?? 0),
      counter: new CallCounter(),
      gate: this.gate,
      faults,
      serverName: options.serverId ?? 'triton',
      serverVersion: options.version ?? '2.61.0',
      extensions: options.extensions ?? EXTENSIONS,
      settings: new ServerSettings(),
      serverReady: true,
      lastRequest: undefined,
      streams: { opened: 0, cancelled: 0, responsesWritten: 0 },
    };
    this.implementation = createServiceImplementation(this.state);
  }

  /** The port bound (0 until the first listen). */
  get port(): number {
    return this.boundPort;
  }

  /** host:port, as a gRPC client target. */
  get address(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${host}:${this.boundPort}`;
  }

  get running(): boolean {
    return this.listener !== undefined;
  }

  /** Binds and serves; called by startFakeTriton and restart. */
  async listen(): Promise<void> {
    if (this.listener !== undefined) return;
    const server = new Server(this.grpcOptions);
    server.addService(this.service, this.implementation);
    // Connections are accepted here and injected into grpc-js, so that kill()
    // can cut the TCP connections themselves, as a crashed process would.
    const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    const sockets = new Set<net.Socket>();
    const tcp = net.createServer((socket) => {
      // grpc-js does not set TCP_NODELAY on server sockets; Triton (gRPC core) does.
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      injector.injectConnection(socket);
    });
    try {
      this.boundPort = await listenWithRetry(tcp, this.host, this.boundPort);
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
    this.listener = { tcp, server, sockets };
  }

  // ---- faults --------------------------------------------------------------

  setLatency(latency: Latency): void {
    this.state.faults.setLatency(latency);
  }

  /** The next `count` (default 1) matching calls fail with `code`. */
  failNext(rule: FailNextRule): void {
    this.state.faults.failNext(rule);
  }

  /** Every matching call fails with `code` until clearFailures(). */
  failAlways(rule: FailureRule): void {
    this.state.faults.failAlways(rule);
  }

  /** The next `count` (default 1) matching ModelStreamInfer requests fail after some responses. */
  failStreamAfter(rule: StreamFailureRule): void {
    this.state.faults.failStreamAfter(rule);
  }

  clearFailures(): void {
    this.state.faults.clearFailures();
  }

  /** While on, calls are accepted and held unanswered; off serves the held calls. */
  hang(on: boolean): void {
    this.gate.setHanging(on);
  }

  /** ServerReady's answer; while false, model and inference RPCs fail with "Server not ready". */
  setReady(ready: boolean): void {
    this.state.serverReady = ready;
  }

  // ---- lifecycle -----------------------------------------------------------

  /**
   * Graceful stop: no new connections, open calls finish; calls held by
   * hang() are answered UNAVAILABLE "Server exiting". Forces after graceMs.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const listener = this.listener;
    if (listener === undefined) return;
    this.listener = undefined;
    listener.tcp.close();
    this.gate.abandonHeld(serverExiting());
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        dropConnections(listener);
        resolve();
      }, options.graceMs ?? 2000);
      listener.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  /**
   * Abrupt death: every TCP connection is cut mid-call (clients see the
   * connection drop, not a gRPC status from the server) and nothing more is answered.
   */
  kill(): void {
    const listener = this.listener;
    if (listener === undefined) return;
    this.listener = undefined;
    this.gate.dropAll();
    listener.tcp.close();
    dropConnections(listener);
  }

  /**
   * Listens again on the same port, after a graceful stop() if still running
   * (kill() first for a crash and restart). The restarted fake does not hang.
   */
  async restart(options: RestartOptions = {}): Promise<void> {
    await this.stop();
    this.gate.setHanging(false);
    if (options.resetModels === true) {
      this.state.repository.reinitialise();
      this.state.settings.reset();
    }
    await this.listen();
  }

  // ---- models --------------------------------------------------------------

  addModel(definition: ModelDefinition): void {
    this.state.repository.add(definition);
  }

  removeModel(name: string): boolean {
    return this.state.repository.remove(name);
  }

  /** Makes every version READY at once, without an RPC (a load behind the proxy's back). */
  loadModel(name: string): void {
    this.state.repository.markLoaded(name);
  }

  /** Makes the model (or one version) UNAVAILABLE "unloaded" at once, without an RPC. */
  unloadModel(name: string, version?: string): void {
    this.state.repository.markUnloaded(name, version);
  }

  /** Delay and outcome of later RepositoryModelLoad calls for this model. */
  configureLoad(name: string, behaviour: LoadBehaviour): void {
    this.state.repository.configureLoad(name, behaviour);
  }

  /** Version -> state; {} for a model never loaded; undefined for one not in the repository. */
  modelStates(name: string): Record<string, { state: ModelState; reason: string }> | undefined {
    return this.state.repository.states(name);
  }

  // ---- observation ---------------------------------------------------------

  /** Log and trace settings back to what a freshly started Triton has. */
  resetSettings(): void {
    this.state.settings.reset();
  }

  /** The server's log settings, as its LogSettings RPC answers them (name -> value). */
  logSettings(): Record<string, boolean | number | string> {
    const out: Record<string, boolean | number | string> = {};
    for (const [key, v] of Object.entries(this.state.settings.logSettings().settings))
      out[key] = v.bool_param ?? v.uint32_param ?? v.string_param ?? '';
    return out;
  }

  /** The trace settings of the server ('') or of one model, as TraceSetting answers them. */
  traceSettings(model = ''): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [key, v] of Object.entries(this.state.settings.traceSettings(model).settings))
      out[key] = v.value;
    return out;
  }

  /** A snapshot of the calls received since start or resetCounters(). */
  get calls(): CallCounts {
    return this.state.counter.snapshot();
  }

  callCount(rpc: RpcName, model?: string): number {
    return this.state.counter.count(rpc, model);
  }

  /** Calls of `rpc` the client cancelled (or whose deadline passed) before they were answered. */
  cancelledCount(rpc: RpcName): number {
    return this.state.counter.cancelled(rpc);
  }

  resetCounters(): void {
    this.state.counter.reset();
    Object.assign(this.state.streams, { opened: 0, cancelled: 0, responsesWritten: 0 });
  }

  /** ModelStreamInfer streams opened, cancelled by their client, and responses written on them. */
  get streamCounts(): StreamCounts {
    return { ...this.state.streams };
  }

  /** The last ModelInfer (or stream) request, decoded, with its metadata. */
  get lastRequest(): RecordedRequest | undefined {
    return this.state.lastRequest;
  }
}

export async function startFakeTriton(options: FakeTritonOptions = {}): Promise<FakeTriton> {
  const fake = new FakeTriton(options);
  await fake.listen();
  return fake;
}

interface Listener {
  tcp: net.Server;
  server: Server;
  sockets: Set<net.Socket>;
}

function dropConnections(listener: Listener): void {
  for (const socket of listener.sockets) socket.destroy();
  listener.sockets.clear();
  listener.server.forceShutdown();
}

// After a kill the old listening socket closes on a later tick, so the same port can be busy briefly.
async function listenWithRetry(tcp: net.Server, host: string, port: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        tcp.once('error', onError);
        tcp.listen({ host, port, exclusive: true }, () => {
          tcp.off('error', onError);
          resolve();
        });
      });
      const address = tcp.address();
      if (address === null || typeof address === 'string') throw new Error('not a TCP listener');
      return address.port;
    } catch (error) {
      const busy = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!busy || port === 0 || attempt >= BIND_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, BIND_RETRY_MS));
    }
  }
}
