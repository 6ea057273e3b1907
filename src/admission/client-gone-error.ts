import { ProxyError } from '../errors';

// Brand, as ProxyError does, so the check survives duplicate module copies.
const CLIENT_GONE = Symbol.for('triton-proxy.ClientGoneError');

/**
 * The client went away (its AbortSignal fired) while its request waited for
 * admission. It is a ProxyError (CLIENT_CLOSED, 499 in logs and metrics) so
 * generic error handling passes it through untouched.
 * Nobody is left to read the response, so callers mostly want to recognise it
 * (isClientGoneError) to skip the response and count it as client-gone.
 */
export class ClientGoneError extends ProxyError {
  readonly [CLIENT_GONE] = true;

  constructor(model: string, cause?: unknown) {
    super(
      'CLIENT_CLOSED',
      `client cancelled the request for model '${model}' while it was queued`,
      {
        cause,
      },
    );
    this.name = 'ClientGoneError';
  }
}

export function isClientGoneError(value: unknown): value is ClientGoneError {
  return typeof value === 'object' && value !== null && CLIENT_GONE in value;
}
