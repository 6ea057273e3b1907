import { ProxyError, invalidRequest, isProxyError, toProxyError } from '../errors';
import type {
  ModelInferRequest,
  ModelInferResponse,
  ParameterValue,
  Parameters,
} from '../protocol';
import { type EncodedInferResponse, type JsonWorkerPool } from '../codec';
import type { AdmissionController, AdmissionPriority } from '../admission';
import { SequenceAffinity, type Router } from '../routing';
import { executeWithRetry, type Backoff, type RetryBudget } from '../resilience';
import type { Upstream } from '../fleet';
import {
  decodeModelInferRequest,
  decodeModelInferResponse,
  encodeModelInferResponse,
  readModelInferRequestHead,
  type CallContext,
  type ModelInferRequestHead,
  type ModelStream,
  type UnaryResponseSink,
} from '../triton';
import type { ModelStateStore } from '../model-state';
import type { Metrics, RequestTrace, UpstreamRpc } from '../observability';
import type { CacheStatus, ResponseCache } from '../cache';

/** What every call into the inference services carries about its client. */
export interface ClientCall {
  requestId: string;
  traceparent?: string;
  /** The request's span when OpenTelemetry tracing is on (stages and attempts become its children). */
  trace?: RequestTrace;
  /** Aborted when the client cancels or goes away. */
  signal: AbortSignal;
  /** The client's priority: served first (high) or shed first (low) under overload. */
  priority?: AdmissionPriority;
}

export interface InferCall extends ClientCall {
  model: string;
  version: string;
  body: Buffer;
  /** Inference-Header-Content-Length, when the binary extension is used. */
  headerLength: number | undefined;
  /** X-Request-Timeout-Ms, when the client bounds the request itself. */
  timeoutMs?: number;
  /** The caller reserved the body's bytes before reading it (AdmissionController.reserveBytes). */
  bytesReserved?: boolean;
  /** The caller's Cache-Control directives that matter to the response cache. */
  cacheControl?: { noStore: boolean; noCache: boolean };
}

/** The rendered answer and how the cache obtained it (undefined: model not cached). */
export type InferResult = EncodedInferResponse & { cacheStatus: CacheStatus | undefined };

/** ModelInfer as a gRPC client sent it: the encoded message, forwarded without decoding tensors. */
export interface MessageInferCall extends ClientCall {
  /** An encoded inference.ModelInferRequest, in the pieces it arrived in (never joined to forward it). */
  message: readonly Buffer[];
  /** Its length in bytes. */
  messageBytes: number;
  /**
   * Where Triton's answer may go as it arrives, instead of being reassembled
   * and returned: used for models the response cache does not handle, on
   * the lean transport. The result then has no message.
   */
  answer?: UnaryResponseSink;
  /** The client's own deadline (grpc-timeout) in ms since epoch, when it set one. */
  deadline?: number;
  /** Checks the client may use the model the message names (throws FORBIDDEN). */
  authorize?: (model: string) => void;
}

/**
 * ModelStreamInfer as a gRPC client opened it: request messages pulled from
 * the client, response messages pushed back, all as encoded bytes.
 */
export interface MessageStreamCall extends ClientCall {
  /** The first request (the stream is routed on it). */
  first: Buffer;
  /** The client's next request; null once the client half-closed. */
  nextRequest: () => Promise<Buffer | null>;
  /** Sends one encoded ModelStreamInferResponse to the client; resolves when it may send more. */
  send: (response: Buffer) => Promise<void>;
  /** The client's deadline for the whole stream, when it set one. */
  deadline?: number;
  /** Checks the client may use a model a request names (throws FORBIDDEN). */
  authorize?: (model: string) => void;
}

/**
 * A gRPC ModelInfer answer: the encoded response (undefined when it went to
 * the call's `answer` sink), and how the cache obtained it (undefined: not cached).
 */
export interface MessageInferResult {
  message: Buffer | undefined;
  cacheStatus: CacheStatus | undefined;
}

/** Which protocol a request came in on (the `protocol` metric label). */
export type Protocol = 'http' | 'grpc';

/** What routing needs to know about one request. */
interface Route {
  model: string;
  version: string;
  /** Set for requests of a sequence (sticky, never retried elsewhere). */
  sequenceId: string | undefined;
  sequenceStart: boolean;
  sequenceEnd: boolean;
}

/** What every attempt passes to the server call besides the request itself. */
interface CallMetaForAttempts {
  requestId: string;
  traceparent?: string;
  trace?: RequestTrace;
}

/** Waits for (or triggers) a load of a model that is ready nowhere; resolves with a server name. */
export interface ModelLoader {
  ensureLoaded(
    model: string,
    version: string,
    options: { deadline: number; signal?: AbortSignal },
  ): Promise<string>;
}

export interface InferServiceDeps {
  /** REST bodies to requests: inline when small, in worker threads when large. */
  json: JsonWorkerPool;
  router: Router;
  servers: { get(name: string): Upstream | undefined };
  admission: AdmissionController;
  state: ModelStateStore;
  affinity: SequenceAffinity;
  loader: ModelLoader | undefined;
  cache: ResponseCache;
  metrics: Metrics;
  retry: { maxAttempts: number; backoff: Backoff; budget: RetryBudget };
  defaultTimeoutMs: number;
  /** Longest one attempt may wait before it is retried elsewhere; 0 = the whole deadline. */
  attemptTimeoutMs: number;
  retryAfterSeconds: number;
}

type StageTimer = { observe(seconds: number): void };

// grpc status DEADLINE_EXCEEDED; the number keeps grpc-js out of this module.
const GRPC_DEADLINE_EXCEEDED = 4;

/**
 * The version in the path read as Triton reads it (GetModelVersionFromString:
 * a leading integer, not negative), in canonical form so that "01" routes
 * like "1"; 400 with Triton's message otherwise.
 */
export function tritonVersion(version: string): string {
  if (version === '' || /^[1-9][0-9]*$/.test(version)) return version;
  const leading = /^\s*([+-]?[0-9]+)/.exec(version);
  const parsed = leading === null ? NaN : Number(leading[1]);
  if (!Number.isSafeInteger(parsed)) {
    throw invalidRequest(
      `failed to get model version from specified version string '${version}' (details: stol), version should be an integral value > 0`,
    );
  }
  if (parsed < 0) {
    throw invalidRequest(
      `invalid model version specified '${version}' , version should be an integral value > 0`,
    );
  }
  return String(parsed);
}

export function clientClosed(model: string, cause: unknown): ProxyError {
  if (isProxyError(cause) && cause.code === 'CLIENT_CLOSED') return cause;
  return new ProxyError('CLIENT_CLOSED', `client closed the request for model '${model}'`, {
    cause,
  });
}

function sequenceIdOf(parameters: Parameters): string | undefined {
  const id: ParameterValue | undefined = parameters.sequence_id;
  if (id === undefined || id === 0 || id === '' || id === 0n || typeof id === 'boolean')
    return undefined;
  return String(id);
}

/** The routing fields of an encoded ModelInferRequest; 400 naming the problem when malformed. */
function readHead(message: Buffer | readonly Buffer[]): ModelInferRequestHead {
  try {
    return readModelInferRequestHead(message);
  } catch (err) {
    throw invalidRequest(`malformed ModelInferRequest: ${(err as Error).message}`);
  }
}

function routeOf(model: string, version: string, parameters: Parameters): Route {
  return {
    model,
    version,
    sequenceId: sequenceIdOf(parameters),
    sequenceStart: parameters.sequence_start === true,
    sequenceEnd: parameters.sequence_end === true,
  };
}

/**
 * The inference use case: parse -> admission -> (pick -> call) with retries
 * -> encode. Each step is a module of its own; this function only says in
 * which order they run and what each outcome means for the request.
 */
export class InferService {
  private readonly stage: Record<'parse' | 'queue' | 'upstream' | 'encode', StageTimer>;

  constructor(private readonly deps: InferServiceDeps) {
    const h = deps.metrics.stageDuration;
    this.stage = {
      parse: h.labels('parse'),
      queue: h.labels('queue'),
      upstream: h.labels('upstream'),
      encode: h.labels('encode'),
    };
  }

  async infer(call: InferCall): Promise<InferResult> {
    const started = performance.now();
    let outcome = 'ok';
    // A model the fleet knows gets its own label at once (429s included);
    // names nobody knows never become label values.
    const labels = this.deps.metrics.models;
    let modelLabel = this.deps.state.snapshot().isKnown(call.model)
      ? labels.forKnown(call.model)
      : labels.forUntrusted(call.model);
    try {
      this.deps.metrics.requestBytes.observe(call.body.length);
      // A large body may move to a parse worker (its Buffer is then empty here): its size is kept.
      const bodyBytes = call.body.length;
      const { request, plan } = await this.deps.json.parse({
        body: call.body,
        headerLength: call.headerLength,
        modelName: call.model,
        modelVersion: tritonVersion(call.version),
      });
      // Triton sees the proxy's request id; the client gets back only an id it sent.
      const clientGaveId = request.id !== '';
      if (!clientGaveId) request.id = call.requestId;
      const parsed = performance.now();
      this.stage.parse.observe((parsed - started) / 1000);
      call.trace?.stage('parse', started, parsed);

      const deadline = Date.now() + this.timeoutMs(request.parameters, call.timeoutMs);
      const answer = await this.deps.cache.serve(
        request,
        {
          signal: call.signal,
          deadline,
          noStore: call.cacheControl?.noStore,
          noCache: call.cacheControl?.noCache,
        },
        (signal) => this.fetch(request, call, bodyBytes, deadline, signal),
      );
      const response = answer.response;
      modelLabel = this.deps.metrics.models.forKnown(call.model);
      const t3 = performance.now();
      if (!clientGaveId) response.id = '';
      // A cached or coalesced answer is shared: its bytes are copied, not moved, to a worker.
      const encoded = await this.deps.json.encode(response, plan, {
        exclusive: answer.status === undefined,
      });
      const t4 = performance.now();
      this.stage.encode.observe((t4 - t3) / 1000);
      call.trace?.stage('encode', t3, t4);
      this.deps.metrics.responseBytes.observe(encoded.byteLength);
      return { ...encoded, cacheStatus: answer.status };
    } catch (err) {
      // Whatever the attempt saw last (CANCELLED, an abort reason), a request
      // whose client left is the client's doing and is counted as such.
      const e = call.signal.aborted ? clientClosed(call.model, err) : toProxyError(err);
      outcome = e.code === 'CLIENT_CLOSED' ? 'client_closed' : e.code;
      throw e;
    } finally {
      this.duration(modelLabel, outcome, 'http').observe((performance.now() - started) / 1000);
    }
  }

  /**
   * ModelInfer for a gRPC client, without transcoding: only the model, version
   * and request parameters are read from the message (for routing, admission,
   * sequences and the deadline); the client's bytes go to Triton as they are
   * and Triton's encoded answer comes back the same way.
   */
  async inferMessage(call: MessageInferCall): Promise<MessageInferResult> {
    const started = performance.now();
    let outcome = 'ok';
    let modelLabel = 'other';
    let model = '';
    try {
      this.deps.metrics.requestBytes.observe(call.messageBytes);
      const head = readHead(call.message);
      model = head.modelName;
      call.trace?.setModel(model);
      call.authorize?.(model);
      const labels = this.deps.metrics.models;
      modelLabel = this.deps.state.snapshot().isKnown(model)
        ? labels.forKnown(model)
        : labels.forUntrusted(model);
      const route = routeOf(model, tritonVersion(head.modelVersion), head.parameters);
      const t1 = performance.now();
      this.stage.parse.observe((t1 - started) / 1000);
      call.trace?.stage('parse', started, t1);

      let deadline = Date.now() + this.timeoutMs(head.parameters, undefined);
      if (call.deadline !== undefined && call.deadline < deadline) deadline = call.deadline;
      if (this.deps.cache.handles(model)) {
        // Cached models only: decoded here so the key is the one REST requests get.
        const answer = await this.cachedMessage(call, route, deadline);
        modelLabel = labels.forKnown(model);
        this.deps.metrics.responseBytes.observe(answer.message!.length);
        return answer;
      }
      // The permit (and the request's bytes, kept for retries) is held until
      // the answer has been handed to the client's stream.
      const permit = await this.deps.admission.acquire(
        model,
        call.messageBytes,
        call.signal,
        deadline,
        call.priority,
      );
      const t2 = performance.now();
      this.stage.queue.observe((t2 - t1) / 1000);
      call.trace?.stage('queue', t1, t2);
      let response: Buffer | undefined;
      let answerBytes = -1;
      const target = call.answer;
      const sink: UnaryResponseSink | undefined = target && {
        begin: (length) => {
          target.begin(length);
          answerBytes = length;
        },
        write: (chunk, resume) => target.write(chunk, resume),
      };
      try {
        response = await this.callFleet(
          route,
          call,
          deadline,
          call.signal,
          'ModelInfer',
          (upstream, ctx) => upstream.inferBytes(call.message, ctx, sink),
          () => answerBytes >= 0,
        );
      } finally {
        permit.release();
      }
      modelLabel = labels.forKnown(model);
      this.stage.upstream.observe((performance.now() - t2) / 1000);
      this.deps.metrics.responseBytes.observe(response?.length ?? answerBytes);
      return { message: response, cacheStatus: undefined };
    } catch (err) {
      const e = call.signal.aborted ? clientClosed(model, err) : toProxyError(err);
      outcome = e.code === 'CLIENT_CLOSED' ? 'client_closed' : e.code;
      throw e;
    } finally {
      this.duration(modelLabel, outcome, 'grpc').observe((performance.now() - started) / 1000);
    }
  }

  /**
   * A gRPC ModelInfer for a model the response cache handles: the message is
   * decoded (the cache keys and stores what REST requests give it, so both
   * protocols share entries), a miss still forwards the client's own bytes,
   * and the answer is encoded from the entry with the client's id.
   */
  private async cachedMessage(
    call: MessageInferCall,
    route: Route,
    deadline: number,
  ): Promise<MessageInferResult> {
    let request: ModelInferRequest;
    const message =
      call.message.length === 1 ? call.message[0]! : Buffer.concat(call.message, call.messageBytes);
    try {
      request = decodeModelInferRequest(message);
    } catch (err) {
      throw invalidRequest(`malformed ModelInferRequest: ${(err as Error).message}`);
    }
    request.modelVersion = route.version;
    const answer = await this.deps.cache.serve(
      request,
      { signal: call.signal, deadline },
      async (signal) => {
        const permit = await this.deps.admission.acquire(
          route.model,
          call.messageBytes,
          signal,
          deadline,
          call.priority,
        );
        try {
          const bytes = await this.callFleet(
            route,
            call,
            deadline,
            signal,
            'ModelInfer',
            (upstream, ctx) => upstream.inferBytes(call.message, ctx),
          );
          return decodeModelInferResponse(bytes!);
        } finally {
          permit.release();
        }
      },
    );
    return { message: encodeModelInferResponse(answer.response), cacheStatus: answer.status };
  }

  /**
   * Admission, then the fleet with retries. `signal` aborts when nobody waits
   * for the answer any more (with coalescing, when every caller has gone).
   */
  private async fetch(
    request: ModelInferRequest,
    call: InferCall,
    bodyBytes: number,
    deadline: number,
    signal: AbortSignal,
  ): Promise<ModelInferResponse> {
    const t1 = performance.now();
    const permit = await this.deps.admission.acquire(
      call.model,
      call.bytesReserved === true ? 0 : bodyBytes,
      signal,
      deadline,
      call.priority,
    );
    const t2 = performance.now();
    this.stage.queue.observe((t2 - t1) / 1000);
    call.trace?.stage('queue', t1, t2);
    try {
      const response = await this.callFleet(
        routeOf(call.model, request.modelVersion, request.parameters),
        call,
        deadline,
        signal,
        'ModelInfer',
        (upstream, ctx) => upstream.infer(request, ctx),
      );
      this.stage.upstream.observe((performance.now() - t2) / 1000);
      return response;
    } finally {
      permit.release();
    }
  }

  /**
   * ModelStreamInfer for a gRPC client: one stream to one server, chosen by
   * the usual routing on the first request and held in admission while it is
   * open. Until the server's first response, requests are kept, and a server
   * that fails (retryable, not a sequence) is replaced by another one that
   * gets every request again: the same first-response rule as the SSE path.
   * After it, requests and responses pass through as bytes, and a failure
   * ends the client's stream with its status. Resolves when the server ended
   * the stream cleanly.
   */
  async forwardStream(call: MessageStreamCall): Promise<void> {
    const started = performance.now();
    let outcome = 'ok';
    let modelLabel = 'other';
    let model = '';
    let stream: ModelStream | undefined;
    try {
      const head = readHead(call.first);
      model = head.modelName;
      call.trace?.setModel(model);
      call.authorize?.(model);
      const labels = this.deps.metrics.models;
      modelLabel = this.deps.state.snapshot().isKnown(model)
        ? labels.forKnown(model)
        : labels.forUntrusted(model);
      const route = routeOf(model, tritonVersion(head.modelVersion), head.parameters);
      // The default deadline bounds the wait for the first response; the
      // stream itself lives as long as the client keeps it (its own deadline).
      let firstDeadline = Date.now() + this.timeoutMs(head.parameters, undefined);
      if (call.deadline !== undefined && call.deadline < firstDeadline)
        firstDeadline = call.deadline;
      const queued = call.trace && performance.now();
      const permit = await this.deps.admission.acquire(
        model,
        call.first.length,
        call.signal,
        firstDeadline,
        call.priority,
      );
      call.trace?.stage('queue', queued!, performance.now());
      try {
        const sent: Buffer[] = [call.first];
        let current: ModelStream | undefined;
        let clientDone = false;
        let established = false;
        // Requests keep flowing while the first response is awaited.
        const pump = (async () => {
          for (;;) {
            const message = await call.nextRequest();
            if (message === null) {
              clientDone = true;
              current?.end();
              return;
            }
            call.authorize?.(readHead(message).modelName);
            if (!established) sent.push(message);
            if (current && !current.write(message)) await current.drained();
          }
        })();
        // A request the front door refuses (or a malformed one) ends the stream with that error.
        let refused: unknown;
        pump.catch((err: unknown) => {
          refused = err;
          current?.cancel();
        });
        try {
          const opened = await this.callFleet(
            route,
            call,
            firstDeadline,
            call.signal,
            'ModelStreamInfer',
            (upstream, ctx) =>
              upstream.startStream(
                (s) => {
                  current = s;
                  for (const m of sent) s.write(m);
                  if (clientDone) s.end();
                },
                {
                  deadline: call.deadline,
                  firstMessageDeadline: ctx.deadline,
                  requestId: call.requestId,
                  traceparent: ctx.traceparent,
                  signal: ctx.signal,
                },
              ),
          );
          stream = opened.stream;
          established = true;
          sent.length = 0;
          modelLabel = labels.forKnown(model);
          if (opened.first !== null) await call.send(opened.first);
          for (;;) {
            const next = await stream.next();
            if (next === null) break;
            await call.send(next);
          }
        } catch (err) {
          throw refused ?? err;
        }
        if (refused !== undefined) throw refused;
      } finally {
        permit.release();
        if (stream && !stream.done) stream.cancel();
      }
    } catch (err) {
      const e = call.signal.aborted ? clientClosed(model, err) : toProxyError(err);
      outcome = e.code === 'CLIENT_CLOSED' ? 'client_closed' : e.code;
      throw e;
    } finally {
      this.duration(modelLabel, outcome, 'grpc', 'stream').observe(
        (performance.now() - started) / 1000,
      );
    }
  }

  private duration(
    model: string,
    outcome: string,
    protocol: Protocol,
    route: 'infer' | 'stream' = 'infer',
  ): StageTimer {
    // LeanHistogram keeps one child per label set.
    return this.deps.metrics.requestDuration.labels(model, route, outcome, protocol);
  }

  /**
   * Triton's `timeout` request parameter (microseconds) and the
   * X-Request-Timeout-Ms header can each shorten the proxy's default deadline.
   */
  timeoutMs(parameters: Parameters, headerMs: number | undefined): number {
    let ms = this.deps.defaultTimeoutMs;
    const t = parameters.timeout;
    if (typeof t === 'number' && t > 0) ms = Math.min(ms, Math.ceil(t / 1000));
    if (headerMs !== undefined) ms = Math.min(ms, headerMs);
    return ms;
  }

  /**
   * Runs `send` against the fleet the way an inference request is (the
   * model-aware pick, load on demand, sequence affinity, retries on other
   * servers within the deadline and the budget, shared-state corrections).
   * Streams use it for their part before the first message.
   */
  runOnFleet<T>(
    request: ModelInferRequest,
    call: CallMetaForAttempts,
    deadline: number,
    signal: AbortSignal,
    rpc: UpstreamRpc,
    send: (upstream: Upstream, ctx: CallContext) => Promise<T>,
  ): Promise<T> {
    const route = routeOf(request.modelName, request.modelVersion, request.parameters);
    return this.callFleet(route, call, deadline, signal, rpc, send);
  }

  /**
   * Runs `send` on a server chosen for the route, with retries on other
   * servers, sequence affinity and shared-state corrections; the same for
   * every protocol, only `send` differs.
   */
  private callFleet<T>(
    route: Route,
    call: CallMetaForAttempts,
    deadline: number,
    signal: AbortSignal,
    rpc: UpstreamRpc,
    send: (upstream: Upstream, ctx: CallContext) => Promise<T>,
    answered?: () => boolean,
  ): Promise<T> {
    const { model, version, sequenceId } = route;
    return executeWithRetry({
      answered,
      deadline,
      maxAttempts: this.deps.retry.maxAttempts,
      backoff: this.deps.retry.backoff,
      budget: this.deps.retry.budget,
      signal,
      sticky: sequenceId !== undefined,
      // With a loader, a model ready nowhere is loaded on demand, so a
      // retry always has somewhere to go; otherwise ask the router.
      hasAlternative: this.deps.loader
        ? undefined
        : (exclude) => this.deps.router.hasCandidate(model, version, exclude),
      onRetry: (info) => this.deps.metrics.retries.labels(info.error.code).inc(),
      onGiveUp: (info) => {
        if (info.reason === 'budget') this.deps.metrics.retriesDenied.inc();
      },
      attempt: async ({ attempt, exclude, signal: attemptSignal }) => {
        const upstream =
          sequenceId === undefined
            ? await this.choose(model, version, exclude, deadline, attemptSignal)
            : await this.chooseForSequence(route, sequenceId, deadline, attemptSignal);
        // A stuck attempt (server or link hung) is cut at the attempt timeout
        // and retried elsewhere; Triton gets the shorter grpc-timeout too, so
        // it drops the work. A sequence is never retried, so it keeps the
        // whole deadline.
        const attemptDeadline =
          this.deps.attemptTimeoutMs > 0 && sequenceId === undefined
            ? Math.min(deadline, Date.now() + this.deps.attemptTimeoutMs)
            : deadline;
        // Traced, Triton gets the attempt's span as parent: its own spans join the request's trace.
        const traced = call.trace?.attempt(rpc, upstream.name, upstream.address, attempt);
        try {
          const response = await send(upstream, {
            deadline: attemptDeadline,
            requestId: call.requestId,
            traceparent: traced === undefined ? call.traceparent : traced.traceparent,
            signal: attemptSignal,
          });
          traced?.end();
          if (!this.deps.state.snapshot().isKnown(model)) {
            // Found by direct probing: share that the model answers there.
            void this.deps.state.markStatus(
              upstream.name,
              model,
              version,
              'READY',
              'answered a request',
            );
          }
          if (sequenceId !== undefined && route.sequenceEnd) {
            this.deps.affinity.end(model, sequenceId);
          }
          return response;
        } catch (err) {
          traced?.end(toProxyError(err));
          if (
            attemptDeadline < deadline &&
            isProxyError(err) &&
            err.code === 'UPSTREAM_TIMEOUT' &&
            err.grpcCode === GRPC_DEADLINE_EXCEEDED
          ) {
            throw new ProxyError(
              'UPSTREAM_UNAVAILABLE',
              `Triton server '${upstream.name}' did not answer within the attempt timeout (${this.deps.attemptTimeoutMs} ms)`,
              {
                server: upstream.name,
                serverFault: true,
                grpcCode: err.grpcCode,
                retryAfterSeconds: this.deps.retryAfterSeconds,
                cause: err,
              },
            );
          }
          throw this.afterFailure(err, upstream, model, version, exclude);
        }
      },
    });
  }

  /**
   * A server said the model is not there (or not ready): correct the shared
   * state, and let the retry loop try another server when one still has it.
   */
  private afterFailure(
    err: unknown,
    upstream: Upstream,
    model: string,
    version: string,
    exclude: ReadonlySet<string>,
  ): unknown {
    if (!isProxyError(err) || (err.code !== 'MODEL_NOT_FOUND' && err.code !== 'MODEL_NOT_READY'))
      return err;
    this.markNotReady(upstream.name, model, version, err.message);
    const others = this.deps.state
      .snapshot()
      .readyServers(model, version)
      .some((s) => s !== upstream.name && !exclude.has(s));
    if (!others) return err;
    return new ProxyError('MODEL_NOT_READY', err.message, {
      server: upstream.name,
      grpcCode: err.grpcCode,
      retryAfterSeconds: this.deps.retryAfterSeconds,
    });
  }

  private markNotReady(server: string, model: string, version: string, reason: string): void {
    // A request without a version was refused for every version the server
    // has: marking only version '' would leave the READY versions routable.
    const versions =
      version !== ''
        ? [version]
        : this.deps.state
            .snapshot()
            .entriesForModel(model)
            .filter((e) => e.server === server && e.status !== 'UNAVAILABLE')
            .map((e) => e.version);
    if (versions.length === 0) versions.push(version);
    void this.deps.state.update(
      versions.map((v) => ({ server, model, version: v, status: 'UNAVAILABLE' as const, reason })),
    );
  }

  private async choose(
    model: string,
    version: string,
    exclude: ReadonlySet<string>,
    deadline: number,
    signal: AbortSignal,
    affinityKey?: string,
  ): Promise<Upstream> {
    const pick = this.deps.router.pick({ model, version, exclude, affinityKey });
    switch (pick.kind) {
      case 'server':
        return pick.upstream;
      case 'not-found':
        throw new ProxyError(
          'MODEL_NOT_FOUND',
          `Request for unknown model: '${model}' is not found`,
        );
      case 'unavailable':
        throw new ProxyError(
          'UPSTREAM_UNAVAILABLE',
          `no Triton server that serves model '${model}' is available`,
          {
            retryAfterSeconds: this.deps.retryAfterSeconds,
          },
        );
      case 'not-ready': {
        if (!this.versionMayExist(model, version)) {
          throw new ProxyError(
            'MODEL_NOT_FOUND',
            `Request for unknown model: '${model}' version ${version} is not found`,
          );
        }
        const loader = this.deps.loader;
        if (!loader && !pick.loading) {
          // Unloaded and nobody is loading it: Triton answers 404 here, and a
          // 503 would invite retries that cannot succeed.
          throw new ProxyError(
            'MODEL_NOT_FOUND',
            `Request for unknown model: '${model}' has no available versions`,
          );
        }
        if (!loader || exclude.size > 0) {
          throw new ProxyError(
            'MODEL_NOT_READY',
            pick.loading
              ? `model '${model}' is loading; retry shortly`
              : `model '${model}'${version ? ` version ${version}` : ''} is not ready on any Triton server`,
            { retryAfterSeconds: this.deps.retryAfterSeconds },
          );
        }
        const server = await loader.ensureLoaded(model, version, { deadline, signal });
        const upstream = this.deps.servers.get(server);
        if (upstream && upstream.available) return upstream;
        const again = this.deps.router.pick({ model, version, exclude, affinityKey });
        if (again.kind === 'server') return again.upstream;
        throw new ProxyError(
          'UPSTREAM_UNAVAILABLE',
          `model '${model}' was loaded but its server is not available`,
          {
            retryAfterSeconds: this.deps.retryAfterSeconds,
          },
        );
      }
    }
  }

  /**
   * A version no repository lists is not found (Triton's 404), not "not
   * ready": a client must not be told to retry for it. Entries without a
   * version (a load or an answer seen by the proxy) say nothing about which
   * versions exist, so they keep the version possible.
   */
  private versionMayExist(model: string, version: string): boolean {
    if (version === '') return true;
    return this.deps.state
      .snapshot()
      .entriesForModel(model)
      .some((e) => e.version === version || e.version === '');
  }

  private async chooseForSequence(
    route: Route,
    sequenceId: string,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Upstream> {
    const { model, version } = route;
    const pinned = route.sequenceStart ? undefined : this.deps.affinity.get(model, sequenceId);
    if (pinned !== undefined) {
      const upstream = this.deps.servers.get(pinned);
      // A server known to be down has lost the sequence's state (or soon will):
      // say so at once instead of sending the request to fail there.
      if (upstream && !upstream.draining && upstream.ready) return upstream;
      throw new ProxyError(
        'UPSTREAM_UNAVAILABLE',
        `Triton server '${pinned}' holding sequence ${sequenceId} of model '${model}' is gone or down; restart the sequence`,
        { retryAfterSeconds: this.deps.retryAfterSeconds },
      );
    }
    // Rendezvous hashing: any replica meeting this sequence picks the same
    // server (while the set of servers with the model READY is the same),
    // with no shared write per sequence or per request.
    const upstream = await this.choose(
      model,
      version,
      new Set(),
      deadline,
      signal,
      SequenceAffinity.key(model, sequenceId),
    );
    this.deps.affinity.set(model, sequenceId, upstream.name);
    return upstream;
  }
}
