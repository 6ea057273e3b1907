export { DATATYPES, isDatatype, elementBytes, isRawOnly, elementCount } from './datatypes';
export type { Datatype } from './datatypes';
export type {
  ParameterValue,
  Parameters,
  InferInputTensor,
  InferRequestedOutput,
  ModelInferRequest,
  InferOutputTensor,
  ModelInferResponse,
} from './messages';
export { ServedExtensions, TRITON_EXTENSIONS } from './extensions';
export type { TritonExtension } from './extensions';
