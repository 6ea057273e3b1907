export {
  encodeModelInferRequest,
  encodeModelInferRequestFrame,
  decodeModelInferRequest,
  GRPC_FRAME_HEADER_BYTES,
} from './model-infer-request';
export { readModelInferRequestHead } from './model-infer-request-head';
export type { ModelInferRequestHead } from './model-infer-request-head';
export { encodeModelInferResponse, decodeModelInferResponse } from './model-infer-response';
export {
  encodeModelStreamInferResponse,
  decodeModelStreamInferResponse,
} from './model-stream-infer-response';
export type { ModelStreamInferResponse } from './model-stream-infer-response';
export {
  createModelInferMethodDefinition,
  createModelStreamInferMethodDefinition,
  MODEL_INFER_PATH,
  MODEL_STREAM_INFER_PATH,
} from './method-definitions';
export { WireFormatError, isWireFormatError } from './wire-format-error';
