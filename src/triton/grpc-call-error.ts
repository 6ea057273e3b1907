import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * A failed call on the lean HTTP/2 transport, shaped like grpc-js's
 * ServiceError (`code`, `details`, `metadata`) so the same error mapping
 * handles both transports.
 */
export class GrpcCallError extends Error {
  override name = 'GrpcCallError';

  constructor(
    readonly code: GrpcStatus,
    readonly details: string,
    /** Trailers (or trailers-only headers) the server sent, when it sent any. */
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(`${code} ${GrpcStatus[code] ?? 'UNKNOWN'}: ${details}`);
  }
}

/** gRPC's mapping of an HTTP status on a response without grpc-status. */
export function statusFromHttp(httpStatus: number): GrpcStatus {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** grpc-message is percent-encoded UTF-8; a malformed escape is kept as it is. */
export function decodeGrpcMessage(value: string | undefined): string {
  if (value === undefined || value === '') return '';
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
