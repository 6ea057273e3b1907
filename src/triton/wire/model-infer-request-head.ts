import { type MessageHead, newMessageHead, readHeadField } from './message-head';
import { ProtoReader, asBuffer } from './proto-reader';

/** What routing, admission and deadlines need from a ModelInferRequest. */
export type ModelInferRequestHead = MessageHead;

/**
 * Reads the name, version, id and request parameters of an encoded
 * ModelInferRequest without decoding tensors: inputs, outputs and raw
 * contents are skipped by their length prefix (O(1) each), so a request is
 * routed on its original bytes, which are then forwarded as they are.
 * Malformed bytes throw a WireFormatError.
 */
export function readModelInferRequestHead(bytes: Uint8Array): ModelInferRequestHead {
  const r = new ProtoReader(asBuffer(bytes));
  const head = newMessageHead();
  while (r.pos < r.limit) {
    const tag = r.tag();
    if (!readHeadField(r, tag, head)) r.skip(tag);
  }
  return head;
}
