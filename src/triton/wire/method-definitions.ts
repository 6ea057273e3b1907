import type { MethodDefinition } from '@grpc/grpc-js';
import type { ModelInferRequest, ModelInferResponse } from '../../protocol';
import { decodeModelInferRequest, encodeModelInferRequest } from './model-infer-request';
import { decodeModelInferResponse, encodeModelInferResponse } from './model-infer-response';
import {
  type ModelStreamInferResponse,
  decodeModelStreamInferResponse,
  encodeModelStreamInferResponse,
} from './model-stream-infer-response';

export const MODEL_INFER_PATH = '/inference.GRPCInferenceService/ModelInfer';
export const MODEL_STREAM_INFER_PATH = '/inference.GRPCInferenceService/ModelStreamInfer';

/**
 * ModelInfer with this module's codec, for grpc-js `makeGenericClientConstructor`
 * (client side) or `Server.addService` (server side, e.g. a fake Triton).
 * A decode failure reaches a grpc-js client as status INTERNAL
 * "Response message parsing error: <message>".
 */
export function createModelInferMethodDefinition(): MethodDefinition<
  ModelInferRequest,
  ModelInferResponse
> {
  return {
    path: MODEL_INFER_PATH,
    originalName: 'modelInfer',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeModelInferRequest,
    requestDeserialize: decodeModelInferRequest,
    responseSerialize: encodeModelInferResponse,
    responseDeserialize: decodeModelInferResponse,
  };
}

/** ModelStreamInfer (bidirectional stream) with this module's codec. */
export function createModelStreamInferMethodDefinition(): MethodDefinition<
  ModelInferRequest,
  ModelStreamInferResponse
> {
  return {
    path: MODEL_STREAM_INFER_PATH,
    originalName: 'modelStreamInfer',
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeModelInferRequest,
    requestDeserialize: decodeModelInferRequest,
    responseSerialize: encodeModelStreamInferResponse,
    responseDeserialize: decodeModelStreamInferResponse,
  };
}
