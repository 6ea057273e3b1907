export { TritonClient, DEFAULT_INFER_TRANSPORT } from './triton-client';
export type { ChannelSettings, CallContext, InferTransport } from './triton-client';
export { mapGrpcError, grpcStatusName } from './error-mapping';
export { loadInferenceService, protosDir } from './protos';
export { Http2UnaryChannel } from './http2-unary';
export type { Http2UnaryOptions, UnaryRequest, UnaryCall, UnaryCallback } from './http2-unary';
export { GrpcCallError } from './grpc-call-error';
export { encodeModelInferRequestFrameParts } from './model-infer-frame';
