import { invalidRequest, type ProxyError } from '../errors';
import { elementBytes, type Datatype } from '../protocol';
import { InexactIntegerError } from './json-header';

/**
 * JSON `data` arrays to raw tensor bytes, in one pass straight into the
 * final buffer: no flattened copy, no per-element arrays. Any nesting is
 * accepted as long as the leaves, in order, number exactly the shape's
 * element count; that is what Triton checks (ReadDataFromJson), not whether
 * the nesting mirrors the shape.
 *
 * Checks go further than Triton, which truncates silently: integers must fit
 * their width, FP32 values must be within float32 range, BOOL takes only
 * true/false. INT64/UINT64 beyond 2^53 are written exactly from BigInt (see
 * json-header.ts for how they get here).
 */

export interface JsonTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly elementCount: number;
  readonly data: unknown[];
  /** BYTES elements are base64 text to decode (`"content_type": "base64"`). */
  readonly base64: boolean;
  /** The header was parsed exactly: integers beyond 2^53 arrive as BigInt. */
  readonly exact: boolean;
}

/** Triton's HTTP_MAX_JSON_NESTING_DEPTH. */
const MAX_NESTING_DEPTH = 100;

const enum Kind {
  Bool,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Int8,
  Int16,
  Int32,
  Int64,
  Fp32,
  Fp64,
}

const KINDS: Partial<Record<Datatype, Kind>> = {
  BOOL: Kind.Bool,
  UINT8: Kind.Uint8,
  UINT16: Kind.Uint16,
  UINT32: Kind.Uint32,
  UINT64: Kind.Uint64,
  INT8: Kind.Int8,
  INT16: Kind.Int16,
  INT32: Kind.Int32,
  INT64: Kind.Int64,
  FP32: Kind.Fp32,
  FP64: Kind.Fp64,
};

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const TWO_POW_32 = 4294967296;

const RANGES: Partial<Record<Datatype, string>> = {
  UINT8: '[0, 255]',
  UINT16: '[0, 65535]',
  UINT32: '[0, 4294967295]',
  UINT64: '[0, 18446744073709551615]',
  INT8: '[-128, 127]',
  INT16: '[-32768, 32767]',
  INT32: '[-2147483648, 2147483647]',
  INT64: '[-9223372036854775808, 9223372036854775807]',
};

/**
 * Raw little-endian bytes for one JSON input. `textLength` (the JSON header's
 * length) bounds the element count before anything is allocated: every
 * element takes at least one character, so a shape claiming more elements
 * than that is refused without allocating for it.
 */
export function jsonTensorToRaw(tensor: JsonTensor, textLength: number): Buffer {
  if (tensor.elementCount === 0) return Buffer.alloc(0);
  if (tensor.datatype === 'FP16' || tensor.datatype === 'BF16') {
    throw invalidRequest(
      `receiving ${tensor.datatype} data via JSON is not supported. Please use the binary data format for input '${tensor.name}'`,
    );
  }
  if (tensor.datatype === 'BYTES') return bytesToRaw(tensor);
  if (tensor.elementCount > textLength)
    throw countMismatch(tensor, countLeaves(tensor, tensor.data, 0));
  const byteLength = tensor.elementCount * elementBytes(tensor.datatype);
  const raw = Buffer.allocUnsafe(byteLength);
  new NumericFill(tensor, raw).fill();
  return raw;
}

function describe(value: unknown): string {
  const text =
    typeof value === 'bigint' || typeof value === 'number' ? String(value) : JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function badValue(tensor: JsonTensor, value: unknown): ProxyError {
  const dt = tensor.datatype;
  let expected: string;
  if (dt === 'BOOL') expected = 'a boolean (true or false)';
  else if (dt === 'FP32' || dt === 'FP64') expected = `a number within ${dt} range`;
  else if (dt === 'BYTES') expected = tensor.base64 ? 'a base64 string' : 'a string';
  else expected = `an integer in ${RANGES[dt] ?? ''}`;
  return invalidRequest(
    `Unable to parse 'data' for input '${tensor.name}': expected ${dt} element to be ${expected}, got ${describe(value)}`,
  );
}

function countMismatch(tensor: JsonTensor, got: number): ProxyError {
  return invalidRequest(
    `unexpected number of elements in 'data' for input '${tensor.name}': shape [${tensor.shape.join(',')}] expects ${tensor.elementCount}, got ${got}`,
  );
}

function tooDeep(tensor: JsonTensor): ProxyError {
  return invalidRequest(
    `Unable to parse 'data' for input '${tensor.name}': JSON nesting depth exceeds maximum allowed limit (${MAX_NESTING_DEPTH})`,
  );
}

function countLeaves(tensor: JsonTensor, node: unknown[], depth: number): number {
  if (depth >= MAX_NESTING_DEPTH) throw tooDeep(tensor);
  let n = 0;
  for (let i = 0; i < node.length; i++) {
    const el = node[i];
    n += Array.isArray(el) ? countLeaves(tensor, el, depth + 1) : 1;
  }
  return n;
}

/** Writes every element of one fixed-width tensor through a DataView (any alignment, explicit little-endian). */
class NumericFill {
  private readonly kind: Kind;
  private readonly view: DataView;
  private readonly limit: number;
  private count = 0;

  constructor(
    private readonly tensor: JsonTensor,
    raw: Buffer,
  ) {
    const kind = KINDS[tensor.datatype];
    if (kind === undefined) throw new Error(`no JSON writer for ${tensor.datatype}`);
    this.kind = kind;
    this.view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    this.limit = tensor.elementCount;
  }

  fill(): void {
    this.run(this.tensor.data, 0);
    if (this.count !== this.limit) throw countMismatch(this.tensor, this.count);
  }

  private overflow(): never {
    throw countMismatch(this.tensor, countLeaves(this.tensor, this.tensor.data, 0));
  }

  private run(arr: unknown[], depth: number): void {
    if (depth >= MAX_NESTING_DEPTH) throw tooDeep(this.tensor);
    const view = this.view;
    const kind = this.kind;
    const limit = this.limit;
    let c = this.count;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (typeof v === 'number') {
        if (c >= limit) this.overflow();
        switch (kind) {
          case Kind.Fp32: {
            const f = Math.fround(v);
            if (f - f !== 0 && v - v === 0) throw badValue(this.tensor, v);
            view.setFloat32(c * 4, f, true);
            break;
          }
          case Kind.Fp64:
            view.setFloat64(c * 8, v, true);
            break;
          case Kind.Int32:
            if ((v | 0) !== v) throw badValue(this.tensor, v);
            view.setInt32(c * 4, v, true);
            break;
          case Kind.Uint8:
            if (v >>> 0 !== v || v > 0xff) throw badValue(this.tensor, v);
            view.setUint8(c, v);
            break;
          case Kind.Int8:
            if ((v | 0) !== v || v < -0x80 || v > 0x7f) throw badValue(this.tensor, v);
            view.setInt8(c, v);
            break;
          case Kind.Uint16:
            if (v >>> 0 !== v || v > 0xffff) throw badValue(this.tensor, v);
            view.setUint16(c * 2, v, true);
            break;
          case Kind.Int16:
            if ((v | 0) !== v || v < -0x8000 || v > 0x7fff) throw badValue(this.tensor, v);
            view.setInt16(c * 2, v, true);
            break;
          case Kind.Uint32:
            if (v >>> 0 !== v) throw badValue(this.tensor, v);
            view.setUint32(c * 4, v, true);
            break;
          case Kind.Int64:
          case Kind.Uint64:
            this.int64(c, v);
            break;
          default:
            throw badValue(this.tensor, v);
        }
        c++;
      } else if (Array.isArray(v)) {
        this.count = c;
        this.run(v, depth + 1);
        c = this.count;
      } else {
        if (c >= limit) this.overflow();
        this.other(c, v);
        c++;
      }
    }
    this.count = c;
  }

  private int64(c: number, v: number): void {
    if (!Number.isSafeInteger(v)) {
      // An integer beyond 2^53 here lost digits in JSON.parse: start over exactly.
      // After the exact parse only literals like 1e19 are left, which have no exact integer reading.
      if (Number.isInteger(v) && !this.tensor.exact) {
        throw new InexactIntegerError();
      }
      throw badValue(this.tensor, v);
    }
    if (this.kind === Kind.Uint64 && v < 0) throw badValue(this.tensor, v);
    // Two's complement split; exact for safe integers, negative ones included.
    const high = Math.floor(v / TWO_POW_32);
    this.view.setUint32(c * 8, v - high * TWO_POW_32, true);
    this.view.setInt32(c * 8 + 4, high, true);
  }

  /** Leaves that are not JS numbers: booleans, and BigInt from the exact parse. */
  private other(c: number, v: unknown): void {
    if (typeof v === 'boolean' && this.kind === Kind.Bool) {
      this.view.setUint8(c, v ? 1 : 0);
      return;
    }
    if (typeof v === 'bigint') {
      switch (this.kind) {
        case Kind.Int64:
          if (v < INT64_MIN || v > INT64_MAX) break;
          this.view.setBigInt64(c * 8, v, true);
          return;
        case Kind.Uint64:
          if (v < 0n || v > UINT64_MAX) break;
          this.view.setBigUint64(c * 8, v, true);
          return;
        case Kind.Fp64:
          this.view.setFloat64(c * 8, Number(v), true);
          return;
        case Kind.Fp32: {
          const f = Math.fround(Number(v));
          if (f - f !== 0) break;
          this.view.setFloat32(c * 4, f, true);
          return;
        }
        default:
          break;
      }
    }
    throw badValue(this.tensor, v);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * BYTES: each element a 4-byte little-endian length then its bytes. Two
 * walks over the JSON strings (measure, then write) keep it to one buffer.
 */
function bytesToRaw(tensor: JsonTensor): Buffer {
  const encoding: BufferEncoding = tensor.base64 ? 'base64' : 'utf8';
  let count = 0;
  let total = 0;
  const measure = (arr: unknown[], depth: number): void => {
    if (depth >= MAX_NESTING_DEPTH) throw tooDeep(tensor);
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (Array.isArray(v)) {
        measure(v, depth + 1);
        continue;
      }
      if (typeof v !== 'string' || (tensor.base64 && !BASE64.test(v))) throw badValue(tensor, v);
      count++;
      total += 4 + Buffer.byteLength(v, encoding);
    }
  };
  measure(tensor.data, 0);
  if (count !== tensor.elementCount) throw countMismatch(tensor, count);

  const raw = Buffer.allocUnsafe(total);
  let offset = 0;
  const write = (arr: unknown[]): void => {
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (Array.isArray(v)) {
        write(v);
        continue;
      }
      const written = raw.write(v as string, offset + 4, encoding);
      raw.writeUInt32LE(written, offset);
      offset += 4 + written;
    }
  };
  write(tensor.data);
  return offset === total ? raw : raw.subarray(0, offset);
}
