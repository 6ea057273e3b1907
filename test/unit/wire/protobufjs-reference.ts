/**
 * protobufjs as the reference implementation of the wire format, plus the
 * conversions that put its messages and ours into one comparable form.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as protobuf from 'protobufjs';
import type {
  InferInputTensor,
  ModelInferRequest,
  ModelInferResponse,
  ParameterValue,
  Parameters,
} from '../../../src/protocol';

const PROTO_FILE = path.join(__dirname, '../../../protos/grpc_service.proto');

export interface ReferenceTypes {
  request: protobuf.Type;
  response: protobuf.Type;
  stream: protobuf.Type;
}

/**
 * protobufjs types for the ModelInfer messages. proto3 packs repeated scalars
 * by default; `packed: false` rewrites the schema so they are written one tag
 * per element, which decoders must accept too.
 */
export function loadReference(options: { packed: boolean }): ReferenceTypes {
  const root = new protobuf.Root();
  if (options.packed) {
    root.loadSync(PROTO_FILE, { keepCase: true });
  } else {
    const text = readFileSync(PROTO_FILE, 'utf8').replace(
      /(repeated (?:bool|int32|int64|uint32|uint64|float|double) \w+ = \d+)\s*;/g,
      '$1 [packed = false];',
    );
    protobuf.parse(text, root, { keepCase: true });
  }
  return {
    request: root.lookupType('inference.ModelInferRequest'),
    response: root.lookupType('inference.ModelInferResponse'),
    stream: root.lookupType('inference.ModelStreamInferResponse'),
  };
}

export type ParameterKind =
  'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';

/** A parameter with the InferParameter oneof member that carries it. */
export interface KindedValue {
  kind: ParameterKind;
  value: ParameterValue;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** How 64-bit integers compare: numbers when safe, bigint otherwise, never -0. */
export function canonicalInteger(value: bigint | number): number | bigint {
  const big = typeof value === 'bigint' ? value : BigInt(value);
  if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(big);
  }
  return big;
}

/** The documented mapping from a ParameterValue to InferParameter, restated independently. */
export function expectedKind(value: ParameterValue): KindedValue {
  switch (typeof value) {
    case 'boolean':
      return { kind: 'bool_param', value };
    case 'string':
      return { kind: 'string_param', value };
    case 'number':
      return Number.isSafeInteger(value)
        ? { kind: 'int64_param', value: canonicalInteger(value) }
        : { kind: 'double_param', value };
    default:
      return value >= INT64_MIN && value <= INT64_MAX
        ? { kind: 'int64_param', value: canonicalInteger(value) }
        : { kind: 'uint64_param', value: canonicalInteger(value) };
  }
}

export function expectedKinds(params: Parameters): Record<string, KindedValue> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, expectedKind(v)]));
}

/** The value our decoder should produce for a parameter protobufjs encodes. */
export function canonicalValue(value: boolean | bigint | string | number): ParameterValue {
  return typeof value === 'bigint' ? canonicalInteger(value) : value;
}

// Shapes of protobufjs `toObject(..., TO_OBJECT)` output for the fields we compare.
interface PlainParameter {
  parameter_choice?: ParameterKind;
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
}
interface PlainTensor {
  name: string;
  datatype: string;
  shape: string[];
  parameters: Record<string, PlainParameter>;
}
interface PlainRequestedOutput {
  name: string;
  parameters: Record<string, PlainParameter>;
}
export interface PlainRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, PlainParameter>;
  inputs: PlainTensor[];
  outputs: PlainRequestedOutput[];
  raw_input_contents: Uint8Array[];
}
export interface PlainResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, PlainParameter>;
  outputs: PlainTensor[];
  raw_output_contents: Uint8Array[];
}
export interface PlainStreamResponse {
  error_message: string;
  infer_response?: PlainResponse | null;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

export function toPlain<T>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), TO_OBJECT) as T;
}

function kindedParameters(params: Record<string, PlainParameter>): Record<string, KindedValue> {
  const out: Record<string, KindedValue> = {};
  for (const [key, p] of Object.entries(params)) {
    const kind = p.parameter_choice;
    if (kind === undefined) throw new Error(`parameter '${key}' has no value`);
    const raw = p[kind];
    if (raw === undefined) throw new Error(`parameter '${key}' lacks ${kind}`);
    out[key] =
      kind === 'int64_param' || kind === 'uint64_param'
        ? { kind, value: canonicalInteger(BigInt(raw as string)) }
        : { kind, value: raw };
  }
  return out;
}

function plainTensor(t: PlainTensor) {
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape.map((d) => Number(d)),
    parameters: kindedParameters(t.parameters),
  };
}

/** A protobufjs-decoded request in the form `kindedRequest` produces. */
export function comparableReferenceRequest(p: PlainRequest) {
  return {
    modelName: p.model_name,
    modelVersion: p.model_version,
    id: p.id,
    parameters: kindedParameters(p.parameters),
    inputs: p.inputs.map(plainTensor),
    outputs: p.outputs.map((o) => ({ name: o.name, parameters: kindedParameters(o.parameters) })),
    raw: p.raw_input_contents.map((b) => Buffer.from(b)),
  };
}

export function comparableReferenceResponse(p: PlainResponse) {
  return {
    modelName: p.model_name,
    modelVersion: p.model_version,
    id: p.id,
    parameters: kindedParameters(p.parameters),
    outputs: p.outputs.map(plainTensor),
    raw: p.raw_output_contents.map((b) => Buffer.from(b)),
  };
}

function kindedTensor(t: InferInputTensor) {
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape.map((d) => canonicalInteger(d)),
    parameters: expectedKinds(t.parameters),
  };
}

/** Our request as protobufjs should decode it: each parameter with its expected oneof member. */
export function kindedRequest(msg: ModelInferRequest) {
  return {
    modelName: msg.modelName,
    modelVersion: msg.modelVersion,
    id: msg.id,
    parameters: expectedKinds(msg.parameters),
    inputs: msg.inputs.map(kindedTensor),
    outputs: msg.outputs.map((o) => ({ name: o.name, parameters: expectedKinds(o.parameters) })),
    raw: msg.rawInputContents.map((b) => Buffer.from(b)),
  };
}

export function kindedResponse(msg: ModelInferResponse) {
  return {
    modelName: msg.modelName,
    modelVersion: msg.modelVersion,
    id: msg.id,
    parameters: expectedKinds(msg.parameters),
    outputs: msg.outputs.map(kindedTensor),
    raw: msg.rawOutputContents.map((b) => Buffer.from(b)),
  };
}

/** What our decoder should return for a message it encoded: values without their kinds. */
export function valuesOnly(params: Parameters): Parameters {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, expectedKind(v).value]));
}
