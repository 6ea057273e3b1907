export { parseInferRequest } from './parse-infer-request';
export { InferRequestParser } from './json-parser-pool';
export type { InferRequestParserOptions } from './json-parser-pool';
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
