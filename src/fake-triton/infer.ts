import { status } from '@grpc/grpc-js';
import { elementBytes, elementCount, isDatatype } from '../protocol';
import { classificationCount, classify } from './classification';
import type { ModelDefinition, TensorSpec } from './models';
import type { ModelRepository, ResolvedModel } from './repository';
import { bytesDataProblem, contentsToRaw, type Tensor } from './tensor';
import {
  TritonError,
  invalidArgument,
  parseModelVersion,
  requestPrefix,
  serverNotReady,
} from './triton-error';
import type { WireInferOutput, WireInferRequest, WireInferResponse } from './wire';

export interface InferContext {
  repository: ModelRepository;
  /** ModelInfer refuses decoupled models; ModelStreamInfer serves both kinds. */
  rpc: 'ModelInfer' | 'ModelStreamInfer';
  serverReady: boolean;
}

interface RequestedOutput {
  spec: TensorSpec;
  classification: number | undefined;
}

/**
 * Runs one inference request the way Triton validates it: model lookup
 * (core ModelRepositoryManager::GetModel), input data (server
 * grpc/infer_handler.cc, InferGRPCToInput), then the request normalisation of
 * core InferenceRequest::Normalize (outputs, input count, names, batch,
 * datatype, shape, byte size), with Triton's messages. Returns the responses
 * (exactly one unless the model is decoupled) or the error status.
 */
export interface InferOutcome {
  responses: WireInferResponse[];
  decoupled: boolean;
  /** The version that served the request. */
  version: string;
  /** Milliseconds between the responses (decoupled models). */
  intervalMs: number;
}

export function runInference(
  request: WireInferRequest,
  context: InferContext,
): InferOutcome | TritonError {
  const version = parseModelVersion(request.model_version);
  if (version instanceof TritonError) return version;
  const model = context.repository.resolve(request.model_name, version);
  if (model instanceof TritonError) return model;
  if (context.rpc === 'ModelInfer' && model.definition.decoupled === true) {
    return new TritonError(
      status.UNIMPLEMENTED,
      "ModelInfer RPC doesn't support models with decoupled transaction policy",
    );
  }
  const started = process.hrtime.bigint();
  const result = execute(request, model, context.serverReady);
  const elapsedNs = Number(process.hrtime.bigint() - started);
  if (result instanceof TritonError) model.stats.recordFailure(elapsedNs);
  else model.stats.recordSuccess(result.batchSize, elapsedNs);
  if (result instanceof TritonError) return result;
  return {
    responses: result.responses,
    decoupled: model.definition.decoupled === true,
    version: model.version,
    intervalMs: model.definition.decoupled === true ? (model.definition.intervalMs ?? 0) : 0,
  };
}

function execute(
  request: WireInferRequest,
  model: ResolvedModel,
  serverReady: boolean,
): { responses: WireInferResponse[]; batchSize: number } | TritonError {
  const { definition } = model;
  const modelName = request.model_name;
  const prefix = requestPrefix(request.id);

  const data = inputData(request, prefix);
  if (data instanceof TritonError) return data;

  const outputs = requestedOutputs(request, definition);
  if (outputs instanceof TritonError) return outputs;

  const countError = inputCountProblem(request, definition, prefix);
  if (countError !== null) return countError;

  const inputs = new Map<string, Tensor>();
  let batchSize = 0;
  for (let i = 0; i < request.inputs.length; i++) {
    const input = request.inputs[i]!;
    const spec = definition.inputs.find((s) => s.name === input.name);
    if (spec === undefined) {
      return invalidArgument(`unexpected inference input '${input.name}' for model '${modelName}'`);
    }
    const shape = input.shape.map(Number);
    if (definition.maxBatchSize > 0) {
      if (shape.length === 0) {
        return invalidArgument(
          `${prefix}input '${input.name}' has no shape but model requires batch dimension for '${modelName}'`,
        );
      }
      if (batchSize === 0) batchSize = shape[0]!;
      else if (shape[0] !== batchSize) {
        return invalidArgument(
          `${prefix}input '${input.name}' batch size does not match other inputs for '${modelName}'`,
        );
      }
    }
    // The datatype is checked against the spec below, before any model sees the tensor.
    inputs.set(input.name, { datatype: spec.datatype, shape, data: data[i]! });
  }
  if (batchSize > definition.maxBatchSize) {
    return invalidArgument(
      `${prefix}inference request batch-size must be <= ${definition.maxBatchSize} for '${modelName}'`,
    );
  }
  for (const input of request.inputs) {
    const spec = definition.inputs.find((s) => s.name === input.name)!;
    const problem = tensorProblem(
      input.name,
      input.datatype,
      inputs.get(input.name)!,
      spec,
      definition,
      modelName,
    );
    if (problem !== null) return invalidArgument(prefix + problem);
  }

  if (!serverReady) return serverNotReady();

  let produced: ReadonlyMap<string, Tensor>[];
  try {
    produced =
      definition.decoupled === true ? definition.respond(inputs) : [definition.compute(inputs)];
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return new TritonError(status.INTERNAL, `model '${modelName}' failed: ${reason}`);
  }

  const responses: WireInferResponse[] = [];
  for (const tensors of produced) {
    const response = buildResponse(request, model, outputs, tensors);
    if (response instanceof TritonError) return response;
    responses.push(response);
  }
  return { responses, batchSize: Math.max(batchSize, 1) };
}

/** One raw buffer per request input, from typed contents or raw_input_contents in order. */
function inputData(request: WireInferRequest, prefix: string): Buffer[] | TritonError {
  const modelName = request.model_name;
  const seen = new Set<string>();
  for (const input of request.inputs) {
    if (seen.has(input.name)) {
      return invalidArgument(`${prefix}input '${input.name}' already exists in request`);
    }
    seen.add(input.name);
  }
  const data: Buffer[] = [];
  let rawIndex = 0;
  for (const input of request.inputs) {
    if (input.contents !== null && request.raw_input_contents.length > 0) {
      return invalidArgument(
        `contents field must not be specified when using raw_input_contents for '${input.name}' for model '${modelName}'`,
      );
    }
    if (input.contents !== null) {
      const raw = contentsToRaw(input.contents, input.datatype, input.name, modelName);
      if (raw instanceof TritonError) return raw;
      data.push(raw);
    } else if (rawIndex < request.raw_input_contents.length) {
      data.push(request.raw_input_contents[rawIndex++]!);
    } else {
      return invalidArgument(
        `unable to find data for input tensor '${input.name}' for model '${modelName}' in request.`,
      );
    }
  }
  return data;
}

function requestedOutputs(
  request: WireInferRequest,
  definition: ModelDefinition,
): RequestedOutput[] | TritonError {
  if (request.outputs.length === 0) {
    return definition.outputs.map((spec) => ({ spec, classification: undefined }));
  }
  const result: RequestedOutput[] = [];
  for (const output of request.outputs) {
    const classification = classificationCount(output.parameters['classification']);
    if (classification instanceof TritonError) return classification;
    const spec = definition.outputs.find((s) => s.name === output.name);
    if (spec === undefined) {
      return invalidArgument(
        `unexpected inference output '${output.name}' for model '${request.model_name}'`,
      );
    }
    result.push({ spec, classification });
  }
  return result;
}

/** core InferenceRequest::ValidateRequestInputs. */
function inputCountProblem(
  request: WireInferRequest,
  definition: ModelDefinition,
  prefix: string,
): TritonError | null {
  const given = request.inputs.map((i) => i.name);
  const required = definition.inputs.filter((s) => s.optional !== true);
  if (given.length <= definition.inputs.length && given.length >= required.length) return null;
  const quoted = (names: string[]) => `[${names.map((n) => `'${n}'`).join(',')}]`;
  const missing = required.map((s) => s.name).filter((n) => !given.includes(n));
  const got = `Got input(s) ${quoted(given)}, but missing required input(s) ${quoted(missing)}. Please provide all required input(s).`;
  const expected =
    required.length === definition.inputs.length
      ? `expected ${definition.inputs.length} inputs`
      : `expected number of inputs between ${required.length} and ${definition.inputs.length}`;
  return invalidArgument(
    `${prefix}${expected} but got ${given.length} inputs for model '${request.model_name}'. ${got}`,
  );
}

/** Datatype, shape and byte size of one input against its config (core InferenceRequest::Normalize). */
function tensorProblem(
  name: string,
  requestDatatype: string,
  tensor: Tensor,
  spec: TensorSpec,
  definition: ModelDefinition,
  modelName: string,
): string | null {
  if (requestDatatype !== spec.datatype) {
    const given = isDatatype(requestDatatype) ? requestDatatype : 'INVALID';
    return `inference input '${name}' data-type is '${given}', but model '${modelName}' expects '${spec.datatype}'`;
  }
  const batched = definition.maxBatchSize > 0;
  const dims = batched ? tensor.shape.slice(1) : tensor.shape;
  let matches = dims.length === spec.dims.length;
  for (let i = 0; matches && i < dims.length; i++) {
    if (dims[i]! < 0) {
      return `All input dimensions should be specified for input '${name}' for model '${modelName}', got ${dimsString(tensor.shape)}`;
    }
    if (spec.dims[i] !== -1 && spec.dims[i] !== dims[i]) matches = false;
  }
  if (!matches) {
    const note = batched
      ? 'NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be prepended to each input shape. If you want to specify the full shape including the batch dim in your input dims config, try setting max_batch_size to zero. See the model configuration docs for more info on max_batch_size.'
      : '';
    const expected = batched ? [-1, ...spec.dims] : spec.dims;
    return `unexpected shape for input '${name}' for model '${modelName}'. Expected ${dimsString(expected)}, got ${dimsString(tensor.shape)}. ${note}`;
  }
  const count = elementCount(tensor.shape);
  if (spec.datatype === 'BYTES') return bytesDataProblem(tensor.data, count, name, modelName);
  const expectedBytes = count * elementBytes(spec.datatype);
  if (tensor.data.length !== expectedBytes) {
    return `input byte size mismatch for input '${name}' for model '${modelName}'. Expected ${expectedBytes}, got ${tensor.data.length}`;
  }
  return null;
}

function dimsString(dims: readonly number[]): string {
  return `[${dims.join(',')}]`;
}

function buildResponse(
  request: WireInferRequest,
  model: ResolvedModel,
  outputs: RequestedOutput[],
  tensors: ReadonlyMap<string, Tensor>,
): WireInferResponse | TritonError {
  const wireOutputs: WireInferOutput[] = [];
  const raw: Buffer[] = [];
  for (const { spec, classification } of outputs) {
    let tensor = tensors.get(spec.name);
    if (tensor === undefined) continue;
    if (classification !== undefined) {
      const classes = classify(tensor, classification, model.definition.maxBatchSize > 0);
      if (classes instanceof TritonError) return classes;
      tensor = classes;
    }
    wireOutputs.push({ name: spec.name, datatype: tensor.datatype, shape: tensor.shape });
    raw.push(tensor.data);
  }
  return {
    model_name: request.model_name,
    model_version: model.version,
    id: request.id,
    parameters: {},
    outputs: wireOutputs,
    raw_output_contents: raw,
  };
}
