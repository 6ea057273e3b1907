import type { ModelInferResponse } from '../../protocol';
import {
  headSize,
  newMessageHead,
  readHeadField,
  writeHead,
  type MessageHead,
} from './message-head';
import { ProtoReader, WIRE_LENGTH_DELIMITED, asBuffer } from './proto-reader';
import { ProtoWriter, varint32Size, writeMessage } from './proto-writer';
import { type TensorMetadata, decodeTensor, tensorFieldSize, writeTensor } from './tensors';
import { type ContentRanges, resolveTensorData } from './typed-contents';
import { WireFormatError } from './wire-format-error';

// inference.ModelInferResponse field tags (1-4 in ./message-head).
const OUTPUTS = (5 << 3) | WIRE_LENGTH_DELIMITED;
const RAW_OUTPUT_CONTENTS = (6 << 3) | WIRE_LENGTH_DELIMITED;

/**
 * Decodes a ModelInfer reply. Raw output contents are views into `bytes`
 * (zero copy, possibly unaligned); typed output contents are converted to raw
 * bytes, so `rawOutputContents` always has one entry per output.
 */
export function decodeModelInferResponse(bytes: Uint8Array): ModelInferResponse {
  const buf = asBuffer(bytes);
  const r = new ProtoReader(buf);
  const state = newResponseState();
  decodeResponseFields(r, state);
  return finishResponse(buf, state);
}

/** A response being decoded; fields from repeated occurrences of the message merge into it. */
export interface ResponseState extends MessageHead {
  outputs: TensorMetadata[];
  contents: (ContentRanges | undefined)[];
  raw: Buffer[];
}

export function newResponseState(): ResponseState {
  return {
    ...newMessageHead(),
    outputs: [],
    contents: [],
    raw: [],
  };
}

/** Decodes fields up to the reader's limit into `s`. */
export function decodeResponseFields(r: ProtoReader, s: ResponseState): void {
  while (r.pos < r.limit) {
    const tag = r.tag();
    switch (tag) {
      case OUTPUTS:
        decodeTensor(r, s.outputs, s.contents);
        break;
      case RAW_OUTPUT_CONTENTS:
        s.raw.push(r.bytes());
        break;
      default:
        if (!readHeadField(r, tag, s)) r.skip(tag);
    }
  }
}

export function finishResponse(buf: Buffer, s: ResponseState): ModelInferResponse {
  return {
    modelName: s.modelName,
    modelVersion: s.modelVersion,
    id: s.id,
    parameters: s.parameters,
    outputs: s.outputs,
    rawOutputContents: resolveTensorData(buf, 'output', s.outputs, s.contents, s.raw),
  };
}

/** Encodes a reply with raw_output_contents only (for servers and tests). */
export function encodeModelInferResponse(msg: ModelInferResponse): Buffer {
  const lengths: number[] = [];
  const size = responseSize(msg, lengths);
  return writeMessage(size, 0, lengths, (w) => writeResponse(w, msg));
}

/** Payload size of a response; records string and submessage lengths for writeResponse. */
export function responseSize(msg: ModelInferResponse, lengths: number[]): number {
  if (msg.rawOutputContents.length !== msg.outputs.length) {
    throw new WireFormatError(
      `response has ${msg.rawOutputContents.length} raw output contents for ${msg.outputs.length} outputs`,
    );
  }
  let size = headSize(msg, lengths);
  for (const output of msg.outputs) size += tensorFieldSize(output, lengths);
  for (const raw of msg.rawOutputContents) size += 1 + varint32Size(raw.length) + raw.length;
  return size;
}

export function writeResponse(w: ProtoWriter, msg: ModelInferResponse): void {
  writeHead(w, msg);
  for (const output of msg.outputs) writeTensor(w, OUTPUTS, output);
  for (const raw of msg.rawOutputContents) {
    w.uint32(RAW_OUTPUT_CONTENTS);
    w.bytes(raw);
  }
}
