import { invalidRequest } from '../errors';
import {
  isDatatype,
  type InferInputTensor,
  type ModelInferRequest,
  type ModelInferResponse,
  type ParameterValue,
  type Parameters,
} from '../protocol';
import { writeData, writeParameterValue } from './encode-infer-response';
import { JsonByteWriter } from './json-byte-writer';
import { InexactIntegerError, parseJsonHeader } from './json-header';
import { isJsonObject, toParameterValue, type JsonObject } from './json-parameters';
import { jsonTensorToRaw } from './json-to-raw';

/**
 * Triton's generate extension (docs/protocol/extension_generate.md), as its
 * HTTP frontend implements it (src/http_server.cc, GenerateRequestClass):
 *
 * Request: each top-level key of the JSON object, in order, becomes an input
 * tensor when the model has an input of that name (datatype from the model
 * metadata, shape from the metadata's dims with the element count spread
 * over the variable ones), otherwise a request parameter (string, integer,
 * bool or double). `parameters` is an object whose keys are mapped the same
 * way. `id` is the request id (and, like every key that is not an input,
 * also a parameter, as Triton does).
 *
 * Response: one JSON object whose keys are `id` (when non-empty),
 * `model_name`, `model_version`, the response parameters and the output
 * tensors, in byte order of the key (Triton collects them in a std::map),
 * the first of equal names winning in that order. A tensor of one element is
 * its value, any other a flat array.
 */

/** One input as the model metadata describes it (shape with -1 for variable dims). */
export interface GenerateInputSpec {
  name: string;
  datatype: string;
  shape: readonly number[];
}

export interface GenerateRequestBody {
  body: Buffer;
  inputs: readonly GenerateInputSpec[];
  modelName: string;
  modelVersion: string;
}

/** The generate request body as the ModelInfer request Triton would build from it. */
export function parseGenerateRequest(input: GenerateRequestBody): ModelInferRequest {
  const text = input.body.toString('utf8');
  // Triton accepts an empty body as an empty object (EVRequestToJsonAllowsEmpty).
  if (text.trim() === '') return convert(input, {}, text.length, false);
  const first = parseJsonHeader(text, false);
  try {
    return convert(input, first.root, text.length, first.exact);
  } catch (error) {
    if (!(error instanceof InexactIntegerError)) throw error;
  }
  const exact = parseJsonHeader(text, true);
  return convert(input, exact.root, text.length, true);
}

const PARAMETERS = 'parameters';

function convert(
  input: GenerateRequestBody,
  root: unknown,
  textLength: number,
  exact: boolean,
): ModelInferRequest {
  if (!isJsonObject(root)) {
    throw invalidRequest('the generate request must be a JSON object');
  }
  const specs = new Map(input.inputs.map((s) => [s.name, s]));
  const request: ModelInferRequest = {
    modelName: input.modelName,
    modelVersion: input.modelVersion,
    id: '',
    parameters: {},
    inputs: [],
    outputs: [],
    rawInputContents: [],
  };
  if (Object.hasOwn(root, 'id')) {
    const id = root.id;
    if (typeof id !== 'string') {
      throw invalidRequest("Unable to parse 'id': attempt to access JSON non-string as string");
    }
    request.id = id;
  }
  for (const key of Object.keys(root)) {
    if (key === PARAMETERS) {
      if (specs.has(PARAMETERS)) {
        throw invalidRequest(
          "Keyword 'parameters' for nested schema also given as input tensor name",
        );
      }
      const nested = root[key];
      if (!isJsonObject(nested)) {
        throw invalidRequest(
          "Expected JSON object for keyword: 'parameters': attempt to access JSON non-object as object",
        );
      }
      for (const inner of Object.keys(nested)) {
        try {
          mapKey(request, specs, nested, inner, textLength, exact);
        } catch (error) {
          if (error instanceof InexactIntegerError) throw error;
          const e = error as Error;
          throw invalidRequest(`Converting keyword: 'parameters': ${e.message}`);
        }
      }
    } else {
      mapKey(request, specs, root, key, textLength, exact);
    }
  }
  return request;
}

function mapKey(
  request: ModelInferRequest,
  specs: ReadonlyMap<string, GenerateInputSpec>,
  owner: JsonObject,
  key: string,
  textLength: number,
  exact: boolean,
): void {
  const value = owner[key];
  const spec = specs.get(key);
  if (spec === undefined) {
    setParameter(request.parameters, key, toParameterValue(key, value, exact));
    return;
  }
  if (!isDatatype(spec.datatype)) {
    throw invalidRequest(`input '${key}' has unsupported datatype ${spec.datatype}`);
  }
  const data = Array.isArray(value) ? value : [value];
  const shape = spreadShape(key, spec.shape, data.length);
  const raw = jsonTensorToRaw(
    {
      name: key,
      datatype: spec.datatype,
      shape,
      elementCount: data.length,
      data,
      base64: false,
      exact,
    },
    textLength,
  );
  const tensor: InferInputTensor = { name: key, datatype: spec.datatype, shape, parameters: {} };
  request.inputs.push(tensor);
  request.rawInputContents.push(raw);
}

/**
 * Triton's two passes: fixed dims divide the element count, the innermost
 * variable dim takes what is left, other variable dims are 1.
 */
function spreadShape(name: string, dims: readonly number[], count: number): number[] {
  const shape = [...dims];
  let left = count;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    if (d !== -1) {
      if (d === 0 || left % d !== 0) throw cannotShape(name);
      left /= d;
    }
  }
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === -1) {
      shape[i] = left;
      left = 1;
    }
  }
  if (left !== 1) throw cannotShape(name);
  return shape;
}

function cannotShape(name: string) {
  return invalidRequest(`The schema can not convert input '${name}' to tensor with proper shape`);
}

function setParameter(params: Parameters, key: string, value: ParameterValue): void {
  // A plain assignment to "__proto__" would replace the prototype instead of adding a key.
  Object.defineProperty(params, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** The parameter Triton's gRPC stream handler adds to every response; HTTP never shows it. */
const FINAL_RESPONSE_PARAMETER = 'triton_final_response';

type Entry =
  | { kind: 'string'; value: string }
  | { kind: 'parameter'; value: ParameterValue }
  | { kind: 'tensor'; index: number };

/** One generate response object, exactly as Triton writes it (no spaces, keys in byte order). */
export function renderGenerateResponse(response: ModelInferResponse): Buffer {
  const entries = new Map<string, Entry>();
  const add = (key: string, entry: Entry) => {
    if (!entries.has(key)) entries.set(key, entry);
  };
  if (response.id !== '') add('id', { kind: 'string', value: response.id });
  add('model_name', { kind: 'string', value: response.modelName });
  add('model_version', { kind: 'string', value: response.modelVersion });
  for (const key of Object.keys(response.parameters)) {
    if (key === FINAL_RESPONSE_PARAMETER) continue;
    add(key, { kind: 'parameter', value: response.parameters[key]! });
  }
  response.outputs.forEach((out, index) => add(out.name, { kind: 'tensor', index }));

  const keys = [...entries.keys()].sort(byteOrder);
  const w = new JsonByteWriter(256);
  w.byte(123); // {
  keys.forEach((key, i) => {
    if (i > 0) w.byte(44); // ,
    w.string(key);
    w.byte(58); // :
    const entry = entries.get(key)!;
    if (entry.kind === 'string') w.string(entry.value);
    else if (entry.kind === 'parameter') writeParameterValue(w, entry.value);
    else {
      const out = response.outputs[entry.index]!;
      const raw = response.rawOutputContents[entry.index] ?? Buffer.alloc(0);
      const single = out.shape.reduce((n, d) => n * d, 1) === 1;
      if (!single) w.byte(91); // [
      writeData(w, out, raw, false);
      if (!single) w.byte(93); // ]
    }
  });
  w.byte(125); // }
  return Buffer.concat(w.finish());
}

/** std::string's operator<: byte-wise on the UTF-8 form. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Triton's error body, {"error":"<message>"}, as its JSON writer prints it. */
export function renderGenerateError(message: string): Buffer {
  const w = new JsonByteWriter(message.length + 16);
  w.ascii('{"error":');
  w.string(message);
  w.byte(125);
  return Buffer.concat(w.finish());
}

const SSE_PREFIX = Buffer.from('data: ');
const SSE_SUFFIX = Buffer.from('\n\n');

/** One server-sent event around a JSON body, framed as Triton frames it. */
export function sseEvent(json: Buffer): Buffer {
  return Buffer.concat([SSE_PREFIX, json, SSE_SUFFIX]);
}
