/**
 * What the request path sees of tracing. When tracing is off there is no
 * Tracer at all: callers hold `undefined` and call through `?.`, so the
 * path allocates nothing, builds no closure and loads no SDK for it.
 */

/** The stages the latency budget already measures (triton_proxy_stage_duration_seconds). */
export type TraceStage = 'parse' | 'queue' | 'encode';

/** The Triton RPC an upstream attempt makes. */
export type UpstreamRpc = 'ModelInfer' | 'ModelStreamInfer';

/** Reads one incoming header or gRPC metadata value (W3C trace context). */
export type CarrierGetter = (key: 'traceparent' | 'tracestate') => string | undefined;

/** What a failure says about itself on a span (a ProxyError has both). */
export interface TracedFailure {
  /** The domain error code (INVALID_REQUEST, UPSTREAM_UNAVAILABLE, ...). */
  code: string;
  message: string;
  /** The gRPC status Triton (or the link) gave, when there was one. */
  grpcCode?: number;
}

export interface ServerSpanStart {
  /** Span name: `POST /v2/models/{model}/infer`, `inference.GRPCInferenceService/ModelInfer`. */
  name: string;
  protocol: 'http' | 'grpc';
  /** The incoming trace context, continued when valid. */
  carrier: CarrierGetter;
  requestId: string;
  /** HTTP: the request's method and path. */
  method?: string;
  path?: string;
  route?: string;
  /** The model the path names ('' when it names none or it is read from the message later). */
  model?: string;
}

/** One upstream attempt (a call to one Triton server). */
export interface AttemptTrace {
  /** The W3C traceparent Triton gets for this attempt (its span is the parent of Triton's). */
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  /** Ends the attempt: ok when `failure` is undefined. */
  end(failure?: TracedFailure): void;
}

/** The span of one request and the children the request path adds to it. */
export interface RequestTrace {
  readonly traceId: string;
  /** The W3C traceparent naming this request's span (what control calls send to Triton). */
  readonly traceparent: string;
  /** The model, once known (a gRPC message names it inside). */
  setModel(model: string): void;
  /** A finished stage, from the stage boundaries the metrics use (performance.now() values). */
  stage(stage: TraceStage, startedAt: number, endedAt: number): void;
  /** Starts an upstream attempt span on `server` (address `address`); `attempt` counts from 1. */
  attempt(rpc: UpstreamRpc, server: string, address: string, attempt: number): AttemptTrace;
  /**
   * Marks the request as failed although its status was already sent as a
   * success (a server-sent event stream that broke after its first event);
   * end() then keeps the failure.
   */
  fail(failure: TracedFailure): void;
  /**
   * Ends the request span. `status` is the HTTP status or gRPC status code
   * sent; a failure marks the span as an error with its domain code.
   */
  end(status: number, failure?: TracedFailure): void;
}

/** The process's tracer: starts request spans and flushes what is buffered on shutdown. */
export interface Tracer {
  startServerSpan(start: ServerSpanStart): RequestTrace;
  /** Exports what is still buffered and stops; bounded in time. */
  shutdown(): Promise<void>;
}
