/**
 * fast-check generators for ModelInfer messages. Two families:
 * - our in-memory messages (for encoding with our encoder), and
 * - specs of wire messages protobufjs encodes (for decoding with ours), which
 *   may carry typed `contents` and know the raw bytes those must convert to.
 */
import fc from 'fast-check';
import {
  DATATYPES,
  type Datatype,
  type InferInputTensor,
  type InferRequestedOutput,
  type ModelInferRequest,
  type ModelInferResponse,
  type ParameterValue,
  type Parameters,
} from '../../../src/protocol';
import { type ParameterKind, canonicalInteger, canonicalValue } from './protobufjs-reference';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Any Unicode text (astral planes included), often empty. */
export const textArb = fc.string({ unit: 'binary', maxLength: 16 });

// '__proto__' is left out: protobufjs itself mishandles it as a map key (covered by an example test).
const keyArb = fc.oneof(
  textArb.filter((k) => k !== '__proto__'),
  fc.constantFrom('sequence_id', 'priority', 'binary_data', 'constructor', 'toString'),
);

const datatypeArb: fc.Arbitrary<string> = fc.oneof(fc.constantFrom(...DATATYPES), textArb);

const shapeArb = fc.array(fc.oneof(fc.integer({ min: -1, max: 16 }), fc.maxSafeInteger()), {
  maxLength: 5,
});

function recordOf<T>(valueArb: fc.Arbitrary<T>): fc.Arbitrary<Record<string, T>> {
  return fc
    .uniqueArray(fc.tuple(keyArb, valueArb), { selector: (entry) => entry[0], maxLength: 4 })
    .map((entries) => Object.fromEntries(entries));
}

/** Every kind of ParameterValue, including int64/uint64 extremes and doubles with NaN/±0/±∞. */
export const parameterValueArb: fc.Arbitrary<ParameterValue> = fc.oneof(
  fc.boolean(),
  textArb,
  fc.integer({ min: -300, max: 300 }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.bigInt({ min: -1000n, max: 1000n }),
  fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MAX, INT64_MAX + 1n, UINT64_MAX),
);

const parametersArb = recordOf(parameterValueArb);

/**
 * Tensor bytes as a view at a random offset of a larger buffer, as an HTTP
 * body slice would be: unaligned, and sometimes empty.
 */
export const rawBytesArb: fc.Arbitrary<Buffer> = fc
  .tuple(fc.nat({ max: 7 }), fc.uint8Array({ maxLength: 64 }))
  .map(([offset, bytes]) => {
    const backing = Buffer.alloc(offset + bytes.length + 3);
    backing.set(bytes, offset);
    return backing.subarray(offset, offset + bytes.length);
  });

const tensorMetadataArb: fc.Arbitrary<InferInputTensor> = fc.record({
  name: textArb,
  datatype: datatypeArb,
  shape: shapeArb,
  parameters: parametersArb,
});

const requestedOutputArb: fc.Arbitrary<InferRequestedOutput> = fc.record({
  name: textArb,
  parameters: parametersArb,
});

export const requestArb: fc.Arbitrary<ModelInferRequest> = fc
  .record({
    modelName: textArb,
    modelVersion: fc.oneof(fc.constantFrom('', '1'), textArb),
    id: textArb,
    parameters: parametersArb,
    inputs: fc.array(fc.tuple(tensorMetadataArb, rawBytesArb), { maxLength: 4 }),
    outputs: fc.array(requestedOutputArb, { maxLength: 3 }),
  })
  .map(({ inputs, ...rest }) => ({
    ...rest,
    inputs: inputs.map(([tensor]) => tensor),
    rawInputContents: inputs.map(([, raw]) => raw),
  }));

export const responseArb: fc.Arbitrary<ModelInferResponse> = fc
  .record({
    modelName: textArb,
    modelVersion: fc.oneof(fc.constantFrom('', '1'), textArb),
    id: textArb,
    parameters: parametersArb,
    outputs: fc.array(fc.tuple(tensorMetadataArb, rawBytesArb), { maxLength: 4 }),
  })
  .map(({ outputs, ...rest }) => ({
    ...rest,
    outputs: outputs.map(([tensor]) => tensor),
    rawOutputContents: outputs.map(([, raw]) => raw),
  }));

// ---- Specs of messages protobufjs encodes ----

export interface ParameterSpec {
  kind: ParameterKind;
  value: boolean | bigint | string | number;
}

const parameterSpecArb: fc.Arbitrary<ParameterSpec> = fc.oneof(
  fc.boolean().map((value) => ({ kind: 'bool_param' as const, value })),
  fc
    .oneof(fc.bigInt({ min: -1000n, max: 1000n }), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }))
    .map((value) => ({ kind: 'int64_param' as const, value })),
  fc
    .bigInt({ min: 0n, max: UINT64_MAX })
    .map((value) => ({ kind: 'uint64_param' as const, value })),
  textArb.map((value) => ({ kind: 'string_param' as const, value })),
  fc.double().map((value) => ({ kind: 'double_param' as const, value })),
);

/** Typed contents for protobufjs (field name and values) and the raw bytes they stand for. */
export interface TypedData {
  contents?: Record<string, unknown[]>;
  raw: Buffer;
}

function typed<T>(
  field: string,
  values: fc.Arbitrary<T>,
  width: number,
  write: (out: Buffer, value: T, offset: number) => void,
  wire: (value: T) => unknown = (v) => v,
): fc.Arbitrary<TypedData> {
  return fc.array(values, { maxLength: 8 }).chain((vs) =>
    // An empty element list may be sent as an empty contents message or none at all.
    fc.boolean().map((omitWhenEmpty) => {
      const raw = Buffer.alloc(vs.length * width);
      vs.forEach((v, i) => write(raw, v, i * width));
      if (vs.length === 0 && omitWhenEmpty) return { raw };
      return { contents: { [field]: vs.map(wire) }, raw };
    }),
  );
}

const bigString = (v: bigint) => v.toString();

function typedDataArb(datatype: Datatype): fc.Arbitrary<TypedData> {
  switch (datatype) {
    case 'BOOL':
      return typed('bool_contents', fc.boolean(), 1, (o, v, i) => o.writeUInt8(v ? 1 : 0, i));
    case 'INT8':
      return typed('int_contents', fc.integer({ min: -128, max: 127 }), 1, (o, v, i) =>
        o.writeInt8(v, i),
      );
    case 'INT16':
      return typed('int_contents', fc.integer({ min: -32768, max: 32767 }), 2, (o, v, i) =>
        o.writeInt16LE(v, i),
      );
    case 'INT32':
      return typed('int_contents', fc.integer(), 4, (o, v, i) => o.writeInt32LE(v, i));
    case 'INT64':
      return typed(
        'int64_contents',
        fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
        8,
        (o, v, i) => o.writeBigInt64LE(v, i),
        bigString,
      );
    case 'UINT8':
      return typed('uint_contents', fc.integer({ min: 0, max: 255 }), 1, (o, v, i) =>
        o.writeUInt8(v, i),
      );
    case 'UINT16':
      return typed('uint_contents', fc.integer({ min: 0, max: 65535 }), 2, (o, v, i) =>
        o.writeUInt16LE(v, i),
      );
    case 'UINT32':
      return typed('uint_contents', fc.integer({ min: 0, max: 0xffffffff }), 4, (o, v, i) =>
        o.writeUInt32LE(v, i),
      );
    case 'UINT64':
      return typed(
        'uint64_contents',
        fc.bigInt({ min: 0n, max: UINT64_MAX }),
        8,
        (o, v, i) => o.writeBigUInt64LE(v, i),
        bigString,
      );
    case 'FP32':
      return typed('fp32_contents', fc.float({ noNaN: true }), 4, (o, v, i) =>
        o.writeFloatLE(v, i),
      );
    case 'FP64':
      return typed('fp64_contents', fc.double({ noNaN: true }), 8, (o, v, i) =>
        o.writeDoubleLE(v, i),
      );
    case 'BYTES':
      return fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 5 }).map((vs) => ({
        contents: { bytes_contents: vs.map((v) => Buffer.from(v)) },
        raw: Buffer.concat(
          vs.flatMap((v) => {
            const len = Buffer.alloc(4);
            len.writeUInt32LE(v.length);
            return [len, Buffer.from(v)];
          }),
        ),
      }));
    default:
      // FP16 and BF16 have no typed field; such tensors carry no contents.
      return fc.constant({ raw: Buffer.alloc(0) });
  }
}

export interface TensorSpec {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Record<string, ParameterSpec>;
  data: TypedData;
}

/** Tensors whose data travels raw (any datatype string) or typed (a real datatype). */
function tensorSpecsArb(mode: 'raw' | 'typed'): fc.Arbitrary<TensorSpec[]> {
  const dataArb =
    mode === 'raw'
      ? fc.tuple(
          datatypeArb,
          rawBytesArb.map((raw): TypedData => ({ raw })),
        )
      : fc.constantFrom(...DATATYPES).chain((dt) => fc.tuple(fc.constant(dt), typedDataArb(dt)));
  return fc.array(
    fc
      .record({
        name: textArb,
        shape: shapeArb,
        parameters: recordOf(parameterSpecArb),
        typedData: dataArb,
      })
      .map(({ typedData: [datatype, data], ...rest }) => ({ ...rest, datatype, data })),
    { maxLength: 4 },
  );
}

export interface MessageSpec {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, ParameterSpec>;
  mode: 'raw' | 'typed';
  tensors: TensorSpec[];
  requestedOutputs: { name: string; parameters: Record<string, ParameterSpec> }[];
}

export const messageSpecArb: fc.Arbitrary<MessageSpec> = fc
  .constantFrom<'raw' | 'typed'>('raw', 'typed')
  .chain((mode) =>
    fc.record({
      model_name: textArb,
      model_version: textArb,
      id: textArb,
      parameters: recordOf(parameterSpecArb),
      mode: fc.constant(mode),
      tensors: tensorSpecsArb(mode),
      requestedOutputs: fc.array(
        fc.record({ name: textArb, parameters: recordOf(parameterSpecArb) }),
        { maxLength: 3 },
      ),
    }),
  );

function parameterObject(params: Record<string, ParameterSpec>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(params).map(([k, p]) => [
      k,
      { [p.kind]: typeof p.value === 'bigint' ? p.value.toString() : p.value },
    ]),
  );
}

function tensorObject(t: TensorSpec): Record<string, unknown> {
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape.map((d) => String(d)),
    parameters: parameterObject(t.parameters),
    ...(t.data.contents === undefined ? {} : { contents: t.data.contents }),
  };
}

/** The spec as a protobufjs `fromObject` input for ModelInferResponse. */
export function responseObject(spec: MessageSpec): Record<string, unknown> {
  return {
    model_name: spec.model_name,
    model_version: spec.model_version,
    id: spec.id,
    parameters: parameterObject(spec.parameters),
    outputs: spec.tensors.map(tensorObject),
    raw_output_contents: spec.mode === 'raw' ? spec.tensors.map((t) => t.data.raw) : [],
  };
}

/** The spec as a protobufjs `fromObject` input for ModelInferRequest. */
export function requestObject(spec: MessageSpec): Record<string, unknown> {
  return {
    model_name: spec.model_name,
    model_version: spec.model_version,
    id: spec.id,
    parameters: parameterObject(spec.parameters),
    inputs: spec.tensors.map(tensorObject),
    outputs: spec.requestedOutputs.map((o) => ({
      name: o.name,
      parameters: parameterObject(o.parameters),
    })),
    raw_input_contents: spec.mode === 'raw' ? spec.tensors.map((t) => t.data.raw) : [],
  };
}

// ---- What our decoder must return for a spec ----

function expectedValues(params: Record<string, ParameterSpec>): Parameters {
  return Object.fromEntries(Object.entries(params).map(([k, p]) => [k, canonicalValue(p.value)]));
}

function expectedTensor(t: TensorSpec): InferInputTensor {
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape.map((d) => canonicalInteger(d) as number),
    parameters: expectedValues(t.parameters),
  };
}

export function expectedResponse(spec: MessageSpec): ModelInferResponse {
  return {
    modelName: spec.model_name,
    modelVersion: spec.model_version,
    id: spec.id,
    parameters: expectedValues(spec.parameters),
    outputs: spec.tensors.map(expectedTensor),
    rawOutputContents: spec.tensors.map((t) => t.data.raw),
  };
}

export function expectedRequest(spec: MessageSpec): ModelInferRequest {
  return {
    modelName: spec.model_name,
    modelVersion: spec.model_version,
    id: spec.id,
    parameters: expectedValues(spec.parameters),
    inputs: spec.tensors.map(expectedTensor),
    outputs: spec.requestedOutputs.map((o) => ({
      name: o.name,
      parameters: expectedValues(o.parameters),
    })),
    rawInputContents: spec.tensors.map((t) => t.data.raw),
  };
}
