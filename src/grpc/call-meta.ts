import type { Metadata } from '@grpc/grpc-js';
import {
  acceptRequestId,
  parseTraceparent,
  type RequestTrace,
  type Tracer,
} from '../observability';
import { SERVICE_NAME } from '../triton';

/** What the proxy reads from a gRPC call's metadata and deadline. */
export interface GrpcCallMeta {
  requestId: string;
  traceparent?: string;
  traceId?: string;
  /** The client's deadline (grpc-timeout) in ms since epoch; undefined when it set none. */
  deadline?: number;
  /** `x-triton-server`: the server a repository call is meant for. */
  targetServer?: string;
}

function first(metadata: Metadata, key: string): string | undefined {
  const values = metadata.get(key);
  const v = values[0];
  return typeof v === 'string' ? v : undefined;
}

export function callMetaOf(
  call: { metadata: Metadata; getDeadline(): Date | number },
  tracing: boolean,
): GrpcCallMeta {
  const md = call.metadata;
  const meta: GrpcCallMeta = { requestId: acceptRequestId(first(md, 'x-request-id')) };
  if (tracing) {
    const trace = parseTraceparent(first(md, 'traceparent'));
    if (trace) {
      meta.traceparent = trace.traceparent;
      meta.traceId = trace.traceId;
    }
  }
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  if (Number.isFinite(ms)) meta.deadline = ms;
  const target = first(md, 'x-triton-server');
  if (target !== undefined && target !== '') meta.targetServer = target;
  return meta;
}

/**
 * The span of one gRPC call (OpenTelemetry on): continues the client's
 * traceparent/tracestate metadata, and from then on the call's trace context
 * (sent to Triton, logged) is the span's.
 */
export function startGrpcSpan(
  tracer: Tracer,
  method: string,
  metadata: Metadata,
  meta: GrpcCallMeta,
): RequestTrace {
  const span = tracer.startServerSpan({
    name: `${SERVICE_NAME}/${method}`,
    protocol: 'grpc',
    carrier: (key) => first(metadata, key),
    requestId: meta.requestId,
  });
  meta.traceparent = span.traceparent;
  meta.traceId = span.traceId;
  return span;
}
