import { invalidRequest, toProxyError } from '../errors';
import type { ModelInferRequest, ModelInferResponse } from '../protocol';
import {
  parseGenerateRequest,
  renderGenerateError,
  renderGenerateResponse,
  sseEvent,
  type GenerateInputSpec,
} from '../codec';
import type { AdmissionController } from '../admission';
import type { ModelStateStore } from '../model-state';
import type { Metrics } from '../observability';
import { decodeModelStreamInferResponse, type ModelStream } from '../triton';
import type { CallMeta, ControlService } from './control-service';
import { clientClosed, tritonVersion, type ClientCall, type InferService } from './infer-service';

export interface GenerateCall extends ClientCall {
  model: string;
  version: string;
  body: Buffer;
  /** X-Request-Timeout-Ms, when the client bounds the time to the first response itself. */
  timeoutMs?: number;
  /** The caller reserved the body's bytes before reading it (AdmissionController.reserveBytes). */
  bytesReserved?: boolean;
}

/** A generate answer: Triton answers 200 with an error body when a model gives other than one response. */
export interface GenerateAnswer {
  status: number;
  body: Buffer;
}

/** Where a stream's events go (the HTTP response, as server-sent events). */
export interface EventSink {
  /** Sends status and headers; called once, right before the first event. */
  open(): void;
  /** Sends one event; resolves when the client can take more (or is gone). */
  send(event: Buffer): Promise<void>;
  /** Ends the response. */
  close(): void;
}

export interface GenerateServiceDeps {
  /** Routing, retries and failover, shared with inference. */
  infer: InferService;
  /** Model metadata and config, for the input datatypes and the decoupled flag. */
  control: ControlService;
  admission: AdmissionController;
  state: ModelStateStore;
  metrics: Metrics;
  /** Longest wait for the next response once a stream has sent its first event; 0 = none. */
  streamIdleTimeoutMs: number;
  /** How long a model's metadata and decoupled flag are reused. */
  metadataTtlMs: number;
}

interface ModelInfo {
  inputs: GenerateInputSpec[];
  decoupled: boolean;
}

const EXACTLY_ONE =
  'generate expects model to produce exactly 1 response, use generate stream for model that generates various number of responses';

/**
 * Triton's generate extension over the fleet. `generate` answers one JSON
 * object: through ModelInfer for ordinary models, through ModelStreamInfer
 * for decoupled ones (exactly one response expected, as Triton does).
 * `generateStream` forwards every response of a ModelStreamInfer stream as
 * a server-sent event while it arrives. Both hold an admission slot for as
 * long as they run, pick, retry and fail over like inference until the first
 * response, and never after it: once an event is sent, a failure becomes an
 * error event and ends the stream.
 */
export class GenerateService {
  private readonly models = new Map<string, { expires: number; info: Promise<ModelInfo> }>();

  constructor(private readonly deps: GenerateServiceDeps) {}

  async generate(call: GenerateCall): Promise<GenerateAnswer> {
    const started = performance.now();
    let outcome = 'ok';
    let label = this.labelFor(call.model);
    try {
      const { info, request, clientGaveId, deadline, permit } = await this.admit(call);
      try {
        const answer = info.decoupled
          ? await this.generateDecoupled(request, call, deadline, clientGaveId)
          : await this.generateSingle(request, call, deadline, clientGaveId);
        label = this.deps.metrics.models.forKnown(call.model);
        return answer;
      } finally {
        permit.release();
      }
    } catch (err) {
      const e = call.signal.aborted ? clientClosed(call.model, err) : toProxyError(err);
      outcome = e.code === 'CLIENT_CLOSED' ? 'client_closed' : e.code;
      throw e;
    } finally {
      this.deps.metrics.requestDuration
        .labels(label, 'generate', outcome, 'http')
        .observe((performance.now() - started) / 1000);
    }
  }

  /**
   * Streams every response as an event. Fails (for a JSON error answer) only
   * before the first event; after it, ends the stream with an error event.
   */
  async generateStream(call: GenerateCall, sink: EventSink): Promise<void> {
    const started = performance.now();
    const metrics = this.deps.metrics;
    let outcome = 'ok';
    let events = 0;
    let label = this.labelFor(call.model);
    let inFlight = false;
    try {
      const { request, clientGaveId, deadline, permit } = await this.admit(call);
      try {
        const { stream, first } = await this.openStream(request, call, deadline);
        label = metrics.models.forKnown(call.model);
        if (first === null) {
          // The model finished without a response: Triton answers 200 and an empty stream.
          sink.open();
          sink.close();
          return;
        }
        const firstEvent = this.event(first, clientGaveId);
        if (firstEvent.error !== undefined) {
          // Refused before anything was sent: the client gets an error status.
          stream.cancel();
          throw invalidRequest(firstEvent.error);
        }
        sink.open();
        metrics.streamFirstEvent.labels(label).observe((performance.now() - started) / 1000);
        metrics.streamsInFlight.labels(label).inc();
        inFlight = true;
        await sink.send(firstEvent.bytes);
        events++;
        outcome = await this.pump(stream, sink, clientGaveId, call, () => events++);
        sink.close();
      } finally {
        permit.release();
      }
    } catch (err) {
      const e = call.signal.aborted ? clientClosed(call.model, err) : toProxyError(err);
      outcome = e.code === 'CLIENT_CLOSED' ? 'client_closed' : e.code;
      throw e;
    } finally {
      if (inFlight) metrics.streamsInFlight.labels(label).dec();
      metrics.streamEvents.labels(label, outcome).observe(events);
      metrics.streamDuration.labels(label, outcome).observe((performance.now() - started) / 1000);
    }
  }

  /**
   * Forwards the rest of the stream; returns the outcome. A failure here is
   * sent as an error event (the status line is long gone), except when the
   * client itself left.
   */
  private async pump(
    stream: ModelStream,
    sink: EventSink,
    clientGaveId: boolean,
    call: GenerateCall,
    sent: () => void,
  ): Promise<string> {
    const { signal } = call;
    for (;;) {
      let message: Buffer | null;
      try {
        message = await stream.next();
      } catch (err) {
        if (signal.aborted) return 'client_closed';
        const e = toProxyError(err);
        // The span must not read as a success because the 200 went out first.
        call.trace?.fail(e);
        await sink.send(sseEvent(renderGenerateError(e.message)));
        sent();
        return e.code;
      }
      if (message === null) return 'ok';
      await sink.send(this.event(message, clientGaveId).bytes);
      sent();
      if (signal.aborted) {
        stream.cancel();
        return 'client_closed';
      }
    }
  }

  /** One stream message as Triton's event: the response, or {"error": ...} for a failed one. */
  private event(message: Buffer, clientGaveId: boolean): { bytes: Buffer; error?: string } {
    const decoded = decodeModelStreamInferResponse(message);
    if (decoded.errorMessage !== '') {
      return {
        bytes: sseEvent(renderGenerateError(decoded.errorMessage)),
        error: decoded.errorMessage,
      };
    }
    const response = decoded.response ?? emptyResponse();
    if (!clientGaveId) response.id = '';
    return { bytes: sseEvent(renderGenerateResponse(response)) };
  }

  private async generateSingle(
    request: ModelInferRequest,
    call: GenerateCall,
    deadline: number,
    clientGaveId: boolean,
  ): Promise<GenerateAnswer> {
    const response = await this.deps.infer.runOnFleet(
      request,
      call,
      deadline,
      call.signal,
      'ModelInfer',
      (upstream, ctx) => upstream.infer(request, ctx),
    );
    if (!clientGaveId) response.id = '';
    return { status: 200, body: renderGenerateResponse(response) };
  }

  /** A decoupled model through a stream: exactly one response, as Triton's /generate insists. */
  private async generateDecoupled(
    request: ModelInferRequest,
    call: GenerateCall,
    deadline: number,
    clientGaveId: boolean,
  ): Promise<GenerateAnswer> {
    const { stream, first } = await this.openStream(request, call, deadline);
    if (first === null) return { status: 200, body: renderGenerateError(EXACTLY_ONE) };
    const decoded = decodeModelStreamInferResponse(first);
    // The status comes from the first response, as in Triton; only it is kept.
    const status = decoded.errorMessage === '' ? 200 : 400;
    let count = 1;
    while ((await stream.next()) !== null) count++;
    if (count !== 1) return { status, body: renderGenerateError(EXACTLY_ONE) };
    if (decoded.errorMessage !== '') throw invalidRequest(decoded.errorMessage);
    const response = decoded.response ?? emptyResponse();
    if (!clientGaveId) response.id = '';
    return { status: 200, body: renderGenerateResponse(response) };
  }

  /** The stream on the server the router picks, retried elsewhere until its first message. */
  private openStream(
    request: ModelInferRequest,
    call: GenerateCall,
    deadline: number,
  ): Promise<{ stream: ModelStream; first: Buffer | null }> {
    return this.deps.infer.runOnFleet(
      request,
      call,
      deadline,
      call.signal,
      'ModelStreamInfer',
      (upstream, { signal, traceparent }) =>
        upstream.startStream(
          (stream) => {
            stream.write(request);
            stream.end();
          },
          {
            firstMessageDeadline: deadline,
            idleTimeoutMs: this.deps.streamIdleTimeoutMs,
            requestId: call.requestId,
            traceparent,
            signal,
          },
        ),
    );
  }

  /**
   * The steps both routes take before talking to Triton: the model's metadata,
   * the request built from the body, its deadline, and an admission permit.
   */
  private async admit(call: GenerateCall) {
    const trace = call.trace;
    // Stage boundaries are read only for a traced request (generate has no stage metrics).
    const started = trace && performance.now();
    const version = tritonVersion(call.version);
    const info = await this.modelInfo(call.model, version, call);
    const { request, clientGaveId } = this.parse(call, version, info);
    const deadline = Date.now() + this.deps.infer.timeoutMs(request.parameters, call.timeoutMs);
    const parsed = trace && performance.now();
    const permit = await this.deps.admission.acquire(
      call.model,
      call.bytesReserved === true ? 0 : call.body.length,
      call.signal,
      deadline,
      call.priority,
    );
    if (trace) {
      trace.stage('parse', started!, parsed!);
      trace.stage('queue', parsed!, performance.now());
    }
    return { info, request, clientGaveId, deadline, permit };
  }

  private parse(
    call: GenerateCall,
    version: string,
    info: ModelInfo,
  ): { request: ModelInferRequest; clientGaveId: boolean } {
    const request = parseGenerateRequest({
      body: call.body,
      inputs: info.inputs,
      modelName: call.model,
      modelVersion: version,
    });
    // Triton sees the proxy's request id; the client gets back only an id it sent.
    const clientGaveId = request.id !== '';
    if (!clientGaveId) request.id = call.requestId;
    return { request, clientGaveId };
  }

  private labelFor(model: string): string {
    const labels = this.deps.metrics.models;
    return this.deps.state.snapshot().isKnown(model)
      ? labels.forKnown(model)
      : labels.forUntrusted(model);
  }

  /** Inputs (name, datatype, shape) and the decoupled flag, cached for metadataTtlMs. */
  private modelInfo(model: string, version: string, meta: CallMeta): Promise<ModelInfo> {
    const key = `${model}\u0000${version}`;
    const now = Date.now();
    const cached = this.models.get(key);
    if (cached !== undefined && cached.expires > now) return cached.info;
    const info = this.readModelInfo(model, version, meta);
    this.models.set(key, { expires: now + this.deps.metadataTtlMs, info });
    info.catch(() => {
      if (this.models.get(key)?.info === info) this.models.delete(key);
    });
    // Bounded: expired entries go when the map grows past what a fleet serves.
    if (this.models.size > 1024) {
      for (const [k, v] of this.models) if (v.expires <= now) this.models.delete(k);
    }
    return info;
  }

  private async readModelInfo(model: string, version: string, meta: CallMeta): Promise<ModelInfo> {
    const [metadata, config] = await Promise.all([
      this.deps.control.modelMetadata(model, version, meta),
      this.deps.control.modelConfig(model, version, meta),
    ]);
    const inputs = Array.isArray(metadata.inputs) ? (metadata.inputs as unknown[]) : [];
    const policy = config.model_transaction_policy as { decoupled?: boolean } | undefined;
    return {
      inputs: inputs.map((i) => {
        const input = i as { name?: unknown; datatype?: unknown; shape?: unknown };
        return {
          name: String(input.name ?? ''),
          datatype: String(input.datatype ?? ''),
          shape: Array.isArray(input.shape) ? input.shape.map(Number) : [],
        };
      }),
      decoupled: policy?.decoupled === true,
    };
  }
}

function emptyResponse(): ModelInferResponse {
  return {
    modelName: '',
    modelVersion: '',
    id: '',
    parameters: {},
    outputs: [],
    rawOutputContents: [],
  };
}
