import assert from 'node:assert/strict';
import { isProxyError, type ProxyError } from '../../../src/errors';
import type { Datatype, ModelInferRequest, ModelInferResponse } from '../../../src/protocol';
import {
  encodeInferResponse,
  parseInferRequest,
  type EncodedInferResponse,
  type OutputPlan,
  type ParsedInferRequest,
} from '../../../src/codec';

export const MODEL = 'identity';

/** A whole-JSON request body. */
export function parseJson(header: unknown): ParsedInferRequest {
  return parseInferRequest({
    body: Buffer.from(JSON.stringify(header)),
    modelName: MODEL,
    modelVersion: '',
  });
}

/** A request body given as JSON text (for literals JSON.stringify cannot produce). */
export function parseText(text: string): ParsedInferRequest {
  return parseInferRequest({ body: Buffer.from(text), modelName: MODEL, modelVersion: '' });
}

/** JSON header followed by binary tensors, as tritonclient.http sends them. */
export function binaryBody(
  header: unknown,
  ...tensors: Buffer[]
): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

export function parseBinary(
  header: unknown,
  ...tensors: Buffer[]
): ParsedInferRequest & { body: Buffer } {
  const { body, headerLength } = binaryBody(header, ...tensors);
  return { ...parseInferRequest({ body, headerLength, modelName: MODEL, modelVersion: '' }), body };
}

/** Runs `fn`, expects a ProxyError, returns it for assertions on its message. */
export function proxyErrorOf(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (error) {
    assert.ok(isProxyError(error), `expected a ProxyError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

/** Asserts a 400 whose message contains every fragment. */
export function assertInvalid(fn: () => unknown, ...fragments: string[]): ProxyError {
  const error = proxyErrorOf(fn);
  assert.equal(error.status, 400, error.message);
  for (const fragment of fragments) {
    assert.ok(error.message.includes(fragment), `"${error.message}" should mention "${fragment}"`);
  }
  return error;
}

/** The response Triton would send for an identity model: each input echoed as an output. */
export function echo(
  request: ModelInferRequest,
  extra: Partial<ModelInferResponse> = {},
): ModelInferResponse {
  return {
    modelName: request.modelName,
    modelVersion: '1',
    id: request.id,
    parameters: {},
    outputs: request.inputs.map((input) => ({
      name: input.name,
      datatype: input.datatype,
      shape: input.shape,
      parameters: {},
    })),
    rawOutputContents: request.rawInputContents,
    ...extra,
  };
}

export interface DecodedResponse {
  /** The JSON header as text (it may hold NaN tokens JSON.parse refuses). */
  text: string;
  json: {
    id?: string;
    model_name: string;
    model_version: string;
    parameters?: Record<string, unknown>;
    outputs: {
      name: string;
      datatype: string;
      shape: number[];
      parameters?: Record<string, unknown>;
      data?: unknown[];
    }[];
  };
  /** Binary outputs by name, cut from the body by their binary_data_size. */
  binaries: Map<string, Buffer>;
}

/** Reads an encoded response the way a client does: header length, JSON, then binary tensors in order. */
export function decode(encoded: EncodedInferResponse): DecodedResponse {
  const body = Buffer.concat(encoded.chunks);
  assert.equal(body.length, encoded.byteLength);
  const headerLength = encoded.headerLength ?? body.length;
  if (encoded.headerLength === undefined) assert.equal(encoded.contentType, 'application/json');
  else assert.equal(encoded.contentType, 'application/octet-stream');
  const text = body.toString('utf8', 0, headerLength);
  const json = JSON.parse(text) as DecodedResponse['json'];
  const binaries = new Map<string, Buffer>();
  let offset = headerLength;
  for (const out of json.outputs) {
    const size = out.parameters?.binary_data_size;
    if (typeof size !== 'number') continue;
    binaries.set(out.name, body.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, body.length, 'binary_data_size values must add up to the body');
  return { text, json, binaries };
}

export function encodeEcho(request: ModelInferRequest, plan: OutputPlan): DecodedResponse {
  return decode(encodeInferResponse(echo(request), plan));
}

/** Raw little-endian bytes written with Buffer's own writers, independent of the codec. */
export function rawOf(
  datatype: Datatype,
  values: readonly (number | bigint | boolean | string)[],
): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    let b: Buffer;
    switch (datatype) {
      case 'BOOL':
        b = Buffer.from([v === true ? 1 : 0]);
        break;
      case 'UINT8':
        b = Buffer.alloc(1);
        b.writeUInt8(Number(v));
        break;
      case 'INT8':
        b = Buffer.alloc(1);
        b.writeInt8(Number(v));
        break;
      case 'UINT16':
        b = Buffer.alloc(2);
        b.writeUInt16LE(Number(v));
        break;
      case 'INT16':
        b = Buffer.alloc(2);
        b.writeInt16LE(Number(v));
        break;
      case 'UINT32':
        b = Buffer.alloc(4);
        b.writeUInt32LE(Number(v));
        break;
      case 'INT32':
        b = Buffer.alloc(4);
        b.writeInt32LE(Number(v));
        break;
      case 'UINT64':
        b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(v));
        break;
      case 'INT64':
        b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(v));
        break;
      case 'FP32':
        b = Buffer.alloc(4);
        b.writeFloatLE(Number(v));
        break;
      case 'FP64':
        b = Buffer.alloc(8);
        b.writeDoubleLE(Number(v));
        break;
      case 'BYTES': {
        const s = Buffer.from(String(v));
        b = Buffer.alloc(4 + s.length);
        b.writeUInt32LE(s.length);
        s.copy(b, 4);
        break;
      }
      default:
        throw new Error(`rawOf does not build ${datatype}`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}
