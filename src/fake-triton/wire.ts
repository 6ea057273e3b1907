/**
 * Messages of inference.GRPCInferenceService as proto-loader hands them over
 * with the options in proto.ts (keepCase, longs as strings, enums as strings,
 * defaults, oneof discriminators), and the plain objects the fake answers with.
 * Only the fields the fake reads or writes are listed.
 */

export interface WireInferParameter {
  parameter_choice?:
    'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: string | number;
  string_param?: string;
  double_param?: number;
  uint64_param?: string | number;
}

export type WireParameters = Record<string, WireInferParameter>;

export interface WireTensorContents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: string[];
  uint_contents: number[];
  uint64_contents: string[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
}

export interface WireInferInput {
  name: string;
  datatype: string;
  shape: string[];
  parameters: WireParameters;
  contents: WireTensorContents | null;
}

export interface WireRequestedOutput {
  name: string;
  parameters: WireParameters;
}

export interface WireInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: WireParameters;
  inputs: WireInferInput[];
  outputs: WireRequestedOutput[];
  raw_input_contents: Buffer[];
}

export interface WireInferOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: WireParameters;
}

export interface WireInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: WireParameters;
  outputs: WireInferOutput[];
  raw_output_contents: Buffer[];
}

export interface WireStreamInferResponse {
  error_message: string;
  infer_response: WireInferResponse | null;
}

export interface WireModelRequest {
  name: string;
  version: string;
}

export interface WireRepositoryIndexRequest {
  repository_name: string;
  ready: boolean;
}

export interface WireRepositoryParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'bytes_param';
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  bytes_param?: Buffer;
}

export interface WireRepositoryModelRequest {
  repository_name: string;
  model_name: string;
  parameters: Record<string, WireRepositoryParameter>;
}

export interface WireModelIndex {
  name: string;
  version: string;
  state: string;
  reason: string;
}

export interface WireTensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface WireModelMetadataResponse {
  name: string;
  versions: string[];
  platform: string;
  inputs: WireTensorMetadata[];
  outputs: WireTensorMetadata[];
}

export interface WireStatisticDuration {
  count: number;
  ns: number;
}

export interface WireModelStatistics {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<
    | 'success'
    | 'fail'
    | 'queue'
    | 'compute_input'
    | 'compute_infer'
    | 'compute_output'
    | 'cache_hit'
    | 'cache_miss',
    WireStatisticDuration
  >;
  batch_stats: Array<{
    batch_size: number;
    compute_input: WireStatisticDuration;
    compute_infer: WireStatisticDuration;
    compute_output: WireStatisticDuration;
  }>;
}

/** inference.ModelConfig (model_config.proto), the subset the fake fills in. */
export interface WireModelConfig {
  name: string;
  platform: string;
  backend: string;
  version_policy: { latest: { num_versions: number } } | { specific: { versions: number[] } };
  max_batch_size: number;
  input: Array<{
    name: string;
    data_type: string;
    format: string;
    dims: number[];
    optional: boolean;
  }>;
  output: Array<{ name: string; data_type: string; dims: number[]; label_filename: string }>;
  instance_group: Array<{ name: string; kind: string; count: number; gpus: number[] }>;
  default_model_filename: string;
  model_transaction_policy: { decoupled: boolean };
}
