export { TritonClient, DEFAULT_INFER_TRANSPORT } from './triton-client';
export type { ChannelSettings, CallContext, InferTransport } from './triton-client';
export { mapGrpcError, grpcStatusName } from './error-mapping';
export { loadInferenceService, protosDir, SERVICE_NAME } from './protos';
export { Http2UnaryChannel } from './http2-unary';
export type {
  Http2UnaryOptions,
  UnaryRequest,
  UnaryCall,
  UnaryCallback,
  UnaryResponseSink,
} from './http2-unary';
export { GrpcCallError } from './grpc-call-error';
export { UnaryMessageReader } from './grpc-message-reader';
export { encodeModelInferRequestFrameParts } from './model-infer-frame';
export { ModelStream } from './model-stream';
export type { ModelStreamOptions } from './model-stream';
export { decodeModelStreamInferResponse } from './wire';
export type { ModelStreamInferResponse } from './wire';
export {
  readModelInferRequestHead,
  decodeModelInferRequest,
  decodeModelInferResponse,
  encodeModelInferResponse,
  MODEL_INFER_PATH,
  MODEL_STREAM_INFER_PATH,
  type ModelInferRequestHead,
} from './wire';
