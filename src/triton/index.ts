export { TritonClient } from './triton-client';
export type { ChannelSettings, CallContext } from './triton-client';
export { mapGrpcError, grpcStatusName } from './error-mapping';
export { loadInferenceService, protosDir } from './protos';
