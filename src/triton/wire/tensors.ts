import type { InferInputTensor, InferRequestedOutput, Parameters } from '../../protocol';
import { int64FromBits } from './long-bits';
import { decodeParameterEntry, parametersSize, writeParameters } from './parameters';
import { ProtoReader, WIRE_LENGTH_DELIMITED, WIRE_VARINT } from './proto-reader';
import { ProtoWriter, int64Size, stringSize, varint32Size } from './proto-writer';
import type { ContentRanges } from './typed-contents';
import { WireFormatError, quoteName } from './wire-format-error';

/**
 * InferInputTensor and InferOutputTensor share one layout: name = 1,
 * datatype = 2, shape = 3 (packed int64), parameters = 4, contents = 5.
 * InferRequestedOutputTensor is name = 1, parameters = 2.
 */

/** The tensor metadata both directions share (InferInputTensor and InferOutputTensor). */
export type TensorMetadata = InferInputTensor;

const NAME = (1 << 3) | WIRE_LENGTH_DELIMITED;
const DATATYPE = (2 << 3) | WIRE_LENGTH_DELIMITED;
const SHAPE_PACKED = (3 << 3) | WIRE_LENGTH_DELIMITED;
const SHAPE_UNPACKED = (3 << 3) | WIRE_VARINT;
const TENSOR_PARAMETERS = (4 << 3) | WIRE_LENGTH_DELIMITED;
const CONTENTS = (5 << 3) | WIRE_LENGTH_DELIMITED;
const REQUESTED_OUTPUT_PARAMETERS = (2 << 3) | WIRE_LENGTH_DELIMITED;

/** Size of one tensor field including its one-byte tag and length prefix. */
export function tensorFieldSize(tensor: TensorMetadata, lengths: number[]): number {
  const slot = lengths.length;
  lengths.push(0);
  let size = 0;
  if (tensor.name.length > 0) size += 1 + stringSize(tensor.name, lengths);
  if (tensor.datatype.length > 0) size += 1 + stringSize(tensor.datatype, lengths);
  const shape = tensor.shape;
  if (shape.length > 0) {
    let packed = 0;
    for (const dim of shape) {
      if (!Number.isSafeInteger(dim)) {
        throw new WireFormatError(
          `tensor ${quoteName(tensor.name)} has invalid shape dimension ${dim}`,
        );
      }
      packed += int64Size(dim);
    }
    lengths.push(packed);
    size += 1 + varint32Size(packed) + packed;
  }
  size += parametersSize(tensor.parameters, lengths);
  lengths[slot] = size;
  return 1 + varint32Size(size) + size;
}

export function writeTensor(w: ProtoWriter, fieldTag: number, tensor: TensorMetadata): void {
  w.uint32(fieldTag);
  w.lengthPrefix();
  if (tensor.name.length > 0) {
    w.uint32(NAME);
    w.string(tensor.name);
  }
  if (tensor.datatype.length > 0) {
    w.uint32(DATATYPE);
    w.string(tensor.datatype);
  }
  if (tensor.shape.length > 0) {
    w.uint32(SHAPE_PACKED);
    w.lengthPrefix();
    for (const dim of tensor.shape) w.int64(dim);
  }
  writeParameters(w, TENSOR_PARAMETERS, tensor.parameters);
}

/**
 * Decodes one tensor into `tensors`, and where its typed `contents` are into
 * `contents` (undefined when absent); they are converted once the whole
 * message is known, because raw contents elsewhere in it take precedence.
 */
export function decodeTensor(
  r: ProtoReader,
  tensors: TensorMetadata[],
  contents: (ContentRanges | undefined)[],
): void {
  const outer = r.enter();
  let name = '';
  let datatype = '';
  const shape: number[] = [];
  const parameters: Parameters = {};
  let ranges: ContentRanges | undefined;
  while (r.pos < r.limit) {
    const tag = r.tag();
    switch (tag) {
      case NAME:
        name = r.string();
        break;
      case DATATYPE:
        datatype = r.string();
        break;
      case SHAPE_PACKED: {
        const shapeOuter = r.enter();
        while (r.pos < r.limit) shape.push(readDim(r));
        r.leave(shapeOuter);
        break;
      }
      case SHAPE_UNPACKED:
        shape.push(readDim(r));
        break;
      case TENSOR_PARAMETERS:
        decodeParameterEntry(r, parameters);
        break;
      case CONTENTS: {
        // A repeated occurrence of a message field merges, so keep every range.
        const len = r.length();
        ranges ??= [];
        ranges.push(r.pos, r.pos + len);
        r.pos += len;
        break;
      }
      default:
        r.skip(tag);
    }
  }
  r.leave(outer);
  tensors.push({ name, datatype, shape, parameters });
  contents.push(ranges);
}

function readDim(r: ProtoReader): number {
  r.varint64();
  const dim = int64FromBits(r.lo, r.hi);
  if (typeof dim === 'bigint') {
    throw new WireFormatError(`shape dimension ${dim} is outside the safe integer range`);
  }
  return dim;
}

export function requestedOutputFieldSize(output: InferRequestedOutput, lengths: number[]): number {
  const slot = lengths.length;
  lengths.push(0);
  let size = 0;
  if (output.name.length > 0) size += 1 + stringSize(output.name, lengths);
  size += parametersSize(output.parameters, lengths);
  lengths[slot] = size;
  return 1 + varint32Size(size) + size;
}

export function writeRequestedOutput(
  w: ProtoWriter,
  fieldTag: number,
  output: InferRequestedOutput,
): void {
  w.uint32(fieldTag);
  w.lengthPrefix();
  if (output.name.length > 0) {
    w.uint32(NAME);
    w.string(output.name);
  }
  writeParameters(w, REQUESTED_OUTPUT_PARAMETERS, output.parameters);
}

export function decodeRequestedOutput(r: ProtoReader, outputs: InferRequestedOutput[]): void {
  const outer = r.enter();
  let name = '';
  const parameters: Parameters = {};
  while (r.pos < r.limit) {
    const tag = r.tag();
    if (tag === NAME) name = r.string();
    else if (tag === REQUESTED_OUTPUT_PARAMETERS) decodeParameterEntry(r, parameters);
    else r.skip(tag);
  }
  r.leave(outer);
  outputs.push({ name, parameters });
}
