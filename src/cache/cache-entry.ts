import type { ModelInferResponse } from '../protocol';
import { decodeModelInferResponse, encodeModelInferResponse } from '../triton/wire';

/**
 * One stored answer: Triton's ModelInferResponse as protobuf bytes (the form
 * the shared tier holds and a gRPC front end can send), plus the decoded
 * message whose output tensors are views into those bytes, ready to render.
 * The id is empty: every caller gets its own id back.
 */
export interface CacheEntry {
  readonly model: string;
  readonly generation: number;
  readonly bytes: Buffer;
  readonly response: ModelInferResponse;
  /** ms since epoch. */
  readonly expiresAt: number;
}

export function entryFromResponse(
  response: ModelInferResponse,
  generation: number,
  expiresAt: number,
): CacheEntry {
  // One compact copy owned by the cache: the received frame may be shared with the caller.
  const bytes = encodeModelInferResponse({ ...response, id: '' });
  return entryFromBytes(response.modelName, generation, bytes, expiresAt);
}

export function entryFromBytes(
  model: string,
  generation: number,
  bytes: Buffer,
  expiresAt: number,
): CacheEntry {
  return { model, generation, bytes, response: decodeModelInferResponse(bytes), expiresAt };
}

// Shared-tier value: format byte, expiry (ms since epoch, float64 BE), then the protobuf bytes.
const FORMAT = 1;
const HEADER_BYTES = 9;

/** The shared tier's value: raw bytes, not JSON, with the expiry so readers keep the same deadline. */
export function sharedValueOf(entry: CacheEntry): Buffer[] {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt8(FORMAT, 0);
  header.writeDoubleBE(entry.expiresAt, 1);
  return [header, entry.bytes];
}

/** Undefined for a value of another format or one that does not decode (never trusted blindly). */
export function entryFromSharedValue(
  model: string,
  generation: number,
  value: Buffer,
): CacheEntry | undefined {
  if (value.length < HEADER_BYTES || value.readUInt8(0) !== FORMAT) return undefined;
  const expiresAt = value.readDoubleBE(1);
  if (!Number.isFinite(expiresAt)) return undefined;
  try {
    const entry = entryFromBytes(model, generation, value.subarray(HEADER_BYTES), expiresAt);
    return entry.response.modelName === model ? entry : undefined;
  } catch {
    return undefined;
  }
}
