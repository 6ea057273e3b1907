/**
 * The proxy's single error type. Every failure a client can see is one of
 * these codes; the table is the contract documented in README ("Errors").
 */
export const ERROR_CODES = {
  INVALID_REQUEST: { status: 400, retryable: false },
  MODEL_NOT_FOUND: { status: 404, retryable: false },
  /** A path outside the API (no model involved: MODEL_NOT_FOUND would mislead). */
  NOT_FOUND: { status: 404, retryable: false },
  /** An API path asked with a method it does not serve; the answer lists the ones it does (Allow). */
  METHOD_NOT_ALLOWED: { status: 405, retryable: false },
  MODEL_NOT_READY: { status: 503, retryable: true },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  UNAUTHENTICATED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  OVERLOADED: { status: 429, retryable: true },
  RATE_LIMITED: { status: 429, retryable: false },
  REQUEST_TIMEOUT: { status: 408, retryable: false },
  UPSTREAM_UNAVAILABLE: { status: 503, retryable: true },
  UPSTREAM_TIMEOUT: { status: 504, retryable: false },
  /** The client went away; nothing is sent, 499 is what logs and metrics show. */
  CLIENT_CLOSED: { status: 499, retryable: false },
  UNSUPPORTED: { status: 501, retryable: false },
  /** A change sent to several servers failed on some of them; the body lists each server's outcome. */
  PARTIAL_FAILURE: { status: 502, retryable: false },
  INTERNAL: { status: 500, retryable: false },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ProxyErrorOptions {
  /** Seconds a client should wait before trying again (sent as Retry-After). */
  retryAfterSeconds?: number;
  /** True when the failure says something about the server's health (feeds its breaker). */
  serverFault?: boolean;
  /** The upstream gRPC status code, when the error came from Triton. */
  grpcCode?: number;
  /** The Triton server that produced the error, if any. */
  server?: string;
  /** Extra response headers the error carries (e.g. RateLimit, RateLimit-Policy). */
  headers?: Readonly<Record<string, string>>;
  /** Extra fields of the error body (e.g. per-server outcomes); never `error`, `code` or `request_id`. */
  details?: Readonly<Record<string, unknown>>;
  cause?: unknown;
}

// A brand instead of instanceof so errors are recognised across module copies.
const BRAND = Symbol.for('triton-proxy.ProxyError');

export class ProxyError extends Error {
  readonly [BRAND] = true;
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly serverFault: boolean;
  readonly grpcCode: number | undefined;
  readonly server: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.serverFault = options.serverFault ?? false;
    this.grpcCode = options.grpcCode;
    this.server = options.server;
    this.headers = options.headers;
    this.details = options.details;
  }
}

export function isProxyError(value: unknown): value is ProxyError {
  return typeof value === 'object' && value !== null && BRAND in value;
}

/** Shorthand constructors for the errors raised by the proxy's own checks. */
export const invalidRequest = (message: string): ProxyError =>
  new ProxyError('INVALID_REQUEST', message);

export const payloadTooLarge = (message: string): ProxyError =>
  new ProxyError('PAYLOAD_TOO_LARGE', message);

/** Anything that is not already a ProxyError is a proxy bug: hide the details. */
export function toProxyError(value: unknown): ProxyError {
  if (isProxyError(value)) return value;
  return new ProxyError('INTERNAL', 'internal proxy error', { cause: value });
}
