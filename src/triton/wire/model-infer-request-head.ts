import type { Parameters } from '../../protocol';
import { decodeParameterEntry } from './parameters';
import { ProtoReader, WIRE_LENGTH_DELIMITED, asBuffer } from './proto-reader';

// inference.ModelInferRequest field tags the proxy reads; every other field is skipped.
const MODEL_NAME = (1 << 3) | WIRE_LENGTH_DELIMITED;
const MODEL_VERSION = (2 << 3) | WIRE_LENGTH_DELIMITED;
const ID = (3 << 3) | WIRE_LENGTH_DELIMITED;
const PARAMETERS = (4 << 3) | WIRE_LENGTH_DELIMITED;

/** What routing, admission and deadlines need from a ModelInferRequest. */
export interface ModelInferRequestHead {
  modelName: string;
  modelVersion: string;
  id: string;
  /** Request-level parameters (sequence_id, sequence_start, sequence_end, priority, timeout, ...). */
  parameters: Parameters;
}

/**
 * Reads the name, version, id and request parameters of an encoded
 * ModelInferRequest without decoding tensors: inputs, outputs and raw
 * contents are skipped by their length prefix (O(1) each), so a request is
 * routed on its original bytes, which are then forwarded as they are.
 * Malformed bytes throw a WireFormatError.
 */
export function readModelInferRequestHead(bytes: Uint8Array): ModelInferRequestHead {
  const r = new ProtoReader(asBuffer(bytes));
  let modelName = '';
  let modelVersion = '';
  let id = '';
  const parameters: Parameters = {};
  while (r.pos < r.limit) {
    const tag = r.tag();
    switch (tag) {
      case MODEL_NAME:
        modelName = r.string();
        break;
      case MODEL_VERSION:
        modelVersion = r.string();
        break;
      case ID:
        id = r.string();
        break;
      case PARAMETERS:
        decodeParameterEntry(r, parameters);
        break;
      default:
        r.skip(tag);
    }
  }
  return { modelName, modelVersion, id, parameters };
}
