import { WireFormatError } from './wire-format-error';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

// Groups are deprecated and never used by these messages; the bound only keeps
// hostile input from exhausting the stack while we skip them.
const MAX_GROUP_DEPTH = 32;
const INLINE_STRING_BYTES = 24;

/**
 * A cursor over one received buffer. Every read is checked against `limit`,
 * the end of the innermost message being decoded, so malformed lengths fail
 * with a WireFormatError instead of reading past a message or the buffer.
 * Every read consumes at least one byte, so decode loops always terminate.
 */
export class ProtoReader {
  readonly buf: Buffer;
  pos = 0;
  limit: number;
  /** The last varint64() result as unsigned 32-bit halves (no BigInt on the hot path). */
  lo = 0;
  hi = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.limit = buf.length;
  }

  /** Reads a field tag; field number 0 is never valid. */
  tag(): number {
    const pos = this.pos;
    if (pos < this.limit) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        if (b < 8) throw new WireFormatError(`invalid field number 0 at byte ${pos}`);
        return b;
      }
    }
    const start = this.pos;
    const tag = this.varint32('tag');
    if (tag >>> 3 === 0) throw new WireFormatError(`invalid field number 0 at byte ${start}`);
    return tag;
  }

  /** A length prefix, checked to fit inside the current message. */
  length(): number {
    const start = this.pos;
    let len: number;
    if (start < this.limit && this.buf[start] < 0x80) {
      len = this.buf[start];
      this.pos = start + 1;
    } else {
      len = this.varint32('length');
    }
    const left = this.limit - this.pos;
    if (len > left) {
      throw new WireFormatError(
        `length ${len} at byte ${start} runs past the end of its message (${left} byte${left === 1 ? '' : 's'} left)`,
      );
    }
    return len;
  }

  /** A varint's low 32 bits; a length must fit in them, a tag keeps them as protobuf does. */
  private varint32(kind: 'tag' | 'length'): number {
    const strict = kind === 'length';
    const buf = this.buf;
    const limit = this.limit;
    let pos = this.pos;
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= limit) throw this.truncated('varint');
      const b = buf[pos++];
      if (i < 4) {
        value |= (b & 0x7f) << (7 * i);
      } else if (i === 4) {
        value |= b << 28;
        if (strict && (b & 0x70) !== 0) throw this.tooLarge();
      } else if (strict && (b & 0x7f) !== 0) {
        throw this.tooLarge();
      }
      if (b < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    throw new WireFormatError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Reads a varint of up to 64 bits into `lo`/`hi`. */
  varint64(): void {
    const buf = this.buf;
    const limit = this.limit;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= limit) throw this.truncated('varint');
      const b = buf[pos++];
      if (i < 4) {
        lo |= (b & 0x7f) << (7 * i);
      } else if (i === 4) {
        lo |= b << 28;
        hi |= (b & 0x7f) >>> 4;
      } else {
        hi |= (b & 0x7f) << (7 * i - 32);
      }
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new WireFormatError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** A varint's truth value: any non-zero bit. */
  bool(): boolean {
    this.varint64();
    return (this.lo | this.hi) !== 0;
  }

  double(): number {
    if (this.limit - this.pos < 8) throw this.truncated('double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  string(): string {
    const len = this.length();
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    if (len > INLINE_STRING_BYTES) return this.buf.toString('utf8', start, end);
    // Names, datatypes and ids are short ASCII: building them in JS beats a call into C++.
    const buf = this.buf;
    let text = '';
    for (let i = start; i < end; i++) {
      const c = buf[i];
      if (c >= 0x80) return buf.toString('utf8', start, end);
      text += String.fromCharCode(c);
    }
    return text;
  }

  /** A bytes field as a view into the received buffer: no copy, possibly unaligned. */
  bytes(): Buffer {
    const len = this.length();
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** Enters a length-delimited submessage; returns the limit to hand back to leave(). */
  enter(): number {
    const len = this.length();
    const outer = this.limit;
    this.limit = this.pos + len;
    return outer;
  }

  leave(outer: number): void {
    this.limit = outer;
  }

  /** Skips a field this decoder does not know, by its wire type. */
  skip(tag: number, depth = 0): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        this.advance(8, 'fixed64');
        return;
      case WIRE_LENGTH_DELIMITED: {
        const len = this.length();
        this.pos += len;
        return;
      }
      case WIRE_FIXED32:
        this.advance(4, 'fixed32');
        return;
      case WIRE_START_GROUP:
        this.skipGroup(tag >>> 3, depth);
        return;
      case WIRE_END_GROUP:
        throw new WireFormatError(`unexpected end-group tag at byte ${this.pos}`);
      default:
        throw new WireFormatError(`invalid wire type ${tag & 7} at byte ${this.pos}`);
    }
  }

  private skipGroup(field: number, depth: number): void {
    if (depth >= MAX_GROUP_DEPTH) throw new WireFormatError('groups nested too deeply');
    for (;;) {
      if (this.pos >= this.limit) throw this.truncated('group');
      const tag = this.tag();
      if ((tag & 7) === WIRE_END_GROUP) {
        if (tag >>> 3 !== field) {
          throw new WireFormatError(`group ${field} closed by end-group tag ${tag >>> 3}`);
        }
        return;
      }
      this.skip(tag, depth + 1);
    }
  }

  advance(n: number, what: string): void {
    if (this.limit - this.pos < n) throw this.truncated(what);
    this.pos += n;
  }

  private truncated(what: string): WireFormatError {
    return new WireFormatError(`truncated ${what} at byte ${this.pos}`);
  }

  private tooLarge(): WireFormatError {
    return new WireFormatError(`length at byte ${this.pos} does not fit in 32 bits`);
  }
}

/** Views any Uint8Array as a Buffer over the same memory, so slices stay views. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
