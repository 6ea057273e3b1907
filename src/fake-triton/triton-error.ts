import { status } from '@grpc/grpc-js';

/**
 * A failure the fake answers with: the gRPC status Triton would send and
 * Triton's own message text. Triton maps its error codes to gRPC statuses in
 * server/src/grpc/grpc_utils.cc (GrpcStatusUtil::CodeToStatus): INVALID_ARG ->
 * INVALID_ARGUMENT, NOT_FOUND -> NOT_FOUND, UNAVAILABLE -> UNAVAILABLE,
 * UNSUPPORTED -> UNIMPLEMENTED, INTERNAL -> INTERNAL.
 */
export class TritonError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = 'TritonError';
  }

  /** The object grpc-js sends as the call's status. */
  toStatus(): { code: status; details: string } {
    return { code: this.code, details: this.details };
  }
}

export function invalidArgument(details: string): TritonError {
  return new TritonError(status.INVALID_ARGUMENT, details);
}

/** Triton core prefixes request-validation messages with the request id (InferenceRequest::LogRequest). */
export function requestPrefix(id: string): string {
  return `[request id: ${id === '' ? '<id_unknown>' : id}] `;
}

/** core: InferenceServer (server.cc) while not in the ready state. */
export function serverNotReady(): TritonError {
  return new TritonError(status.UNAVAILABLE, 'Server not ready');
}

/** core: InferenceServer::IsLive/IsReady once shutdown began. */
export function serverExiting(): TritonError {
  return new TritonError(status.UNAVAILABLE, 'Server exiting');
}

/** server: GetModelVersionFromString (src/common.cc). */
export function parseModelVersion(version: string): number | TritonError {
  if (version === '') return -1;
  const match = /^\s*([+-]?\d+)/.exec(version);
  if (match === null) {
    return invalidArgument(
      `failed to get model version from specified version string '${version}' (details: stol), version should be an integral value > 0`,
    );
  }
  const parsed = Number(match[1]);
  if (parsed < 0) {
    return invalidArgument(
      `invalid model version specified '${version}' , version should be an integral value > 0`,
    );
  }
  return parsed;
}
