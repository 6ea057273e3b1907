import type { ModelInferResponse } from '../../protocol';
import { ProtoReader, WIRE_LENGTH_DELIMITED, asBuffer } from './proto-reader';
import { stringSize, varint32Size, writeMessage } from './proto-writer';
import {
  type ResponseState,
  decodeResponseFields,
  finishResponse,
  newResponseState,
  responseSize,
  writeResponse,
} from './model-infer-response';

/** inference.ModelStreamInferResponse: one message on a ModelStreamInfer stream. */
export interface ModelStreamInferResponse {
  /** Non-empty when this message reports a failed request instead of a response. */
  errorMessage: string;
  response?: ModelInferResponse;
}

const ERROR_MESSAGE = (1 << 3) | WIRE_LENGTH_DELIMITED;
const INFER_RESPONSE = (2 << 3) | WIRE_LENGTH_DELIMITED;

export function decodeModelStreamInferResponse(bytes: Uint8Array): ModelStreamInferResponse {
  const buf = asBuffer(bytes);
  const r = new ProtoReader(buf);
  let errorMessage = '';
  let state: ResponseState | undefined;
  while (r.pos < r.limit) {
    const tag = r.tag();
    if (tag === ERROR_MESSAGE) {
      errorMessage = r.string();
    } else if (tag === INFER_RESPONSE) {
      // Repeated occurrences of a message field merge into one message.
      state ??= newResponseState();
      const outer = r.enter();
      decodeResponseFields(r, state);
      r.leave(outer);
    } else {
      r.skip(tag);
    }
  }
  if (state === undefined) return { errorMessage };
  return { errorMessage, response: finishResponse(buf, state) };
}

/** Encodes a stream message (for servers and tests); the response carries raw contents only. */
export function encodeModelStreamInferResponse(msg: ModelStreamInferResponse): Buffer {
  const lengths: number[] = [];
  let size = 0;
  if (msg.errorMessage.length > 0) size += 1 + stringSize(msg.errorMessage, lengths);
  const response = msg.response;
  if (response !== undefined) {
    const slot = lengths.length;
    lengths.push(0);
    const responseBytes = responseSize(response, lengths);
    lengths[slot] = responseBytes;
    size += 1 + varint32Size(responseBytes) + responseBytes;
  }
  return writeMessage(size, 0, lengths, (w) => {
    if (msg.errorMessage.length > 0) {
      w.uint32(ERROR_MESSAGE);
      w.string(msg.errorMessage);
    }
    if (response !== undefined) {
      w.uint32(INFER_RESPONSE);
      w.lengthPrefix();
      writeResponse(w, response);
    }
  });
}
