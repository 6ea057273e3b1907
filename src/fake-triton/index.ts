export { FakeTriton, startFakeTriton } from './fake-triton';
export type { FakeTritonOptions, RestartOptions, StopOptions } from './fake-triton';
export {
  defaultModels,
  identityModel,
  identityModelName,
  repeatModel,
  simpleModel,
  textStreamModel,
} from './models';
export type { DecoupledModel, ModelDefinition, SingleResponseModel, TensorSpec } from './models';
export type { Tensor, TensorMap } from './tensor';
export { decodeBytesElements, encodeBytesElements } from './tensor';
export { STEERING_HEADERS } from './faults';
export type { FailNextRule, FailureRule, Latency, StreamFailureRule } from './faults';
export { RPC_NAMES } from './rpc-names';
export type { RpcName } from './rpc-names';
export type { CallCounts } from './call-counter';
export type { RecordedRequest, StreamCounts } from './service';
export type { LoadBehaviour, ModelState } from './repository';
export { findProtosDir, loadInferenceService } from './proto';
export type * from './wire';
