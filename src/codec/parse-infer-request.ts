import { invalidRequest, ProxyError } from '../errors';
import {
  elementBytes,
  isDatatype,
  type Datatype,
  type InferInputTensor,
  type InferRequestedOutput,
  type ModelInferRequest,
  type Parameters,
} from '../protocol';
import { INFERENCE_HEADER_CONTENT_LENGTH } from './binary-header';
import { InexactIntegerError, parseJsonHeader } from './json-header';
import {
  forwardParameters,
  isJsonObject,
  isUnsignedInteger,
  parametersOf,
  type JsonObject,
} from './json-parameters';
import { jsonTensorToRaw } from './json-to-raw';
import type { OutputPlan, PlannedOutput } from './output-plan';

/**
 * A KServe v2 inference request body (JSON, or JSON header plus binary
 * tensors) to the ModelInfer message sent to Triton, plus the plan for
 * encoding the answer. Follows Triton's HTTP frontend (src/http_server.cc:
 * EVBufferToInput, ParseJsonTritonParams, ParseJsonTritonIO); its messages
 * are reused where they say what is wrong.
 */

export interface InferRequestBody {
  body: Buffer;
  /** Inference-Header-Content-Length; undefined when the header is absent. */
  headerLength?: number;
  modelName: string;
  modelVersion: string;
}

export interface ParsedInferRequest {
  request: ModelInferRequest;
  plan: OutputPlan;
}

export function parseInferRequest(input: InferRequestBody): ParsedInferRequest {
  const { body, headerLength } = input;
  if (headerLength === 0) {
    // Triton's raw binary request: the whole body is the single input of a
    // model whose name, type and shape come from its configuration.
    throw new ProxyError(
      'UNSUPPORTED',
      `${INFERENCE_HEADER_CONTENT_LENGTH}: 0 (raw binary request without an inference header) is not supported by the proxy; send a JSON inference header with 'binary_data_size'`,
    );
  }
  if (headerLength !== undefined && headerLength > body.length) {
    throw invalidRequest(
      `${INFERENCE_HEADER_CONTENT_LENGTH} (${headerLength}) is larger than the request body (${body.length} bytes): inference header size should be in range [0, ${body.length}]`,
    );
  }
  const jsonEnd = headerLength ?? body.length;
  const text = body.toString('utf8', 0, jsonEnd);
  const first = parseJsonHeader(text, false);
  try {
    return convert(input, first.root, text.length, jsonEnd, first.exact);
  } catch (error) {
    if (!(error instanceof InexactIntegerError)) throw error;
  }
  const exact = parseJsonHeader(text, true);
  return convert(input, exact.root, text.length, jsonEnd, true);
}

function fail(message: string): never {
  throw invalidRequest(message);
}

// HTTP-only parameters: Triton's HTTP frontend consumes them, gRPC never sees them.
const REQUEST_BINARY_OUTPUT = 'binary_data_output';
const INPUT_BINARY_SIZE = 'binary_data_size';
const OUTPUT_BINARY = 'binary_data';
const CONTENT_TYPE = 'content_type';
const BASE64 = 'base64';
const SHM_REGION = 'shared_memory_region';
const CLASSIFICATION = 'classification';

function convert(
  source: InferRequestBody,
  root: unknown,
  textLength: number,
  jsonEnd: number,
  exact: boolean,
): ParsedInferRequest {
  if (!isJsonObject(root)) fail('Unable to parse the request JSON: expected a JSON object');
  const model = source.modelName;

  let id = '';
  if (root.id !== undefined) {
    if (typeof root.id !== 'string') fail("Unable to parse 'id': expected a string");
    id = root.id;
  }

  const { parameters, binaryByDefault } = requestParameters(
    parametersOf(root, 'the request'),
    exact,
  );

  const inputsJson = root.inputs;
  if (!Array.isArray(inputsJson)) fail("Unable to parse 'inputs': expected an array");

  const inputs: InferInputTensor[] = new Array<InferInputTensor>(inputsJson.length);
  const raws: Buffer[] = new Array<Buffer>(inputsJson.length);
  const seen = new Set<string>();
  const body = source.body;
  let offset = jsonEnd;

  for (let i = 0; i < inputsJson.length; i++) {
    const item: unknown = inputsJson[i];
    if (!isJsonObject(item)) fail(`Unable to parse 'inputs': input ${i} is not a JSON object`);
    const name = item.name;
    if (typeof name !== 'string') fail(`Unable to parse 'name' for input ${i}: expected a string`);
    if (seen.has(name)) fail(`input '${name}' already exists in request`);
    seen.add(name);

    const datatype = item.datatype;
    if (typeof datatype !== 'string') {
      fail(`Unable to parse 'datatype' for input '${name}': expected a string`);
    }
    if (!isDatatype(datatype)) fail(`invalid datatype '${datatype}' for input '${name}'`);
    const shape = readShape(item.shape, name);
    const count = elementCountOf(shape, name);

    const params = parametersOf(item, `input '${name}'`);
    const hasData = item.data !== undefined;
    const hasBinary = params !== undefined && params[INPUT_BINARY_SIZE] !== undefined;
    const hasSharedMemory = params !== undefined && params[SHM_REGION] !== undefined;
    checkOneContentSource(name, hasData, hasBinary, hasSharedMemory);
    const base64 = params !== undefined && params[CONTENT_TYPE] === BASE64;
    if (base64 && datatype !== 'BYTES') {
      fail(`'content_type': 'base64' applies to BYTES inputs only; input '${name}' is ${datatype}`);
    }

    let raw: Buffer;
    if (hasBinary) {
      const size = params[INPUT_BINARY_SIZE];
      if (!isUnsignedInteger(size, exact) || typeof size !== 'number') {
        fail(
          `Unable to parse 'binary_data_size' for input '${name}': expected a non-negative integer, got ${String(size)}`,
        );
      }
      const available = body.length - offset;
      if (size > available) {
        fail(
          `unexpected size for input '${name}', expecting ${size - available} additional bytes for model '${model}' (binary_data_size ${size}, ${available} bytes left after the inference header and earlier inputs)`,
        );
      }
      raw = body.subarray(offset, offset + size);
      offset += size;
      checkBinarySize(name, model, datatype, count, size);
    } else if (hasSharedMemory) {
      raw = Buffer.alloc(0);
    } else {
      if (!Array.isArray(item.data))
        fail(`Unable to parse 'data' for input '${name}': expected an array`);
      raw = jsonTensorToRaw(
        { name, datatype, shape, elementCount: count, data: item.data, base64, exact },
        textLength,
      );
    }
    raws[i] = raw;
    inputs[i] = {
      name,
      datatype,
      shape,
      parameters: forwardParameters(
        params,
        (key) => key === INPUT_BINARY_SIZE || (base64 && key === CONTENT_TYPE),
        exact,
      ),
    };
  }

  if (offset !== body.length) {
    fail(
      `unexpected additional input data for model '${model}': ${body.length - offset} bytes after the inference header are not claimed by any input's 'binary_data_size'`,
    );
  }

  const { outputs, planned } = requestedOutputs(root.outputs, exact);
  return {
    request: {
      modelName: model,
      modelVersion: source.modelVersion,
      id,
      parameters,
      inputs,
      outputs,
      rawInputContents: raws,
    },
    plan: { binaryByDefault, outputs: planned },
  };
}

function readShape(value: unknown, name: string): number[] {
  if (Array.isArray(value)) {
    const shape = new Array<number>(value.length);
    let ok = true;
    for (let i = 0; i < value.length; i++) {
      const d: unknown = value[i];
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        ok = false;
        break;
      }
      shape[i] = d;
    }
    if (ok) return shape;
  }
  const shown =
    typeof value === 'bigint'
      ? value.toString()
      : JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return fail(
    `Unable to parse 'shape' for input '${name}': expected an array of non-negative integers, got ${shown}`,
  );
}

function elementCountOf(shape: readonly number[], name: string): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n)) {
    fail(`invalid shape for input '${name}': shape [${shape.join(',')}] has too many elements`);
  }
  return n;
}

/** Triton's ValidateInputContentType: exactly one of data, binary_data_size, shared_memory_region. */
function checkOneContentSource(name: string, data: boolean, binary: boolean, shm: boolean): void {
  const set = Number(data) + Number(binary) + Number(shm);
  if (set === 1) return;
  let detail = ' no field is set';
  if (set > 1) {
    detail = ' set';
    if (data) detail += " 'data'";
    if (binary) detail += " 'binary_data_size'";
    if (shm) detail += " 'shared_memory_region'";
  }
  fail(
    `Input must set only one of the following fields: 'data', 'binary_data_size' in 'parameters', 'shared_memory_region' in 'parameters'. But${detail} for input '${name}'`,
  );
}

/** Triton core's check, done here so a bad size never reaches a server: fixed-width tensors must be exactly shape x width. */
function checkBinarySize(
  name: string,
  model: string,
  datatype: Datatype,
  count: number,
  size: number,
): void {
  const width = elementBytes(datatype);
  if (width === 0) return;
  const expected = count * width;
  if (size !== expected) {
    fail(
      `input byte size mismatch for input '${name}' for model '${model}'. Expected ${expected}, got ${size}`,
    );
  }
}

function requestParameters(
  params: JsonObject | undefined,
  exact: boolean,
): {
  parameters: Parameters;
  binaryByDefault: boolean;
} {
  let binaryByDefault = false;
  if (params === undefined) return { parameters: {}, binaryByDefault };
  for (const key of Object.keys(params)) {
    const value = params[key];
    switch (key) {
      case 'sequence_id':
        if (typeof value !== 'string' && !isUnsignedInteger(value, exact)) {
          fail("Unable to parse 'sequence_id': expected a non-negative integer or a string");
        }
        break;
      case 'sequence_start':
      case 'sequence_end':
      case REQUEST_BINARY_OUTPUT:
        if (typeof value !== 'boolean') fail(`Unable to parse '${key}': expected a boolean`);
        if (key === REQUEST_BINARY_OUTPUT) binaryByDefault = value;
        break;
      case 'priority':
      case 'timeout':
        if (!isUnsignedInteger(value, exact))
          fail(`Unable to parse '${key}': expected a non-negative integer`);
        break;
      default:
        if (key.startsWith('triton_')) {
          fail(
            "parameter keys starting with 'triton_' are reserved for Triton usage and should not be specified.",
          );
        }
    }
  }
  return {
    parameters: forwardParameters(params, (key) => key === REQUEST_BINARY_OUTPUT, exact),
    binaryByDefault,
  };
}

function requestedOutputs(
  value: unknown,
  exact: boolean,
): {
  outputs: InferRequestedOutput[];
  planned: PlannedOutput[];
} {
  if (value === undefined) return { outputs: [], planned: [] };
  if (!Array.isArray(value)) fail("Unable to parse 'outputs': expected an array");
  const outputs = new Array<InferRequestedOutput>(value.length);
  const planned = new Array<PlannedOutput>(value.length);
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isJsonObject(item)) fail(`Unable to parse 'outputs': output ${i} is not a JSON object`);
    const name = item.name;
    if (typeof name !== 'string') fail(`Unable to parse 'name' for output ${i}: expected a string`);
    const params = parametersOf(item, `output '${name}'`);
    let binary = false;
    let base64 = false;
    let sharedMemory = false;
    if (params !== undefined) {
      const bin = params[OUTPUT_BINARY];
      if (bin !== undefined) {
        if (typeof bin !== 'boolean')
          fail(`Unable to parse 'binary_data' for output '${name}': expected a boolean`);
        binary = bin;
      }
      const cls = params[CLASSIFICATION];
      if (cls !== undefined && !isUnsignedInteger(cls, exact)) {
        fail(
          `Unable to set 'classification' for output '${name}': expected a non-negative integer`,
        );
      }
      sharedMemory = params[SHM_REGION] !== undefined;
      if (sharedMemory && cls !== undefined) {
        fail(
          `Output can't set both 'shared_memory_region' and 'classification' (output '${name}')`,
        );
      }
      if (sharedMemory && binary) {
        fail(`Output can't set both 'shared_memory_region' and 'binary_data' (output '${name}')`);
      }
      base64 = params[CONTENT_TYPE] === BASE64;
    }
    outputs[i] = {
      name,
      parameters: forwardParameters(
        params,
        (key) => key === OUTPUT_BINARY || (base64 && key === CONTENT_TYPE),
        exact,
      ),
    };
    planned[i] = { name, binary, base64, sharedMemory };
  }
  return { outputs, planned };
}
