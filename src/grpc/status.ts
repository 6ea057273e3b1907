import { Metadata, status as GrpcStatus, type ServerErrorResponse } from '@grpc/grpc-js';
import type { ErrorCode, ProxyError } from '../errors';

/**
 * The gRPC status of each domain error the proxy raises itself, chosen as
 * Triton's gRPC endpoint answers the same situation (unknown model NOT_FOUND,
 * bad input INVALID_ARGUMENT, not ready UNAVAILABLE) and as gRPC clients
 * expect flow control (RESOURCE_EXHAUSTED for limits and queues).
 */
const STATUS_OF: Record<ErrorCode, GrpcStatus> = {
  INVALID_REQUEST: GrpcStatus.INVALID_ARGUMENT,
  MODEL_NOT_FOUND: GrpcStatus.NOT_FOUND,
  // REST routing refusals; the gRPC equivalent of a method nobody serves is UNIMPLEMENTED.
  NOT_FOUND: GrpcStatus.UNIMPLEMENTED,
  METHOD_NOT_ALLOWED: GrpcStatus.UNIMPLEMENTED,
  MODEL_NOT_READY: GrpcStatus.UNAVAILABLE,
  PAYLOAD_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  FORBIDDEN: GrpcStatus.PERMISSION_DENIED,
  OVERLOADED: GrpcStatus.RESOURCE_EXHAUSTED,
  RATE_LIMITED: GrpcStatus.RESOURCE_EXHAUSTED,
  REQUEST_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  UPSTREAM_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  UPSTREAM_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  CLIENT_CLOSED: GrpcStatus.CANCELLED,
  UNSUPPORTED: GrpcStatus.UNIMPLEMENTED,
  // Some servers took the change and some did not: neither a retry nor a plain failure says that.
  PARTIAL_FAILURE: GrpcStatus.UNKNOWN,
  INTERNAL: GrpcStatus.INTERNAL,
};

/** Codes whose Triton status says something about a server, not about the request. */
const FLEET_CODES: ReadonlySet<ErrorCode> = new Set([
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_TIMEOUT',
  'CLIENT_CLOSED',
]);

/**
 * The status a gRPC client gets: Triton's own status when Triton judged the
 * request (unknown model, bad input, queue full: the client sees what the
 * server said), else the mapping above. Faults of one server (a dropped
 * connection, a CANCELLED the proxy retried past) are the fleet's answer,
 * UNAVAILABLE or DEADLINE_EXCEEDED, whatever the last server said.
 */
export function grpcStatusOf(err: ProxyError): GrpcStatus {
  if (err.grpcCode !== undefined && err.grpcCode !== GrpcStatus.OK && !FLEET_CODES.has(err.code))
    return err.grpcCode;
  return STATUS_OF[err.code];
}

/**
 * The error answer: status, Triton's (or the proxy's) message, and trailers
 * with the request id, the stable code, and for retryable refusals
 * `grpc-retry-pushback-ms` (gRPC's own Retry-After, honoured by clients
 * with a retry policy).
 */
export function errorResponse(err: ProxyError, requestId: string): ServerErrorResponse {
  const metadata = new Metadata();
  metadata.set('x-request-id', requestId);
  metadata.set('x-proxy-error-code', err.code);
  if (err.retryAfterSeconds !== undefined) {
    metadata.set('grpc-retry-pushback-ms', String(Math.max(1, err.retryAfterSeconds) * 1000));
  }
  // What the JSON error body carries besides code and message (a partial
  // failure's outcome per server), as JSON in one trailer. Metadata values
  // must be printable ASCII: anything else is written as a \u escape.
  if (err.details !== undefined) {
    metadata.set('x-proxy-error-details', asciiJson(err.details));
  }
  return {
    name: 'ProxyError',
    message: err.message,
    code: grpcStatusOf(err),
    details: err.message,
    metadata,
  };
}

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
