import { invalidRequest } from '../errors';

export const INFERENCE_HEADER_CONTENT_LENGTH = 'Inference-Header-Content-Length';

const DIGITS = /^[0-9]+$/;

/**
 * Reads the Inference-Header-Content-Length request header: undefined when
 * absent, else a non-negative integer (400 naming the header otherwise).
 * Stricter than Triton's std::stoi, which would take "12abc" as 12.
 */
export function readBinaryHeaderLength(headerValue: string | undefined): number | undefined {
  if (headerValue === undefined) return undefined;
  const text = headerValue.trim();
  const value = DIGITS.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw invalidRequest(
      `Unable to parse ${INFERENCE_HEADER_CONTENT_LENGTH}, expected a non-negative integer, got: ${JSON.stringify(headerValue)}`,
    );
  }
  return value;
}
