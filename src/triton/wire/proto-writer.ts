import { WireFormatError } from './wire-format-error';

/**
 * Encoding runs in two passes over the message: a size pass that computes the
 * exact total and records, in visiting order, the payload length of every
 * string and submessage; then a write pass into one buffer of that size that
 * consumes those lengths in the same order. Tensor bytes are copied once.
 */

// gRPC frames carry a uint32 length, so no message can be larger.
const MAX_MESSAGE_BYTES = 0xffffffff;
// Short strings are sized and written in JS; crossing into C++ costs more than the loop.
const INLINE_STRING_CHARS = 32;

export function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Varint size of a safe integer written as int64 (negative ones take 10 bytes). */
export function int64Size(value: number): number {
  if (value < 0) return 10;
  if (value < 0x10000000) return varint32Size(value);
  let size = 5;
  for (let rest = Math.floor(value / 2 ** 35); rest > 0; rest = Math.floor(rest / 128)) size++;
  return size;
}

export function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varint32Size(lo);
  let size = 5;
  for (let rest = hi >>> 3; rest > 0; rest >>>= 7) size++;
  return size;
}

function utf8Length(text: string): number {
  const n = text.length;
  if (n > INLINE_STRING_CHARS) return Buffer.byteLength(text, 'utf8');
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (
      c >= 0xd800 &&
      c < 0xdc00 &&
      i + 1 < n &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      bytes += 4;
      i++;
    } else {
      // Includes lone surrogates, which Buffer encodes as U+FFFD (3 bytes).
      bytes += 3;
    }
  }
  return bytes;
}

/** Size of a string field's payload plus its length prefix; records the length. */
export function stringSize(text: string, lengths: number[]): number {
  const len = utf8Length(text);
  lengths.push(len);
  return varint32Size(len) + len;
}

function checkMessageSize(size: number): void {
  if (size > MAX_MESSAGE_BYTES) {
    throw new WireFormatError(`message of ${size} bytes exceeds gRPC's 4 GiB message limit`);
  }
}

export class ProtoWriter {
  readonly buf: Buffer;
  pos: number;
  private readonly lengths: readonly number[];
  private next = 0;

  constructor(buf: Buffer, pos: number, lengths: readonly number[]) {
    this.buf = buf;
    this.pos = pos;
    this.lengths = lengths;
  }

  /** Writes the next recorded submessage length as its prefix. */
  lengthPrefix(): void {
    this.uint32(this.lengths[this.next++]);
  }

  uint32(value: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (value > 0x7f) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** A safe integer as int64: two's complement for negatives, no BigInt. */
  int64(value: number): void {
    if (value < 0) {
      const hi = Math.floor(value / 4294967296);
      this.varint64((value - hi * 4294967296) >>> 0, hi >>> 0);
      return;
    }
    const buf = this.buf;
    while (value > 0x7fffffff) {
      buf[this.pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.uint32(value);
  }

  varint64(lo: number, hi: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (hi !== 0) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.pos = pos;
    this.uint32(lo);
  }

  double(value: number): void {
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Writes a string field's length prefix and UTF-8 bytes, using the recorded length. */
  string(text: string): void {
    const len = this.lengths[this.next++];
    this.uint32(len);
    const buf = this.buf;
    let pos = this.pos;
    if (len === text.length && len <= INLINE_STRING_CHARS) {
      // Byte length equal to UTF-16 length means every character is ASCII.
      for (let i = 0; i < len; i++) buf[pos++] = text.charCodeAt(i);
    } else if (len > 0) {
      pos += buf.write(text, pos, len, 'utf8');
    }
    this.pos = pos;
  }

  bytes(data: Uint8Array): void {
    this.uint32(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

/**
 * Allocates exactly `prefix + size` bytes, lets `write` fill the message part,
 * and checks the two passes agreed. `prefix` leaves room for a gRPC frame header.
 */
export function writeMessage(
  size: number,
  prefix: number,
  lengths: readonly number[],
  write: (writer: ProtoWriter) => void,
): Buffer {
  checkMessageSize(size);
  const buf = Buffer.allocUnsafe(prefix + size);
  const writer = new ProtoWriter(buf, prefix, lengths);
  write(writer);
  if (writer.pos !== buf.length) {
    throw new Error(`wire encoder wrote ${writer.pos - prefix} bytes, sized ${size}`);
  }
  return buf;
}

/** A proto3 string field: absent when empty, as every encoder writes it. */
export function writeStringField(w: ProtoWriter, tag: number, value: string): void {
  if (value.length === 0) return;
  w.uint32(tag);
  w.string(value);
}
