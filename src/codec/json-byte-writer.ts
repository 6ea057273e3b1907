/**
 * Writes JSON text straight into byte chunks, so large `data` arrays are never
 * held as one JS string (building a 20 MB string by concatenation costs more
 * than formatting the numbers) and never concatenated into one Buffer: the
 * chunks go to the socket as they are.
 *
 * Tensor elements are written by the bulk methods at the end, which reserve
 * room for a batch of elements and then format into the buffer with plain
 * functions, without a method call or bounds bookkeeping per element.
 */

const MAX_CHUNK_BYTES = 1 << 20;
const MIN_CHUNK_BYTES = 256;
/** Elements formatted per reservation by the bulk writers. */
const BATCH = 4096;

const CHAR_0 = 48;
const CHAR_COMMA = 44;
const CHAR_MINUS = 45;
const CHAR_QUOTE = 34;
const CHAR_BACKSLASH = 92;

// Exact powers of ten up to the largest safe integer's digit count.
const POW10: readonly number[] = Array.from({ length: 17 }, (_, i) => Number(`1e${i}`));
const INT_POW10 = Int32Array.from({ length: 10 }, (_, i) => 10 ** i);
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) =>
  i % 2 === 0 ? CHAR_0 + Math.floor(i / 20) : CHAR_0 + (((i - 1) / 2) % 10),
);

/** Widest text of one safe integer: sign plus 16 digits. */
const MAX_INT_CHARS = 17;
/** Widest text of one 64-bit integer: sign plus 19 digits, or 20 digits unsigned. */
const MAX_INT64_CHARS = 21;
/** Widest text of one double as written here: "-1.2345678901234567e-308", or 21 integer digits plus ".0". */
const MAX_FLOAT64_CHARS = 26;

/** Fixed-width datatypes the bulk writer formats (FP16/BF16 have no JSON form). */
export type JsonNumericDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP32'
  | 'FP64';

const TWO_POW_32 = 4294967296;

export class JsonByteWriter {
  private readonly chunks: Buffer[] = [];
  private buf: Buffer;
  private pos = 0;
  private flushed = 0;

  /** `expectedBytes` sizes the first chunk so small documents fit in one allocation. */
  constructor(expectedBytes: number) {
    this.buf = Buffer.allocUnsafe(
      Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.ceil(expectedBytes))),
    );
  }

  get byteLength(): number {
    return this.flushed + this.pos;
  }

  /** The written bytes as chunks (views into the writer's buffers, no copy). */
  finish(): Buffer[] {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return this.chunks;
  }

  /**
   * Appends chunks written elsewhere (a worker's encoding of a large `data`
   * array) after what was written so far, without copying them; writing
   * continues after them in the rest of the current buffer.
   */
  append(chunks: readonly Buffer[]): void {
    if (this.pos > 0) {
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.flushed += this.pos;
      this.buf = this.buf.subarray(this.pos);
      this.pos = 0;
    }
    for (const chunk of chunks) {
      this.chunks.push(chunk);
      this.flushed += chunk.length;
    }
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = Buffer.allocUnsafe(Math.max(bytes, MAX_CHUNK_BYTES));
    this.pos = 0;
  }

  byte(code: number): void {
    this.reserve(1);
    this.buf[this.pos++] = code;
  }

  /** Text known to be ASCII (punctuation, keys, number text). */
  ascii(text: string): void {
    this.reserve(text.length);
    this.pos = putAscii(this.buf, this.pos, text);
  }

  /** Any JS string as a JSON string literal (quotes and escapes included), UTF-8 encoded. */
  string(text: string): void {
    const n = text.length;
    if (n <= 64) {
      // Names, datatypes and ids are short printable ASCII: copy them without JSON.stringify.
      this.reserve(n + 2);
      const buf = this.buf;
      let p = this.pos;
      buf[p++] = CHAR_QUOTE;
      let i = 0;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c < 0x20 || c > 0x7e || c === CHAR_QUOTE || c === CHAR_BACKSLASH) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[p++] = CHAR_QUOTE;
        this.pos = p;
        return;
      }
    }
    const literal = JSON.stringify(text);
    // JSON.stringify escapes lone surrogates, so 3 bytes per UTF-16 unit is an upper bound.
    this.reserve(literal.length * 3);
    this.pos += this.buf.write(literal, this.pos, 'utf8');
  }

  /**
   * Bytes [start, end) of `src` as a JSON string. Printable ASCII without
   * quote or backslash is copied as is; anything else is decoded as UTF-8
   * (invalid sequences become U+FFFD) and escaped.
   */
  utf8String(src: Buffer, start: number, end: number): void {
    for (let i = start; i < end; i++) {
      const c = src[i];
      if (c < 0x20 || c > 0x7e || c === CHAR_QUOTE || c === CHAR_BACKSLASH) {
        this.string(src.toString('utf8', start, end));
        return;
      }
    }
    this.reserve(end - start + 2);
    const buf = this.buf;
    buf[this.pos++] = CHAR_QUOTE;
    src.copy(buf, this.pos, start, end);
    this.pos += end - start;
    buf[this.pos++] = CHAR_QUOTE;
  }

  /** Bytes [start, end) of `src` as a base64 JSON string. */
  base64String(src: Buffer, start: number, end: number): void {
    this.reserve(Math.ceil((end - start) / 3) * 4 + 2);
    this.buf[this.pos++] = CHAR_QUOTE;
    this.pos += this.buf.write(src.toString('base64', start, end), this.pos, 'latin1');
    this.buf[this.pos++] = CHAR_QUOTE;
  }

  bool(value: boolean): void {
    this.ascii(value ? 'true' : 'false');
  }

  /** A safe integer (|v| <= 2^53 - 1). */
  int(value: number): void {
    this.reserve(MAX_INT_CHARS);
    this.pos = putInt(this.buf, this.pos, value);
  }

  /** A double: integers as such, others in JavaScript's shortest round-trip form. */
  float64(value: number): void {
    this.reserve(MAX_FLOAT64_CHARS);
    this.pos = putFloat64(this.buf, this.pos, value);
  }

  /** A bigint as exact decimal digits. */
  bigint(value: bigint): void {
    this.ascii(value.toString());
  }

  /**
   * `count` elements of a fixed-width tensor, comma-separated, read from
   * `view` (little-endian, any alignment). The caller has checked the size.
   */
  elements(view: DataView, count: number, datatype: JsonNumericDatatype): void {
    const width = datatype === 'FP32' || datatype === 'FP64' ? MAX_FLOAT64_CHARS : MAX_INT64_CHARS;
    for (let start = 0; start < count; start += BATCH) {
      const end = Math.min(count, start + BATCH);
      this.reserve((end - start) * (width + 1));
      const buf = this.buf;
      let p = this.pos;
      switch (datatype) {
        case 'FP32':
          // Widened to double, as Triton writes it: clients that compare the
          // JSON text or parse it into doubles see exactly Triton's numbers.
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putTensorFloat(buf, p, view.getFloat32(i * 4, true));
          }
          break;
        case 'FP64':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putTensorFloat(buf, p, view.getFloat64(i * 8, true));
          }
          break;
        case 'BOOL':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putAscii(buf, p, view.getUint8(i) === 0 ? 'false' : 'true');
          }
          break;
        case 'UINT8':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putSmallInt(buf, p, view.getUint8(i));
          }
          break;
        case 'INT8':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putSmallInt(buf, p, view.getInt8(i));
          }
          break;
        case 'UINT16':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putSmallInt(buf, p, view.getUint16(i * 2, true));
          }
          break;
        case 'INT16':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putSmallInt(buf, p, view.getInt16(i * 2, true));
          }
          break;
        case 'UINT32':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putInt(buf, p, view.getUint32(i * 4, true));
          }
          break;
        case 'INT32':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            p = putSmallInt(buf, p, view.getInt32(i * 4, true));
          }
          break;
        case 'INT64':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            const high = view.getInt32(i * 8 + 4, true);
            // |value| < 2^53 exactly when the high word is within +-2^21.
            if (high >= -0x200000 && high < 0x200000) {
              p = putInt(buf, p, high * TWO_POW_32 + view.getUint32(i * 8, true));
            } else {
              p = putAscii(buf, p, view.getBigInt64(i * 8, true).toString());
            }
          }
          break;
        case 'UINT64':
          for (let i = start; i < end; i++) {
            if (i > 0) buf[p++] = CHAR_COMMA;
            const high = view.getUint32(i * 8 + 4, true);
            if (high < 0x200000) {
              p = putInt(buf, p, high * TWO_POW_32 + view.getUint32(i * 8, true));
            } else {
              p = putAscii(buf, p, view.getBigUint64(i * 8, true).toString());
            }
          }
          break;
      }
      this.pos = p;
    }
  }
}

function putAscii(buf: Buffer, at: number, text: string): number {
  let p = at;
  for (let i = 0; i < text.length; i++) buf[p++] = text.charCodeAt(i);
  return p;
}

/** Writes the `len` decimal digits of `value` (below 2^32) at buf[p..p+len). */
function putDigits(buf: Buffer, p: number, value: number, len: number): void {
  let d = value;
  let q = p + len - 1;
  // Two digits per division, from a table of "00".."99".
  while (q > p) {
    const r = (d / 100) >>> 0;
    const pair = (d - r * 100) * 2;
    buf[q--] = DIGIT_PAIRS[pair + 1];
    buf[q--] = DIGIT_PAIRS[pair];
    d = r;
  }
  if (q === p) buf[p] = CHAR_0 + d;
}

/** An integer of magnitude below 2^31 + 1 (every 8-, 16- and 32-bit signed value). */
function putSmallInt(buf: Buffer, at: number, value: number): number {
  let p = at;
  let v = value;
  if (v < 0) {
    buf[p++] = CHAR_MINUS;
    v = -v;
  }
  let len = 1;
  while (len < 10 && v >= INT_POW10[len]) len++;
  putDigits(buf, p, v, len);
  return p + len;
}

/** A safe integer. */
function putInt(buf: Buffer, at: number, value: number): number {
  if (value >= -2147483647 && value <= 2147483647) return putSmallInt(buf, at, value);
  let p = at;
  let v = value;
  if (v < 0) {
    buf[p++] = CHAR_MINUS;
    v = -v;
  }
  let len = 10;
  while (len < 16 && v >= POW10[len]) len++;
  let q = p + len;
  while (v >= 10) {
    const r = Math.floor(v / 10);
    buf[--q] = CHAR_0 + (v - r * 10);
    v = r;
  }
  buf[--q] = CHAR_0 + v;
  return p + len;
}

/** Non-finite values use the tokens Triton's writer emits (rapidjson kWriteNanAndInfFlag). */
function putNonFinite(buf: Buffer, p: number, value: number): number {
  if (value !== value) return putAscii(buf, p, 'NaN');
  return putAscii(buf, p, value > 0 ? 'Infinity' : '-Infinity');
}

/** A double; -0 keeps its sign as "-0.0" (as Triton writes it; "-0" would read as integer 0 in Python). */
function putFloat64(buf: Buffer, p: number, value: number): number {
  if (value - value !== 0) return putNonFinite(buf, p, value);
  if (Number.isSafeInteger(value)) {
    if (value === 0 && 1 / value < 0) return putAscii(buf, p, '-0.0');
    return putInt(buf, p, value);
  }
  return putAscii(buf, p, String(value));
}

/**
 * A tensor element of FP32 or FP64 as Triton's JSON writer prints it: the
 * double's shortest round-trip form, integral values with ".0" ("7.0",
 * "-0.0"), so Python clients read a float and compare equal to Triton's text.
 */
function putTensorFloat(buf: Buffer, p: number, value: number): number {
  if (value - value !== 0) return putNonFinite(buf, p, value);
  if (Number.isSafeInteger(value)) {
    if (value === 0 && 1 / value < 0) return putAscii(buf, p, '-0.0');
    return putAscii(buf, putInt(buf, p, value), '.0');
  }
  const text = String(value);
  return putAscii(buf, p, Number.isInteger(value) && Math.abs(value) < 1e21 ? `${text}.0` : text);
}
