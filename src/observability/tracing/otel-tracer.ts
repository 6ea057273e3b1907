/**
 * The OpenTelemetry SDK behind the Tracer interface. Only ./start-tracing.ts
 * imports this file, and only with a dynamic import once tracing is
 * configured: with tracing off, no module of the SDK is ever loaded.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Context,
  type HrTime,
  type Span,
  type SpanContext,
  type TextMapGetter,
  type Tracer as OtelApiTracer,
} from '@opentelemetry/api';
import {
  ExportResultCode,
  W3CTraceContextPropagator,
  type ExportResult,
} from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { ExportFailureListener } from './export-failures';
import { createSampler } from './sampler';
import type { TracingSettings } from './settings';
import type {
  AttemptTrace,
  CarrierGetter,
  RequestTrace,
  ServerSpanStart,
  TraceStage,
  TracedFailure,
  Tracer,
  UpstreamRpc,
} from './request-trace';

/** Attribute names of our own (no semantic convention has them). */
export const TRACE_ATTRIBUTES = {
  requestId: 'triton_proxy.request_id',
  model: 'triton_proxy.model',
  server: 'triton_proxy.server',
  attempt: 'triton_proxy.attempt',
} as const;

// The rpc.* attributes are still "incubating" in the conventions package; the names are stable enough to spell here.
const RPC_SYSTEM = 'rpc.system';
const RPC_SERVICE = 'rpc.service';
const RPC_METHOD = 'rpc.method';
const RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';
const GRPC_SERVICE = 'inference.GRPCInferenceService';

// Longest wait for the last export on shutdown: the pod's grace period is counted in seconds.
const SHUTDOWN_FLUSH_MS = 5000;

const getter: TextMapGetter<CarrierGetter> = {
  get: (carrier, key) => (key === 'traceparent' || key === 'tracestate' ? carrier(key) : undefined),
  keys: () => ['traceparent', 'tracestate'],
};

function traceparentOf(context: SpanContext): string {
  const flags = context.traceFlags & TraceFlags.SAMPLED ? '01' : '00';
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/**
 * One clock for every span of a request: epoch time from performance.now()
 * through an offset read once per request. The SDK anchors each span on its
 * own Date.now() (1 ms steps), which would let a stage start before the
 * previous one ended; here parse, queue, attempts and encode line up exactly.
 */
class RequestClock {
  private readonly offsetMs = Date.now() - performance.now();

  at(perfMs: number): HrTime {
    const ms = perfMs + this.offsetMs;
    const seconds = Math.floor(ms / 1000);
    return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
  }

  now(): HrTime {
    return this.at(performance.now());
  }
}

function markFailed(span: Span, failure: TracedFailure): void {
  span.setAttribute(ATTR_ERROR_TYPE, failure.code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${failure.code}: ${failure.message}` });
}

/** host and port of a `host:port` address (IPv6 in brackets), for server.address/server.port. */
function splitAddress(address: string): { host: string; port: number | undefined } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (m === null) return { host: address, port: undefined };
  return { host: m[1]!, port: Number(m[2]) };
}

class OtelAttempt implements AttemptTrace {
  readonly traceparent: string;
  readonly tracestate: string | undefined;

  constructor(
    private readonly span: Span,
    private readonly clock: RequestClock,
  ) {
    const context = span.spanContext();
    this.traceparent = traceparentOf(context);
    this.tracestate = context.traceState?.serialize();
  }

  end(failure?: TracedFailure): void {
    // A failure without a gRPC status never reached the server (or the link failed first).
    const code = failure === undefined ? 0 : failure.grpcCode;
    if (code !== undefined) this.span.setAttribute(RPC_GRPC_STATUS_CODE, code);
    if (failure !== undefined) markFailed(this.span, failure);
    this.span.end(this.clock.now());
  }
}

/** An attempt of a request that is not sampled: Triton gets the request's context, nothing is recorded. */
class UnrecordedAttempt implements AttemptTrace {
  constructor(
    readonly traceparent: string,
    readonly tracestate: string | undefined,
  ) {}

  end(): void {}
}

class OtelRequestTrace implements RequestTrace {
  readonly traceId: string;
  readonly traceparent: string;
  private readonly tracestate: string | undefined;
  private readonly context: Context;
  private readonly recording: boolean;

  constructor(
    private readonly tracer: OtelApiTracer,
    private readonly span: Span,
    private readonly protocol: 'http' | 'grpc',
    private readonly clock: RequestClock,
  ) {
    const spanContext = span.spanContext();
    this.traceId = spanContext.traceId;
    this.traceparent = traceparentOf(spanContext);
    this.tracestate = spanContext.traceState?.serialize();
    this.context = trace.setSpan(ROOT_CONTEXT, span);
    this.recording = span.isRecording();
  }

  setModel(model: string): void {
    if (this.recording) this.span.setAttribute(TRACE_ATTRIBUTES.model, model);
  }

  fail(failure: TracedFailure): void {
    if (this.recording) markFailed(this.span, failure);
  }

  stage(stage: TraceStage, startedAt: number, endedAt: number): void {
    if (!this.recording) return;
    this.tracer
      .startSpan(
        stage,
        { kind: SpanKind.INTERNAL, startTime: this.clock.at(startedAt) },
        this.context,
      )
      .end(this.clock.at(endedAt));
  }

  attempt(rpc: UpstreamRpc, server: string, address: string, attempt: number): AttemptTrace {
    if (!this.recording) return new UnrecordedAttempt(this.traceparent, this.tracestate);
    const { host, port } = splitAddress(address);
    const attributes: Attributes = {
      [RPC_SYSTEM]: 'grpc',
      [RPC_SERVICE]: GRPC_SERVICE,
      [RPC_METHOD]: rpc,
      [ATTR_SERVER_ADDRESS]: host,
      [TRACE_ATTRIBUTES.server]: server,
      [TRACE_ATTRIBUTES.attempt]: attempt,
    };
    if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    const span = this.tracer.startSpan(
      `${GRPC_SERVICE}/${rpc}`,
      { kind: SpanKind.CLIENT, attributes, startTime: this.clock.now() },
      this.context,
    );
    return new OtelAttempt(span, this.clock);
  }

  end(status: number, failure?: TracedFailure): void {
    if (this.recording) {
      this.span.setAttribute(
        this.protocol === 'http' ? ATTR_HTTP_RESPONSE_STATUS_CODE : RPC_GRPC_STATUS_CODE,
        status,
      );
      if (failure !== undefined) markFailed(this.span, failure);
    }
    this.span.end(this.clock.now());
  }
}

/** The OTLP exporter, telling `onFailure` about every batch it could not deliver. */
class ReportingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly onFailure: ExportFailureListener,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.onFailure(spans.length, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export class OtelTracer implements Tracer {
  private readonly provider: TracerProvider;
  private readonly tracer: OtelApiTracer;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(settings: TracingSettings, version: string, onExportFailure: ExportFailureListener) {
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({
        [ATTR_SERVICE_NAME]: settings.serviceName,
        [ATTR_SERVICE_VERSION]: version,
      }),
      sampler: createSampler(settings.sampler, settings.samplerArg),
      spanProcessors: [
        new BatchSpanProcessor({
          ...settings.batch,
          exporter: new ReportingExporter(
            new OTLPTraceExporter({ url: settings.tracesUrl }),
            onExportFailure,
          ),
        }),
      ],
    });
    this.tracer = this.provider.getTracer('triton-proxy', version);
  }

  startServerSpan(start: ServerSpanStart): RequestTrace {
    const parent = this.propagator.extract(ROOT_CONTEXT, start.carrier, getter);
    const attributes: Attributes = { [TRACE_ATTRIBUTES.requestId]: start.requestId };
    if (start.protocol === 'http') {
      if (start.method !== undefined) attributes[ATTR_HTTP_REQUEST_METHOD] = start.method;
      if (start.path !== undefined) attributes[ATTR_URL_PATH] = start.path;
      if (start.route !== undefined) attributes[ATTR_HTTP_ROUTE] = start.route;
    } else {
      attributes[RPC_SYSTEM] = 'grpc';
      attributes[RPC_SERVICE] = GRPC_SERVICE;
      attributes[RPC_METHOD] = start.name.slice(start.name.lastIndexOf('/') + 1);
    }
    if (start.model !== undefined && start.model !== '')
      attributes[TRACE_ATTRIBUTES.model] = start.model;
    const clock = new RequestClock();
    const span = this.tracer.startSpan(
      start.name,
      { kind: SpanKind.SERVER, attributes, startTime: clock.now() },
      parent,
    );
    return new OtelRequestTrace(this.tracer, span, start.protocol, clock);
  }

  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}
