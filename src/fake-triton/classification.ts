import type { Datatype } from '../protocol';
import { encodeBytesElements, type Tensor } from './tensor';
import { invalidArgument, type TritonError } from './triton-error';
import type { WireInferParameter } from './wire';

/**
 * The `classification` parameter of a requested output
 * (server src/grpc/grpc_utils.cc, ParseClassificationParams): the number of
 * top classes, or an error when it is not a positive int64_param.
 */
export function classificationCount(
  param: WireInferParameter | undefined,
): number | TritonError | undefined {
  if (param === undefined) return undefined;
  if (param.parameter_choice !== 'int64_param') {
    return invalidArgument(
      "invalid value type for 'classification' parameter, expected int64_param",
    );
  }
  const count = Number(param.int64_param);
  if (count <= 0) {
    return invalidArgument("invalid value for 'classification' parameter, expected >= 0");
  }
  return count;
}

type Reader = (data: Buffer, index: number) => number | bigint;

const READERS: Partial<Record<Datatype, { width: number; read: Reader }>> = {
  UINT8: { width: 1, read: (d, i) => d.readUInt8(i) },
  UINT16: { width: 2, read: (d, i) => d.readUInt16LE(i * 2) },
  UINT32: { width: 4, read: (d, i) => d.readUInt32LE(i * 4) },
  UINT64: { width: 8, read: (d, i) => d.readBigUInt64LE(i * 8) },
  INT8: { width: 1, read: (d, i) => d.readInt8(i) },
  INT16: { width: 2, read: (d, i) => d.readInt16LE(i * 2) },
  INT32: { width: 4, read: (d, i) => d.readInt32LE(i * 4) },
  INT64: { width: 8, read: (d, i) => d.readBigInt64LE(i * 8) },
  FP32: { width: 4, read: (d, i) => d.readFloatLE(i * 4) },
  FP64: { width: 8, read: (d, i) => d.readDoubleLE(i * 8) },
};

/**
 * Replaces an output by its top-k classes as Triton's gRPC frontend does
 * (server src/classification.cc and grpc/infer_handler.h): a BYTES tensor of
 * "value:index" strings per batch entry, values printed like C++ std::to_string.
 */
export function classify(tensor: Tensor, count: number, batched: boolean): Tensor | TritonError {
  const reader = READERS[tensor.datatype];
  if (reader === undefined) {
    return invalidArgument(
      `class result not available for output due to unsupported type '${tensor.datatype}'`,
    );
  }
  const batchSize = batched && tensor.shape.length > 0 ? tensor.shape[0]! : 0;
  const perEntry = tensor.shape.slice(batchSize === 0 ? 0 : 1).reduce((n, d) => n * d, 1);
  const classes: string[] = [];
  for (let entry = 0; entry < Math.max(1, batchSize); entry++) {
    const base = entry * perEntry;
    const values: Array<{ value: number | bigint; index: number }> = [];
    for (let i = 0; i < perEntry && (base + i + 1) * reader.width <= tensor.data.length; i++) {
      values.push({ value: reader.read(tensor.data, base + i), index: i });
    }
    values.sort((a, b) => (a.value > b.value ? -1 : a.value < b.value ? 1 : a.index - b.index));
    for (const { value, index } of values.slice(0, count)) {
      classes.push(`${formatClassValue(value, tensor.datatype)}:${index}`);
    }
  }
  const k = Math.min(count, perEntry);
  return {
    datatype: 'BYTES',
    shape: batchSize > 0 ? [batchSize, k] : [k],
    data: encodeBytesElements(classes),
  };
}

// std::to_string prints floating-point values with six decimals ("%f").
function formatClassValue(value: number | bigint, datatype: Datatype): string {
  if ((datatype === 'FP32' || datatype === 'FP64') && typeof value === 'number') {
    return value.toFixed(6);
  }
  return String(value);
}
