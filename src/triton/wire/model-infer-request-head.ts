import { type MessageHead, newMessageHead, readHeadField } from './message-head';
import {
  ProtoReader,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  asBuffer,
} from './proto-reader';

/** What routing, admission and deadlines need from a ModelInferRequest. */
export type ModelInferRequestHead = MessageHead;

// model_name 1, model_version 2, id 3, parameters 4: the fields the head keeps.
const LAST_HEAD_FIELD = 4;

/**
 * Reads the name, version, id and request parameters of an encoded
 * ModelInferRequest without decoding tensors: inputs, outputs and raw
 * contents are skipped by their length prefix (O(1) each), so a request is
 * routed on its original bytes, which are then forwarded as they are.
 * The message may be given in pieces (the DATA chunks it arrived in): only
 * a head field that straddles two pieces is joined, never the message.
 * Malformed bytes throw a WireFormatError.
 */
export function readModelInferRequestHead(
  bytes: Uint8Array | readonly Buffer[],
): ModelInferRequestHead {
  if (!Array.isArray(bytes)) return readContiguous(asBuffer(bytes as Uint8Array));
  const parts = bytes as readonly Buffer[];
  if (parts.length === 1) return readContiguous(parts[0]!);
  try {
    return readParts(parts);
  } catch {
    // Malformed: the contiguous reader's error names the problem and its byte.
    return readContiguous(Buffer.concat(parts));
  }
}

function readContiguous(buf: Buffer): ModelInferRequestHead {
  const r = new ProtoReader(buf);
  const head = newMessageHead();
  while (r.pos < r.limit) {
    const tag = r.tag();
    if (!readHeadField(r, tag, head)) r.skip(tag);
  }
  return head;
}

/** The same walk over pieces; any malformation throws (the caller rereads contiguously). */
function readParts(parts: readonly Buffer[]): ModelInferRequestHead {
  const c = new PartsCursor(parts);
  const head = newMessageHead();
  while (!c.atEnd()) {
    const tag = c.varint();
    const field = tag >>> 3;
    if (field === 0) throw new Error('field 0');
    switch (tag & 7) {
      case WIRE_VARINT:
        c.skipVarint();
        break;
      case WIRE_FIXED64:
        c.skip(8);
        break;
      case WIRE_FIXED32:
        c.skip(4);
        break;
      case WIRE_LENGTH_DELIMITED: {
        if (field > LAST_HEAD_FIELD) {
          c.skip(c.varint());
          break;
        }
        // Length prefix and payload as one buffer, read by the contiguous field reader.
        const field_ = c.lengthDelimited();
        const r = new ProtoReader(field_);
        if (!readHeadField(r, tag, head) || r.pos !== field_.length) throw new Error('head');
        break;
      }
      default:
        // Groups and invalid wire types: the contiguous reader handles (or names) them.
        throw new Error('wire type');
    }
  }
  return head;
}

/** A read position over message pieces. */
class PartsCursor {
  private part = 0;
  private pos = 0;

  constructor(private readonly parts: readonly Buffer[]) {
    this.settle();
  }

  atEnd(): boolean {
    return this.part >= this.parts.length;
  }

  byte(): number {
    if (this.atEnd()) throw new Error('truncated');
    const b = this.parts[this.part]![this.pos++]!;
    this.settle();
    return b;
  }

  /** A varint of at most 5 bytes (tags and lengths). */
  varint(): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return value;
    }
    throw new Error('varint');
  }

  skipVarint(): void {
    for (let i = 0; i < 10; i++) if (this.byte() < 0x80) return;
    throw new Error('varint');
  }

  skip(n: number): void {
    let left = n;
    while (left > 0) {
      if (this.atEnd()) throw new Error('truncated');
      const here = Math.min(left, this.parts[this.part]!.length - this.pos);
      this.pos += here;
      left -= here;
      this.settle();
    }
  }

  /** A length-delimited field's varint length and payload, as a view when they lie in one piece. */
  lengthDelimited(): Buffer {
    const startPart = this.part;
    const startPos = this.pos;
    const len = this.varint();
    const prefixBytes = this.bytesFrom(startPart, startPos);
    if (this.part === startPart && this.pos + len <= this.parts[startPart]!.length) {
      const view = this.parts[startPart]!.subarray(startPos, this.pos + len);
      this.skip(len);
      return view;
    }
    const out = Buffer.allocUnsafe(prefixBytes + len);
    let fill = 0;
    // Copy from the start position: the prefix and then the payload.
    let part = startPart;
    let pos = startPos;
    while (fill < out.length) {
      const piece = this.parts[part];
      if (piece === undefined) throw new Error('truncated');
      const take = Math.min(out.length - fill, piece.length - pos);
      piece.copy(out, fill, pos, pos + take);
      fill += take;
      pos = 0;
      part++;
    }
    this.skip(len);
    return out;
  }

  /** Bytes consumed since (part, pos). */
  private bytesFrom(part: number, pos: number): number {
    let n = 0;
    let p = part;
    let at = pos;
    while (p < this.part) {
      n += this.parts[p]!.length - at;
      at = 0;
      p++;
    }
    return n + (this.atEnd() ? 0 : this.pos - at);
  }

  /** Moves past exhausted (and empty) pieces. */
  private settle(): void {
    while (this.part < this.parts.length && this.pos >= this.parts[this.part]!.length) {
      this.part++;
      this.pos = 0;
    }
  }
}
