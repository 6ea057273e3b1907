import type { ModelInferRequest } from '../protocol';
import { GRPC_FRAME_HEADER_BYTES, WireFormatError, encodeModelInferRequestFrame } from './wire';

// inference.ModelInferRequest.raw_input_contents: field 7, length-delimited.
const RAW_INPUT_CONTENTS_TAG = (7 << 3) | 2;
const EMPTY = Buffer.alloc(0);
const MAX_MESSAGE_BYTES = 0xffffffff;

/**
 * Tensor bytes at or above this size are written to the HTTP/2 stream as they
 * are (views into the HTTP request body) instead of being copied into the
 * frame. Below it one contiguous frame is cheaper than a vectored write.
 */
export const SCATTER_MIN_TENSOR_BYTES = 64 * 1024;

/**
 * A ModelInferRequest as a gRPC length-prefixed message in pieces whose
 * concatenation is exactly encodeModelInferRequestFrame(msg): for large
 * tensors the metadata is encoded once and every raw input is passed through
 * by reference, so the tensor bytes are not copied at all on their way from
 * the HTTP body to the socket.
 */
export function encodeModelInferRequestFrameParts(
  msg: ModelInferRequest,
  scatterMinTensorBytes = SCATTER_MIN_TENSOR_BYTES,
): Buffer[] {
  let tensorBytes = 0;
  for (const raw of msg.rawInputContents) tensorBytes += raw.length;
  if (tensorBytes < scatterMinTensorBytes || msg.rawInputContents.length === 0) {
    return [encodeModelInferRequestFrame(msg)];
  }

  const n = msg.rawInputContents.length;
  // raw_input_contents are the last fields the encoder writes, one per input,
  // empty ones included: with empty contents each is exactly [tag, 0].
  const head = encodeModelInferRequestFrame({
    ...msg,
    rawInputContents: msg.rawInputContents.map(() => EMPTY),
  });
  const metaEnd = head.length - 2 * n;
  for (let i = metaEnd; i < head.length; i += 2) {
    if (head[i] !== RAW_INPUT_CONTENTS_TAG || head[i + 1] !== 0) {
      throw new WireFormatError(
        'raw_input_contents are not the last fields of the encoded request',
      );
    }
  }
  let size = metaEnd - GRPC_FRAME_HEADER_BYTES;
  const prefixes = msg.rawInputContents.map((raw) => {
    const prefix = fieldPrefix(raw.length);
    size += prefix.length + raw.length;
    return prefix;
  });
  if (size > MAX_MESSAGE_BYTES) {
    throw new WireFormatError(`message of ${size} bytes exceeds gRPC's 4 GiB message limit`);
  }
  head.writeUInt32BE(size, 1);
  const parts: Buffer[] = [head.subarray(0, metaEnd)];
  for (let i = 0; i < n; i++) {
    parts.push(prefixes[i]!);
    if (msg.rawInputContents[i]!.length > 0) parts.push(msg.rawInputContents[i]!);
  }
  return parts;
}

function fieldPrefix(length: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  out[0] = RAW_INPUT_CONTENTS_TAG;
  let pos = 1;
  let value = length;
  while (value > 0x7f) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return out.subarray(0, pos);
}
