import {
  ProtoReader,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
} from './proto-reader';
import { WireFormatError, quoteName } from './wire-format-error';

/**
 * InferTensorContents (typed `contents`) converted to the raw little-endian
 * layout the rest of the proxy uses, so callers never see two representations.
 * Triton itself only answers with raw bytes; this path serves other servers,
 * clients that send typed inputs, and protocol conformance.
 */

const FIELD_NAMES = [
  '',
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
] as const;
const BYTES_FIELD = 8;

/** The contents field a datatype uses and the raw width of one element. */
const LAYOUTS: Readonly<Record<string, { field: number; width: number }>> = {
  BOOL: { field: 1, width: 1 },
  INT8: { field: 2, width: 1 },
  INT16: { field: 2, width: 2 },
  INT32: { field: 2, width: 4 },
  INT64: { field: 3, width: 8 },
  UINT8: { field: 4, width: 1 },
  UINT16: { field: 4, width: 2 },
  UINT32: { field: 4, width: 4 },
  UINT64: { field: 5, width: 8 },
  FP32: { field: 6, width: 4 },
  FP64: { field: 7, width: 8 },
  BYTES: { field: BYTES_FIELD, width: 0 },
};

function wireTypeFor(field: number): number {
  if (field <= 5) return WIRE_VARINT;
  if (field === 6) return WIRE_FIXED32;
  if (field === 7) return WIRE_FIXED64;
  return WIRE_LENGTH_DELIMITED;
}

function fixedWidth(field: number): number {
  return field === 6 ? 4 : field === 7 ? 8 : 0;
}

/** Where a tensor's `contents` submessages sit in the buffer: [start, end, start, end, ...]. */
export type ContentRanges = number[];

/** Element counts per contents field (index = field number); BYTES also counts its raw size. */
interface ContentCounts {
  elements: number[];
  bytesPayload: number;
}

function countElements(buf: Buffer, ranges: ContentRanges): ContentCounts {
  const elements = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  let bytesPayload = 0;
  const r = new ProtoReader(buf);
  for (let i = 0; i < ranges.length; i += 2) {
    r.pos = ranges[i];
    r.limit = ranges[i + 1];
    while (r.pos < r.limit) {
      const tag = r.tag();
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field < 1 || field > 8) {
        r.skip(tag);
      } else if (wireType === wireTypeFor(field)) {
        // One unpacked element.
        if (field === BYTES_FIELD) {
          const len = r.length();
          bytesPayload += len;
          r.pos += len;
        } else {
          r.skip(tag);
        }
        elements[field]++;
      } else if (wireType === WIRE_LENGTH_DELIMITED) {
        elements[field] += countPacked(r, field);
      } else {
        r.skip(tag);
      }
    }
  }
  return { elements, bytesPayload };
}

function countPacked(r: ProtoReader, field: number): number {
  const len = r.length();
  const start = r.pos;
  r.pos += len;
  const width = fixedWidth(field);
  if (width !== 0) {
    if (len % width !== 0) {
      throw new WireFormatError(
        `packed ${FIELD_NAMES[field]} of ${len} bytes is not a multiple of ${width}`,
      );
    }
    return len / width;
  }
  // Every varint ends with the one byte whose top bit is clear.
  const buf = r.buf;
  let count = 0;
  for (let i = start; i < start + len; i++) if (buf[i] < 0x80) count++;
  if (len > 0 && buf[start + len - 1] >= 0x80) {
    throw new WireFormatError(`packed ${FIELD_NAMES[field]} ends inside a varint`);
  }
  return count;
}

/** True when the contents carry at least one element of any kind. */
export function hasTypedElements(buf: Buffer, ranges: ContentRanges): boolean {
  return countElements(buf, ranges).elements.some((n) => n > 0);
}

/**
 * Converts a tensor's typed contents to raw bytes for its datatype. Elements
 * in a field the datatype does not use are an error, as in Triton; integer
 * values wider than the datatype keep their low bytes, as a C++ cast would.
 */
export function typedContentsToRaw(
  buf: Buffer,
  ranges: ContentRanges,
  datatype: string,
  tensorName: string,
): Buffer {
  const { elements, bytesPayload } = countElements(buf, ranges);
  const layout = Object.hasOwn(LAYOUTS, datatype) ? LAYOUTS[datatype] : undefined;
  for (let field = 1; field <= 8; field++) {
    if (elements[field] > 0 && field !== layout?.field) {
      throw new WireFormatError(
        `tensor ${quoteName(tensorName)} of datatype ${quoteName(datatype)} carries ${FIELD_NAMES[field]}`,
      );
    }
  }
  if (layout === undefined || elements[layout.field] === 0) return Buffer.alloc(0);
  const count = elements[layout.field];
  const size = layout.field === BYTES_FIELD ? count * 4 + bytesPayload : count * layout.width;
  const out = Buffer.allocUnsafe(size);
  const filled = fillRaw(buf, ranges, layout.field, layout.width, out);
  if (filled !== size) throw new Error(`typed contents filled ${filled} of ${size} bytes`);
  return out;
}

function fillRaw(
  buf: Buffer,
  ranges: ContentRanges,
  field: number,
  width: number,
  out: Buffer,
): number {
  const r = new ProtoReader(buf);
  const unpackedTag = (field << 3) | wireTypeFor(field);
  const packedTag = (field << 3) | WIRE_LENGTH_DELIMITED;
  let o = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    r.pos = ranges[i];
    r.limit = ranges[i + 1];
    while (r.pos < r.limit) {
      const tag = r.tag();
      if (tag === unpackedTag) {
        o =
          field === BYTES_FIELD
            ? writeBytesElement(r, out, o)
            : writeElement(r, field, width, out, o);
      } else if (tag === packedTag) {
        const outer = r.enter();
        const fixed = fixedWidth(field);
        if (fixed !== 0) {
          o += buf.copy(out, o, r.pos, r.limit);
          r.pos = r.limit;
        } else {
          while (r.pos < r.limit) o = writeElement(r, field, width, out, o);
        }
        r.leave(outer);
      } else {
        r.skip(tag);
      }
    }
  }
  return o;
}

function writeBytesElement(r: ProtoReader, out: Buffer, o: number): number {
  const len = r.length();
  out.writeUInt32LE(len, o);
  r.buf.copy(out, o + 4, r.pos, r.pos + len);
  r.pos += len;
  return o + 4 + len;
}

function writeElement(
  r: ProtoReader,
  field: number,
  width: number,
  out: Buffer,
  o: number,
): number {
  const fixed = fixedWidth(field);
  if (fixed !== 0) {
    r.advance(fixed, FIELD_NAMES[field]);
    return o + r.buf.copy(out, o, r.pos - fixed, r.pos);
  }
  r.varint64();
  if (field === 1) {
    out[o] = (r.lo | r.hi) !== 0 ? 1 : 0;
    return o + 1;
  }
  // Little-endian low bytes: truncation for narrow types, two 32-bit halves for 64-bit ones.
  const lo = r.lo;
  out[o] = lo;
  if (width >= 2) out[o + 1] = lo >>> 8;
  if (width >= 4) {
    out[o + 2] = lo >>> 16;
    out[o + 3] = lo >>> 24;
  }
  if (width === 8) out.writeUInt32LE(r.hi, o + 4);
  return o + width;
}

/**
 * The raw bytes of every tensor, one entry per tensor: the message's raw
 * contents when it has any (they must then cover every tensor, as Triton
 * requires and always sends), otherwise each tensor's typed contents converted.
 */
export function resolveTensorData(
  buf: Buffer,
  kind: 'input' | 'output',
  tensors: readonly { name: string; datatype: string }[],
  contents: readonly (ContentRanges | undefined)[],
  raw: Buffer[],
): Buffer[] {
  if (raw.length > 0) {
    if (raw.length !== tensors.length) {
      throw new WireFormatError(
        `message has ${raw.length} raw_${kind}_contents for ${tensors.length} ${kind}s`,
      );
    }
    for (let i = 0; i < tensors.length; i++) {
      const ranges = contents[i];
      if (ranges !== undefined && hasTypedElements(buf, ranges)) {
        throw new WireFormatError(
          `${kind} ${quoteName(tensors[i].name)} has both raw_${kind}_contents and typed contents`,
        );
      }
    }
    return raw;
  }
  const data: Buffer[] = new Array<Buffer>(tensors.length);
  for (let i = 0; i < tensors.length; i++) {
    const ranges = contents[i];
    data[i] =
      ranges === undefined
        ? Buffer.alloc(0)
        : typedContentsToRaw(buf, ranges, tensors[i].datatype, tensors[i].name);
  }
  return data;
}
