/**
 * The proxy's in-memory form of Triton's ModelInfer messages
 * (inference.ModelInferRequest / ModelInferResponse in protos/grpc_service.proto).
 *
 * Tensor data is always raw bytes here: typed `contents` received from a server
 * are converted to raw bytes when decoded, and the proxy only ever sends
 * `raw_input_contents`. Buffers may be views into a larger received buffer and
 * need not be aligned for typed-array views.
 */

/**
 * A parameter value. Mapping to InferParameter's oneof:
 * boolean -> bool_param, string -> string_param, integer number or bigint ->
 * int64_param (uint64_param when above the int64 range), other number -> double_param.
 */
export type ParameterValue = boolean | number | bigint | string;
export type Parameters = Record<string, ParameterValue>;

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Parameters;
}

export interface InferRequestedOutput {
  name: string;
  parameters: Parameters;
}

export interface ModelInferRequest {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: Parameters;
  inputs: InferInputTensor[];
  outputs: InferRequestedOutput[];
  /** One entry per input, in input order. */
  rawInputContents: Buffer[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Parameters;
}

export interface ModelInferResponse {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: Parameters;
  outputs: InferOutputTensor[];
  /** One entry per output, in output order. */
  rawOutputContents: Buffer[];
}
