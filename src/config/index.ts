export { loadConfig, ConfigError } from './load';
export type { Config, LoadConfigOptions } from './load';
export { buildSchema, TRACE_SAMPLERS } from './schema';
export type { TraceSamplerName } from './schema';
export { parseServerList, ServerListError } from './servers';
export type { TritonServerConfig, TlsConfig } from './servers';
export { parseModelGlobs, parseDuration, COALESCE_CACHED_MODELS } from './model-globs';
export type { ModelGlob } from './model-globs';
export { watchFileChanges } from './file-watch';
