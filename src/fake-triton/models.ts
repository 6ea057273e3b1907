import { DATATYPES, elementCount, type Datatype } from '../protocol';
import type { Tensor, TensorMap } from './tensor';

/** A model input or output as its config declares it (dims exclude the batch dimension). */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable dimension. */
  dims: number[];
  /** Inputs only: the request may leave it out. */
  optional?: boolean;
}

interface ModelDefinitionBase {
  name: string;
  /** Versions in the repository; default ['1']. */
  versions?: string[];
  /** Config `platform` (e.g. onnxruntime_onnx); metadata reports it, or the backend when empty. */
  platform?: string;
  /** Config `backend` (e.g. onnxruntime, python, identity). */
  backend?: string;
  /** 0: no Triton batching, shapes are exactly `dims`; > 0: a batch dimension up to this size is prepended. */
  maxBatchSize: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Whether the model starts loaded (READY); default true. False: in the repository but never loaded. */
  loaded?: boolean;
  /** Time a RepositoryModelLoad of this model takes; default 0. */
  loadDelayMs?: number;
  /** When set, loading fails and the versions become UNAVAILABLE with this reason. */
  loadFailure?: string;
}

/** A model that answers each request with exactly one response. */
export interface SingleResponseModel extends ModelDefinitionBase {
  decoupled?: false;
  /** Computes every output from validated inputs; the fake keeps only the requested ones. */
  compute(inputs: TensorMap): TensorMap;
}

/** A decoupled model: any number of responses per request, only over ModelStreamInfer. */
export interface DecoupledModel extends ModelDefinitionBase {
  decoupled: true;
  respond(inputs: TensorMap): TensorMap[];
  /** Milliseconds between consecutive responses of one request; default 0. */
  intervalMs?: number;
}

export type ModelDefinition = SingleResponseModel | DecoupledModel;

/**
 * Like Triton's `simple` example: OUTPUT0 = INPUT0 + INPUT1 and
 * OUTPUT1 = INPUT0 - INPUT1 over INT32 [batch, 16], with int32 wraparound.
 */
export function simpleModel(overrides: Partial<SingleResponseModel> = {}): SingleResponseModel {
  return {
    name: 'simple',
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    maxBatchSize: 8,
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', dims: [16] },
      { name: 'INPUT1', datatype: 'INT32', dims: [16] },
    ],
    outputs: [
      { name: 'OUTPUT0', datatype: 'INT32', dims: [16] },
      { name: 'OUTPUT1', datatype: 'INT32', dims: [16] },
    ],
    compute: addSub,
    ...overrides,
  };
}

function addSub(inputs: TensorMap): TensorMap {
  const a = inputs.get('INPUT0')!;
  const b = inputs.get('INPUT1')!;
  const count = a.data.length >>> 2;
  const sum = Buffer.allocUnsafe(count * 4);
  const diff = Buffer.allocUnsafe(count * 4);
  // Buffer readers, not Int32Array views: received buffers need not be 4-byte aligned.
  for (let offset = 0; offset < count * 4; offset += 4) {
    const x = a.data.readInt32LE(offset);
    const y = b.data.readInt32LE(offset);
    sum.writeInt32LE((x + y) | 0, offset);
    diff.writeInt32LE((x - y) | 0, offset);
  }
  return new Map<string, Tensor>([
    ['OUTPUT0', { datatype: 'INT32', shape: a.shape, data: sum }],
    ['OUTPUT1', { datatype: 'INT32', shape: a.shape, data: diff }],
  ]);
}

/** Lower-case model name for a datatype: identity_fp32, identity_bytes, ... */
export function identityModelName(datatype: Datatype): string {
  return `identity_${datatype.toLowerCase()}`;
}

/**
 * OUTPUT0 is INPUT0 unchanged (same buffer, same shape) for any 2-D shape,
 * like Triton's identity backend with dims [-1, -1] and no batching.
 */
export function identityModel(
  datatype: Datatype,
  overrides: Partial<SingleResponseModel> = {},
): SingleResponseModel {
  return {
    name: identityModelName(datatype),
    backend: 'identity',
    maxBatchSize: 0,
    inputs: [{ name: 'INPUT0', datatype, dims: [-1, -1] }],
    outputs: [{ name: 'OUTPUT0', datatype, dims: [-1, -1] }],
    compute: (inputs) => new Map([['OUTPUT0', inputs.get('INPUT0')!]]),
    ...overrides,
  };
}

/**
 * A decoupled model in the spirit of Triton's `repeat_int32`: one response
 * per element of IN (INT32 [-1]), each with OUT = that element and IDX its
 * position (UINT32), both shaped [1].
 */
export function repeatModel(overrides: Partial<DecoupledModel> = {}): DecoupledModel {
  return {
    name: 'repeat',
    backend: 'repeat',
    maxBatchSize: 0,
    decoupled: true,
    inputs: [{ name: 'IN', datatype: 'INT32', dims: [-1] }],
    outputs: [
      { name: 'OUT', datatype: 'INT32', dims: [1] },
      { name: 'IDX', datatype: 'UINT32', dims: [1] },
    ],
    respond: repeatElements,
    ...overrides,
  };
}

function repeatElements(inputs: TensorMap): TensorMap[] {
  const input = inputs.get('IN')!;
  const responses: TensorMap[] = [];
  const count = elementCount(input.shape);
  for (let i = 0; i < count; i++) {
    const index = Buffer.allocUnsafe(4);
    index.writeUInt32LE(i, 0);
    responses.push(
      new Map<string, Tensor>([
        ['OUT', { datatype: 'INT32', shape: [1], data: input.data.subarray(i * 4, i * 4 + 4) }],
        ['IDX', { datatype: 'UINT32', shape: [1], data: index }],
      ]),
    );
  }
  return responses;
}

/**
 * A decoupled text model like an LLM backend's token stream: one response
 * per word of `text_input` (BYTES [1]), each with `text_output` (the word)
 * and `index` (INT32), spaced by `intervalMs` (default 150 ms). For the
 * demo and the generate_stream examples.
 */
export function textStreamModel(overrides: Partial<DecoupledModel> = {}): DecoupledModel {
  return {
    name: 'text_stream',
    backend: 'python',
    maxBatchSize: 0,
    decoupled: true,
    intervalMs: 150,
    inputs: [{ name: 'text_input', datatype: 'BYTES', dims: [1] }],
    outputs: [
      { name: 'text_output', datatype: 'BYTES', dims: [1] },
      { name: 'index', datatype: 'INT32', dims: [1] },
    ],
    respond: (inputs) => {
      const raw = inputs.get('text_input')!.data;
      const text = raw.toString('utf8', 4, 4 + raw.readUInt32LE(0));
      return text
        .split(/\s+/)
        .filter((w) => w !== '')
        .map((word, i) => {
          const bytes = Buffer.from(word, 'utf8');
          const element = Buffer.alloc(4 + bytes.length);
          element.writeUInt32LE(bytes.length, 0);
          bytes.copy(element, 4);
          const index = Buffer.alloc(4);
          index.writeInt32LE(i, 0);
          return new Map<string, Tensor>([
            ['text_output', { datatype: 'BYTES', shape: [1], data: element }],
            ['index', { datatype: 'INT32', shape: [1], data: index }],
          ]);
        });
    },
    ...overrides,
  };
}

/**
 * The repository a fake starts with unless told otherwise: `simple`,
 * `identity` (FP32), one `identity_<datatype>` per datatype, and `repeat`.
 */
export function defaultModels(): ModelDefinition[] {
  return [
    simpleModel(),
    identityModel('FP32', { name: 'identity' }),
    ...DATATYPES.map((datatype) => identityModel(datatype)),
    repeatModel(),
  ];
}
