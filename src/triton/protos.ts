import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The package root holds protos/; walk up from this file (or `startDir`) so
 * the same code works from src/ (tsx) and from dist/src/ (compiled).
 */
export function protosDir(startDir: string = __dirname): string {
  let dir = resolve(startDir);
  for (;;) {
    const candidate = join(dir, 'protos');
    if (existsSync(join(candidate, 'grpc_service.proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find protos/grpc_service.proto above ${startDir}`);
    dir = parent;
  }
}

/**
 * Control-plane messages (metadata, config, statistics, repository) are
 * decoded generically: longs as JS numbers (shapes, counters and durations
 * stay below 2^53) so they render as JSON numbers, enums as their names, and
 * defaults filled in as Triton's JSON renders them.
 */
export function loadInferenceService(): protoLoader.PackageDefinition {
  const dir = protosDir();
  return protoLoader.loadSync(join(dir, 'grpc_service.proto'), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: false,
    includeDirs: [dir],
  });
}

export const SERVICE_PATH = '/inference.GRPCInferenceService/';
export const SERVICE_NAME = 'inference.GRPCInferenceService';

/**
 * proto-loader fills unset message fields with null; Triton's JSON leaves
 * them out. Dropping nulls makes control answers (config, metadata, stats)
 * render as Triton renders them.
 */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => withoutNulls(v)) as T;
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && v !== undefined) out[k] = withoutNulls(v);
  }
  return out as T;
}
