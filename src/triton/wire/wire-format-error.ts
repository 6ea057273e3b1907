// A brand instead of instanceof so the error is recognised across module copies.
const BRAND = Symbol.for('triton-proxy.WireFormatError');

/**
 * Bytes that are not a valid message of the expected type, or a message that
 * cannot be encoded. Callers map it to a domain error (an upstream fault when
 * decoding a server's reply, a bad request when decoding a client's).
 */
export class WireFormatError extends Error {
  readonly [BRAND] = true;

  constructor(message: string) {
    super(message);
    this.name = 'WireFormatError';
  }
}

export function isWireFormatError(value: unknown): value is WireFormatError {
  return typeof value === 'object' && value !== null && BRAND in value;
}

const MAX_QUOTED_CHARS = 64;

/** Quotes a name taken from the message for an error text, bounded so a hostile name cannot bloat logs. */
export function quoteName(name: string): string {
  return name.length > MAX_QUOTED_CHARS ? `'${name.slice(0, MAX_QUOTED_CHARS)}…'` : `'${name}'`;
}
