import type { ModelInferRequest, ModelInferResponse } from '../protocol';
import type { TritonServerConfig } from '../config';
import { CircuitBreaker, type BreakerState } from '../resilience';
import type { BalancedServer } from '../routing/balancer';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import {
  TritonClient,
  mapGrpcError,
  grpcStatusName,
  type CallContext,
  type ModelStream,
  type ModelStreamOptions,
  type UnaryResponseSink,
} from '../triton';
import { RecentCalls, type Metrics, type RecentCallsSummary } from '../observability';
import { ProxyError, isProxyError } from '../errors';

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

type OpenCall = NonNullable<CallContext['open']> extends Set<infer C> ? C : never;

/** The open-call set, remembering when each call started (O(1), nothing per call beyond the entry). */
class TimedCalls extends Set<OpenCall> {
  private readonly started = new WeakMap<OpenCall, number>();

  override add(call: OpenCall): this {
    this.started.set(call, performance.now());
    return super.add(call);
  }

  startedAt(call: OpenCall): number {
    return this.started.get(call) ?? 0;
  }
}

/** gRPC statuses that mean the server never answered (the call ended locally or the link did). */
const NO_ANSWER: ReadonlySet<number> = new Set([
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.CANCELLED,
]);

/** One server as the status page shows it: a copy, safe to keep and serialize. */
export interface UpstreamSnapshot {
  readonly name: string;
  readonly address: string;
  readonly group: string;
  /** Last health answer. */
  readonly ready: boolean;
  readonly draining: boolean;
  readonly breaker: BreakerState;
  /** Calls this replica has on the server now. */
  readonly inflight: number;
  /** Attempts that reached the server (breaker rejections and callers leaving excluded). */
  readonly recent: RecentCallsSummary;
}

export interface UpstreamDeps {
  client: TritonClient;
  breaker: CircuitBreaker;
  metrics: Metrics;
  retryAfterSeconds: number;
}

/**
 * One Triton server as the proxy sees it: its channel pool, its breaker, the
 * requests this replica has in flight on it, and its last health answer.
 */
export class Upstream implements BalancedServer {
  readonly name: string;
  readonly address: string;
  readonly group: string;
  readonly weight: number;
  readonly labels: Record<string, string>;
  readonly client: TritonClient;
  readonly breaker: CircuitBreaker;
  outstanding = 0;
  /** Last ServerReady answer; false until the first health check succeeds. */
  ready = false;
  draining = false;
  private readonly metrics: Metrics;
  private readonly retryAfterSeconds: number;
  private readonly okAttempts;
  private readonly latency;
  private idleWaiters: Array<() => void> = [];
  /** Inference calls on the wire now, so a hung server's calls can be taken back. */
  private readonly openCalls = new TimedCalls();
  /** performance.now() of the last answer from the server (success or a status it sent). */
  lastAnswerAt = 0;
  /** Bumped by abandonInflight(); a CANCELLED call that saw it change was ours to cancel. */
  private abandonments = 0;
  /** Recent attempts for the status page: counters in a sliding window, nothing allocated per call. */
  private readonly recent = new RecentCalls();

  constructor(config: TritonServerConfig, deps: UpstreamDeps) {
    this.name = config.name;
    this.address = config.address;
    this.group = config.group;
    this.weight = config.weight;
    this.labels = config.labels;
    this.client = deps.client;
    this.breaker = deps.breaker;
    this.metrics = deps.metrics;
    this.retryAfterSeconds = deps.retryAfterSeconds;
    this.okAttempts = deps.metrics.upstreamAttempts.labels(this.name, 'ok');
    this.latency = deps.metrics.upstreamDuration.labels(this.name);
    this.publishBreakerState();
    this.breaker.onStateChange(() => this.publishBreakerState());
  }

  /** Sets this server's breaker gauge (also after a draining predecessor of the same name dropped it). */
  publishBreakerState(): void {
    this.metrics.breakerState.labels(this.name).set(BREAKER_GAUGE[this.breaker.state]);
  }

  snapshot(): UpstreamSnapshot {
    return {
      name: this.name,
      address: this.address,
      group: this.group,
      ready: this.ready,
      draining: this.draining,
      breaker: this.breaker.state,
      inflight: this.outstanding,
      recent: this.recent.summary(performance.now()),
    };
  }

  /** Eligible for new requests: healthy, not leaving, breaker letting calls through. */
  get available(): boolean {
    return this.ready && !this.draining && !this.breaker.isOpen();
  }

  infer(request: ModelInferRequest, ctx: CallContext): Promise<ModelInferResponse> {
    return this.track(
      () => this.client.modelInfer(request, { ...ctx, open: this.openCalls }),
      ctx.signal,
    );
  }

  /**
   * ModelInfer with the client's encoded message (in the pieces it arrived
   * in), answered with Triton's encoded response, or passed on to `sink` as
   * it arrives (then nothing is returned).
   */
  inferBytes(
    message: readonly Buffer[],
    ctx: CallContext,
    sink?: UnaryResponseSink,
  ): Promise<Buffer | undefined> {
    return this.track(
      () => this.client.modelInferBytes(message, { ...ctx, open: this.openCalls }, sink),
      ctx.signal,
    );
  }

  /**
   * Opens a ModelStreamInfer stream here, lets `send` write the request(s),
   * and resolves once the server's first message arrived (null when it ended
   * the stream without one). That first part is the attempt the breaker
   * judges and a retry may repeat elsewhere; after it, what the stream does
   * is the stream's own business. The stream counts as outstanding on this
   * server until it is over, is cancelled by abandonInflight() like a call,
   * and its failures reach the reader as mapped ProxyErrors.
   */
  async startStream(
    send: (stream: ModelStream) => void,
    options: Omit<ModelStreamOptions, 'open' | 'mapError' | 'onClose'> = {},
  ): Promise<{ stream: ModelStream; first: Buffer | null }> {
    const abandonments = this.abandonments;
    let opened: ModelStream | undefined;
    return this.track(async () => {
      this.outstanding++;
      const stream = this.client.openStream({
        ...options,
        open: this.openCalls,
        mapError: (err) => this.mapError(err, abandonments !== this.abandonments, options.signal),
        onClose: (error) => {
          this.settleOne();
          if (
            error !== null &&
            opened !== undefined &&
            (error as ProxyError).code !== 'CLIENT_CLOSED'
          )
            this.countStreamError(error);
        },
      });
      try {
        send(stream);
      } catch (err) {
        stream.cancel();
        throw err;
      }
      const first = await stream.next();
      opened = stream;
      return { stream, first };
    }, options.signal);
  }

  /** A failure after the first message: not the breaker's to judge, still an upstream error. */
  private countStreamError(error: Error): void {
    const e = error as ProxyError;
    const code = e.grpcCode === undefined ? e.code : grpcStatusName(e.grpcCode);
    this.metrics.upstreamErrors.labels(this.name, code).inc();
  }

  /**
   * Cancels every inference call waiting on this server; each fails as a
   * retryable server fault, so its request moves to another server within
   * its own deadline instead of waiting for that deadline here. For a server
   * that stopped answering at all (health check timed out), not for one
   * that answers "not ready": that one is finishing its work.
   */
  abandonInflight(startedBefore = Infinity): number {
    const calls = [...this.openCalls].filter((c) => this.openCalls.startedAt(c) < startedBefore);
    if (calls.length === 0) return 0;
    this.abandonments++;
    for (const call of calls) {
      this.openCalls.delete(call);
      call.cancel();
    }
    return calls.length;
  }

  /** A control RPC, under the same breaker and error mapping as inference. */
  call<Res = Record<string, unknown>>(
    method: string,
    request: Record<string, unknown>,
    ctx: CallContext,
  ): Promise<Res> {
    return this.track(() => this.client.call<Res>(method, request, ctx), ctx.signal);
  }

  /**
   * Repository control (load, unload) with the same error mapping, outside
   * the breaker: a model that fails to load (Triton INTERNAL) says nothing
   * about whether this server answers inference, and must not open the
   * circuit for every other model it serves.
   */
  repositoryCall<Res = Record<string, unknown>>(
    method: 'RepositoryModelLoad' | 'RepositoryModelUnload',
    request: Record<string, unknown>,
    ctx: CallContext,
  ): Promise<Res> {
    const abandonments = this.abandonments;
    return this.client.call<Res>(method, request, ctx).catch((err: unknown) => {
      throw this.mapError(err, abandonments !== this.abandonments, ctx.signal);
    });
  }

  private async track<T>(fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    this.outstanding++;
    const start = performance.now();
    const abandonments = this.abandonments;
    // False when the breaker refused the call: it never reached the server.
    let reached = false;
    let failed = true;
    try {
      const result = await this.breaker.execute(() => {
        reached = true;
        return fn().catch((err: unknown) => {
          const code = (err as ServiceError).code;
          if (typeof code === 'number' && !NO_ANSWER.has(code))
            this.lastAnswerAt = performance.now();
          throw this.mapError(err, abandonments !== this.abandonments, signal);
        });
      });
      this.lastAnswerAt = performance.now();
      this.okAttempts.inc();
      failed = false;
      return result;
    } catch (err) {
      const e = err as ProxyError;
      if (e.code === 'CLIENT_CLOSED') {
        // The caller left: an attempt that says nothing about this server.
        reached = false;
        this.metrics.upstreamAttempts.labels(this.name, 'client_closed').inc();
        throw err;
      }
      const code = e.grpcCode === undefined ? e.code : grpcStatusName(e.grpcCode);
      this.metrics.upstreamAttempts.labels(this.name, code).inc();
      this.metrics.upstreamErrors.labels(this.name, code).inc();
      throw err;
    } finally {
      const end = performance.now();
      this.latency.observe((end - start) / 1000);
      if (reached) this.recent.record((end - start) / 1000, failed, end);
      this.settleOne();
    }
  }

  private settleOne(): void {
    if (--this.outstanding === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private mapError(
    err: unknown,
    abandonedSince: boolean,
    signal: AbortSignal | undefined,
  ): ProxyError {
    if (isProxyError(err)) return err;
    if (signal?.aborted && (err as ServiceError).code === GrpcStatus.CANCELLED) {
      return new ProxyError('CLIENT_CLOSED', `the caller cancelled the call to '${this.name}'`, {
        server: this.name,
        cause: err,
      });
    }
    if (abandonedSince && (err as ServiceError).code === GrpcStatus.CANCELLED) {
      return new ProxyError(
        'UPSTREAM_UNAVAILABLE',
        `Triton server '${this.name}' stopped answering`,
        {
          server: this.name,
          serverFault: true,
          grpcCode: GrpcStatus.UNAVAILABLE,
          retryAfterSeconds: this.retryAfterSeconds,
          cause: err,
        },
      );
    }
    return mapGrpcError(err as Error, this.name, this.retryAfterSeconds);
  }

  /** Resolves when nothing is in flight on this server (for draining). */
  idle(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.breaker.shutdown();
    this.client.close();
    this.metrics.breakerState.remove(this.name);
  }
}
