export { parseInferRequest } from './parse-infer-request';
export { JsonWorkerPool } from './json-worker-pool';
export type { JsonWorkerPoolOptions, EncodeOptions } from './json-worker-pool';
export { ReusableBuffers } from './reusable-buffers';
export type { ReusableBuffersOptions } from './reusable-buffers';
export type { InferRequestBody, ParsedInferRequest } from './parse-infer-request';
export { encodeInferResponse } from './encode-infer-response';
export type { EncodedInferResponse } from './encode-infer-response';
export { readBinaryHeaderLength, INFERENCE_HEADER_CONTENT_LENGTH } from './binary-header';
export type { OutputPlan, PlannedOutput } from './output-plan';
export {
  parseGenerateRequest,
  renderGenerateResponse,
  renderGenerateError,
  sseEvent,
} from './generate';
export type { GenerateInputSpec, GenerateRequestBody } from './generate';
