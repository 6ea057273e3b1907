import type { Parameters } from '../../protocol';
import { decodeParameterEntry, parametersSize, writeParameters } from './parameters';
import { type ProtoReader, WIRE_LENGTH_DELIMITED } from './proto-reader';
import { type ProtoWriter, stringSize, writeStringField } from './proto-writer';

// ModelInferRequest and ModelInferResponse (inference.proto) number their
// first four fields alike: model_name 1, model_version 2, id 3, parameters 4.
const MODEL_NAME = (1 << 3) | WIRE_LENGTH_DELIMITED;
const MODEL_VERSION = (2 << 3) | WIRE_LENGTH_DELIMITED;
const ID = (3 << 3) | WIRE_LENGTH_DELIMITED;
const PARAMETERS = (4 << 3) | WIRE_LENGTH_DELIMITED;

/** The fields a ModelInfer request and response share. */
export interface MessageHead {
  modelName: string;
  modelVersion: string;
  id: string;
  /** Message-level parameters (sequence_id, sequence_start, priority, timeout, ...). */
  parameters: Parameters;
}

export function newMessageHead(): MessageHead {
  return { modelName: '', modelVersion: '', id: '', parameters: {} };
}

/** Reads the field `tag` into `head` when it is one of the shared ones; false for any other field. */
export function readHeadField(r: ProtoReader, tag: number, head: MessageHead): boolean {
  switch (tag) {
    case MODEL_NAME:
      head.modelName = r.string();
      return true;
    case MODEL_VERSION:
      head.modelVersion = r.string();
      return true;
    case ID:
      head.id = r.string();
      return true;
    case PARAMETERS:
      decodeParameterEntry(r, head.parameters);
      return true;
    default:
      return false;
  }
}

/** Encoded size of the shared fields; records string and submessage lengths for writeHead. */
export function headSize(head: MessageHead, lengths: number[]): number {
  let size = 0;
  if (head.modelName.length > 0) size += 1 + stringSize(head.modelName, lengths);
  if (head.modelVersion.length > 0) size += 1 + stringSize(head.modelVersion, lengths);
  if (head.id.length > 0) size += 1 + stringSize(head.id, lengths);
  return size + parametersSize(head.parameters, lengths);
}

/** Writes the shared fields, in field order, with the lengths headSize recorded. */
export function writeHead(w: ProtoWriter, head: MessageHead): void {
  writeStringField(w, MODEL_NAME, head.modelName);
  writeStringField(w, MODEL_VERSION, head.modelVersion);
  writeStringField(w, ID, head.id);
  writeParameters(w, PARAMETERS, head.parameters);
}
