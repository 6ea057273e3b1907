import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ProxyError, type ErrorCode } from '../errors';

const STATUS_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(GrpcStatus)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

export function grpcStatusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

// Triton reports "model not ready / no available versions" as UNAVAILABLE;
// that is a fact about the model on that server, not about the server's health.
const MODEL_NOT_READY_TEXT = /model|version/i;
// grpc-js reports its own message size limit as RESOURCE_EXHAUSTED.
const MESSAGE_TOO_LARGE_TEXT =
  /message larger than max|message (size )?exceeds maximum|too large|size larger than/i;
// Triton answers a full scheduler queue (max_queue_size) with UNAVAILABLE
// "Exceeds maximum queue size": the server is busy, not broken. Counting it
// as a fault would open the breakers of a whole fleet under a load spike.
const QUEUE_FULL_TEXT = /exceeds maximum queue size|queue (is )?full/i;
// Triton rejects a request that waited in its scheduler queue longer than the
// model's queue policy allows (or than the request's own `timeout`) with
// UNAVAILABLE "Request timeout expired". The request's time is spent, and the
// server is working as configured: a 504, never retried, never a fault.
const QUEUE_TIMEOUT_TEXT = /request timeout expired/i;

interface Mapping {
  code: ErrorCode;
  serverFault: boolean;
}

function classify(code: number, details: string): Mapping {
  switch (code) {
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.FAILED_PRECONDITION:
    case GrpcStatus.OUT_OF_RANGE:
      return { code: 'INVALID_REQUEST', serverFault: false };
    case GrpcStatus.CANCELLED:
      // Our own cancellations (client gone, call taken back) are recognised by
      // the caller before this; a CANCELLED left over came from Triton (it
      // cancels work when it shuts down or drops a stream). Another server
      // can take the request, and a fault of this one it is not.
      return { code: 'UPSTREAM_UNAVAILABLE', serverFault: false };
    case GrpcStatus.NOT_FOUND:
      return { code: 'MODEL_NOT_FOUND', serverFault: false };
    case GrpcStatus.UNAUTHENTICATED:
      return { code: 'UNAUTHENTICATED', serverFault: false };
    case GrpcStatus.PERMISSION_DENIED:
      return { code: 'FORBIDDEN', serverFault: false };
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return MESSAGE_TOO_LARGE_TEXT.test(details) && !QUEUE_FULL_TEXT.test(details)
        ? { code: 'PAYLOAD_TOO_LARGE', serverFault: false }
        : { code: 'OVERLOADED', serverFault: false };
    case GrpcStatus.UNIMPLEMENTED:
      return { code: 'UNSUPPORTED', serverFault: false };
    case GrpcStatus.DEADLINE_EXCEEDED:
      return { code: 'UPSTREAM_TIMEOUT', serverFault: true };
    case GrpcStatus.UNAVAILABLE:
      if (QUEUE_FULL_TEXT.test(details)) return { code: 'OVERLOADED', serverFault: false };
      if (QUEUE_TIMEOUT_TEXT.test(details)) return { code: 'UPSTREAM_TIMEOUT', serverFault: false };
      return MODEL_NOT_READY_TEXT.test(details) &&
        !/connect|socket|connection|transport|No connection/i.test(details)
        ? { code: 'MODEL_NOT_READY', serverFault: false }
        : { code: 'UPSTREAM_UNAVAILABLE', serverFault: true };
    case GrpcStatus.ABORTED:
      return { code: 'UPSTREAM_UNAVAILABLE', serverFault: false };
    case GrpcStatus.INTERNAL:
    case GrpcStatus.DATA_LOSS:
      return { code: 'INTERNAL', serverFault: true };
    default:
      return { code: 'INTERNAL', serverFault: true };
  }
}

/**
 * Turns a gRPC failure from one server into the domain error a client sees.
 * Triton's own message is kept for client errors (it names the bad input);
 * transport details are replaced by a plain sentence naming the server.
 */
export function mapGrpcError(
  err: ServiceError | Error,
  server: string,
  retryAfterSeconds: number,
): ProxyError {
  const code =
    typeof (err as ServiceError).code === 'number'
      ? (err as ServiceError).code
      : GrpcStatus.INTERNAL;
  const details = (err as ServiceError).details ?? err.message;
  const m = classify(code, details);
  let message: string;
  switch (m.code) {
    case 'UPSTREAM_UNAVAILABLE':
      message =
        code === GrpcStatus.CANCELLED
          ? `Triton server '${server}' cancelled the request`
          : `Triton server '${server}' is unavailable`;
      break;
    case 'UPSTREAM_TIMEOUT':
      message =
        code === GrpcStatus.UNAVAILABLE
          ? `Triton server '${server}' timed the request out in its queue: ${details}`
          : `Triton server '${server}' did not answer before the deadline`;
      break;
    case 'INTERNAL':
      message =
        code === GrpcStatus.INTERNAL
          ? details
          : `Triton server '${server}' failed: ${grpcStatusName(code)}`;
      break;
    case 'PAYLOAD_TOO_LARGE':
      message = `message to or from Triton server '${server}' exceeds the gRPC message limit: ${details}`;
      break;
    default:
      // Triton sometimes drops the message (a grpc-message ending in a space
      // is not a valid header value), so never answer with an empty one.
      message =
        details.trim() ||
        `Triton server '${server}' rejected the request with ${grpcStatusName(code)} and no message; check input names, datatypes and shapes against the model metadata`;
  }
  const retryAfter =
    m.code === 'OVERLOADED' || m.code === 'MODEL_NOT_READY' || m.code === 'UPSTREAM_UNAVAILABLE'
      ? retryAfterSeconds
      : undefined;
  return new ProxyError(m.code, message, {
    serverFault: m.serverFault,
    grpcCode: code,
    server,
    retryAfterSeconds: retryAfter,
    cause: err,
  });
}
