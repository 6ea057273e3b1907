import type { Datatype } from '../protocol';
import { invalidArgument, type TritonError } from './triton-error';
import type { WireTensorContents } from './wire';

/** A tensor as models see it: raw little-endian bytes (BYTES: 4-byte length prefixes). */
export interface Tensor {
  datatype: Datatype;
  shape: number[];
  data: Buffer;
}

export type TensorMap = ReadonlyMap<string, Tensor>;

/**
 * Converts an input's typed `contents` to raw bytes the way Triton's gRPC
 * frontend does (server/src/grpc/infer_handler.cc, InferGRPCToInput): the
 * one non-empty field must match the declared datatype; int_contents and
 * uint_contents also carry the 8- and 16-bit types.
 */
export function contentsToRaw(
  contents: WireTensorContents,
  datatype: string,
  inputName: string,
  modelName: string,
): Buffer | TritonError {
  const present = typedFields(contents, datatype).filter((field) => field.count > 0);
  const first = present[0];
  if (first === undefined) return Buffer.alloc(0);
  if (!first.allowed) {
    return invalidArgument(
      `unexpected explicit tensor data for input tensor '${inputName}' for model '${modelName}' of type '${first.type}', expected datatype '${datatype}'`,
    );
  }
  if (present.length > 1) {
    return invalidArgument(
      `unexpected explicit tensor data for input tensor '${inputName}' for model '${modelName}', binary data was already supplied.`,
    );
  }
  return first.encode();
}

interface TypedField {
  count: number;
  /** The datatype the field stands for, as Triton names it in its message. */
  type: string;
  allowed: boolean;
  encode: () => Buffer;
}

function typedFields(c: WireTensorContents, datatype: string): TypedField[] {
  const narrowInt = datatype === 'INT8' ? 1 : datatype === 'INT16' ? 2 : 4;
  const narrowUint = datatype === 'UINT8' ? 1 : datatype === 'UINT16' ? 2 : 4;
  return [
    {
      count: c.bool_contents.length,
      type: 'BOOL',
      allowed: datatype === 'BOOL',
      encode: () => Buffer.from(c.bool_contents.map((b) => (b ? 1 : 0))),
    },
    {
      count: c.int_contents.length,
      type: narrowInt === 4 ? 'INT32' : datatype,
      allowed: narrowInt !== 4 || datatype === 'INT32',
      encode: () => writeInts(c.int_contents, narrowInt),
    },
    {
      count: c.int64_contents.length,
      type: 'INT64',
      allowed: datatype === 'INT64',
      encode: () => writeBigInts(c.int64_contents, true),
    },
    {
      count: c.uint_contents.length,
      type: narrowUint === 4 ? 'UINT32' : datatype,
      allowed: narrowUint !== 4 || datatype === 'UINT32',
      encode: () => writeInts(c.uint_contents, narrowUint),
    },
    {
      count: c.uint64_contents.length,
      type: 'UINT64',
      allowed: datatype === 'UINT64',
      encode: () => writeBigInts(c.uint64_contents, false),
    },
    {
      count: c.fp32_contents.length,
      type: 'FP32',
      allowed: datatype === 'FP32',
      encode: () => writeFloats(c.fp32_contents, 4),
    },
    {
      count: c.fp64_contents.length,
      type: 'FP64',
      allowed: datatype === 'FP64',
      encode: () => writeFloats(c.fp64_contents, 8),
    },
    {
      count: c.bytes_contents.length,
      type: 'BYTES',
      allowed: datatype === 'BYTES',
      encode: () => encodeBytesElements(c.bytes_contents),
    },
  ];
}

// Triton static_casts the protobuf int32/uint32 values, so narrower types keep the low bytes.
function writeInts(values: number[], width: 1 | 2 | 4): Buffer {
  const out = Buffer.allocUnsafe(values.length * width);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (width === 1) out.writeUInt8(v & 0xff, i);
    else if (width === 2) out.writeUInt16LE(v & 0xffff, i * 2);
    else out.writeUInt32LE(v >>> 0, i * 4);
  }
  return out;
}

function writeBigInts(values: string[], signed: boolean): Buffer {
  const out = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) {
    const v = BigInt(values[i]!);
    if (signed) out.writeBigInt64LE(v, i * 8);
    else out.writeBigUInt64LE(v, i * 8);
  }
  return out;
}

function writeFloats(values: number[], width: 4 | 8): Buffer {
  const out = Buffer.allocUnsafe(values.length * width);
  for (let i = 0; i < values.length; i++) {
    if (width === 4) out.writeFloatLE(values[i]!, i * 4);
    else out.writeDoubleLE(values[i]!, i * 8);
  }
  return out;
}

/** Serialises BYTES elements: each a 4-byte little-endian length and its bytes. */
export function encodeBytesElements(elements: ReadonlyArray<Buffer | string>): Buffer {
  const parts: Buffer[] = [];
  for (const element of elements) {
    const bytes = typeof element === 'string' ? Buffer.from(element, 'utf8') : element;
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32LE(bytes.length, 0);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

/** Splits serialised BYTES data into its elements (views, not copies). */
export function decodeBytesElements(data: Buffer): Buffer[] {
  const elements: Buffer[] = [];
  let offset = 0;
  while (offset + 4 <= data.length) {
    const length = data.readUInt32LE(offset);
    offset += 4;
    elements.push(data.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}

/**
 * Checks serialised BYTES data against the element count its shape implies,
 * with Triton core's messages (InferenceRequest::ValidateBytesInputs); returns
 * the problem, or null when the data is well formed.
 */
export function bytesDataProblem(
  data: Buffer,
  expectedElements: number,
  inputName: string,
  modelName: string,
): string | null {
  let offset = 0;
  let checked = 0;
  while (offset < data.length) {
    const remaining = data.length - offset;
    if (remaining < 4) {
      return `incomplete string length indicator for inference input '${inputName}' for model '${modelName}', expecting 4 bytes but only ${remaining} bytes available. Please make sure the string length indicator is in one buffer.`;
    }
    const length = data.readUInt32LE(offset);
    checked++;
    if (checked > expectedElements) {
      return `unexpected number of string elements ${checked} for inference input '${inputName}' for model '${modelName}', expecting ${expectedElements}`;
    }
    offset += 4 + length;
  }
  if (offset > data.length) {
    // Triton lets a truncated last element through to the backend; a clear refusal serves tests better.
    return `element ${checked} of inference input '${inputName}' for model '${modelName}' is longer than the ${data.length} bytes supplied`;
  }
  if (checked !== expectedElements) {
    return `expected ${expectedElements} string elements for inference input '${inputName}' for model '${modelName}', got ${checked}`;
  }
  return null;
}
