import type { InferRequestedOutput, ModelInferRequest } from '../../protocol';
import { headSize, newMessageHead, readHeadField, writeHead } from './message-head';
import { ProtoReader, WIRE_LENGTH_DELIMITED, asBuffer } from './proto-reader';
import { ProtoWriter, varint32Size, writeMessage } from './proto-writer';
import {
  type TensorMetadata,
  decodeRequestedOutput,
  decodeTensor,
  requestedOutputFieldSize,
  tensorFieldSize,
  writeRequestedOutput,
  writeTensor,
} from './tensors';
import { type ContentRanges, resolveTensorData } from './typed-contents';
import { WireFormatError } from './wire-format-error';

// inference.ModelInferRequest field tags (1-4 in ./message-head).
const INPUTS = (5 << 3) | WIRE_LENGTH_DELIMITED;
const OUTPUTS = (6 << 3) | WIRE_LENGTH_DELIMITED;
const RAW_INPUT_CONTENTS = (7 << 3) | WIRE_LENGTH_DELIMITED;

/** gRPC's length-prefixed message header: a compressed flag and a big-endian uint32 length. */
export const GRPC_FRAME_HEADER_BYTES = 5;

/**
 * Encodes a request with raw_input_contents only, in one buffer of the exact
 * size; each tensor's bytes are copied into it once.
 */
export function encodeModelInferRequest(msg: ModelInferRequest): Buffer {
  return encodeRequest(msg, 0);
}

/**
 * The same bytes behind an uncompressed gRPC message header, for a caller
 * that writes frames to an HTTP/2 stream itself and so saves the copy a
 * framing library would make.
 */
export function encodeModelInferRequestFrame(msg: ModelInferRequest): Buffer {
  const frame = encodeRequest(msg, GRPC_FRAME_HEADER_BYTES);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - GRPC_FRAME_HEADER_BYTES, 1);
  return frame;
}

function encodeRequest(msg: ModelInferRequest, prefix: number): Buffer {
  if (msg.rawInputContents.length !== msg.inputs.length) {
    throw new WireFormatError(
      `request has ${msg.rawInputContents.length} raw input contents for ${msg.inputs.length} inputs`,
    );
  }
  const lengths: number[] = [];
  let size = headSize(msg, lengths);
  for (const input of msg.inputs) size += tensorFieldSize(input, lengths);
  for (const output of msg.outputs) size += requestedOutputFieldSize(output, lengths);
  for (const raw of msg.rawInputContents) size += 1 + varint32Size(raw.length) + raw.length;
  return writeMessage(size, prefix, lengths, (w) => writeRequest(w, msg));
}

function writeRequest(w: ProtoWriter, msg: ModelInferRequest): void {
  writeHead(w, msg);
  for (const input of msg.inputs) writeTensor(w, INPUTS, input);
  for (const output of msg.outputs) writeRequestedOutput(w, OUTPUTS, output);
  // Every entry is written, empty ones too: position pairs it with its input.
  for (const raw of msg.rawInputContents) {
    w.uint32(RAW_INPUT_CONTENTS);
    w.bytes(raw);
  }
}

/**
 * Decodes a request (the server side of ModelInfer). Raw input contents are
 * views into `bytes`; typed input contents are converted to raw bytes.
 */
export function decodeModelInferRequest(bytes: Uint8Array): ModelInferRequest {
  const buf = asBuffer(bytes);
  const r = new ProtoReader(buf);
  const head = newMessageHead();
  const inputs: TensorMetadata[] = [];
  const contents: (ContentRanges | undefined)[] = [];
  const outputs: InferRequestedOutput[] = [];
  const raw: Buffer[] = [];
  while (r.pos < r.limit) {
    const tag = r.tag();
    switch (tag) {
      case INPUTS:
        decodeTensor(r, inputs, contents);
        break;
      case OUTPUTS:
        decodeRequestedOutput(r, outputs);
        break;
      case RAW_INPUT_CONTENTS:
        raw.push(r.bytes());
        break;
      default:
        if (!readHeadField(r, tag, head)) r.skip(tag);
    }
  }
  const rawInputContents = resolveTensorData(buf, 'input', inputs, contents, raw);
  return { ...head, inputs, outputs, rawInputContents };
}
