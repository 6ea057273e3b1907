import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protosDir } from '../triton/protos';

const SERVICE_NAME = 'inference.GRPCInferenceService';
const SERVICE_PROTO = 'grpc_service.proto';

/** The package root's `protos/` directory (shared with the proxy's client). */
export const findProtosDir = protosDir;

/**
 * Triton's service as proto-loader decodes it. The fake decodes with
 * proto-loader on purpose: it is an implementation independent of the
 * proxy's hand-written encoder, so tests against it validate that encoder.
 */
export function loadInferenceService(protosDir: string = findProtosDir()): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(path.join(protosDir, SERVICE_PROTO), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [protosDir],
  });
  const service = definition[SERVICE_NAME];
  if (service === undefined || 'format' in service) {
    throw new Error(`${SERVICE_NAME} is not a service in ${protosDir}/${SERVICE_PROTO}`);
  }
  return service as grpc.ServiceDefinition;
}
