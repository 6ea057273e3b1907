export { GrpcFront } from './grpc-front';
export type { GrpcFrontDeps, GrpcFrontOptions } from './grpc-front';
export { grpcStatusOf } from './status';
