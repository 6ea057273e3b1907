import convict from 'convict';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import yaml from 'js-yaml';
import { buildSchema } from './schema';
import { parseCoalesceModels, parseModelGlobs, type ModelGlob } from './model-globs';
import {
  normalizeServerObjects,
  parseModelLimits,
  parseServerList,
  validateAddress,
  type TritonServerConfig,
} from './servers';

convict.addParser({ extension: ['yml', 'yaml'], parse: (text: string) => yaml.load(text) });

type Raw = ReturnType<ReturnType<typeof buildSchema>['getProperties']>;

export type Config = Omit<Raw, 'triton' | 'admission' | 'replicaId' | 'cache'> & {
  cache: Omit<Raw['cache'], 'models' | 'coalesceModels'> & {
    models: ModelGlob[];
    coalesceModels: ModelGlob[];
  };
  triton: Omit<Raw['triton'], 'servers'> & { servers: TritonServerConfig[] };
  admission: Omit<Raw['admission'], 'modelLimits'> & {
    modelLimits: Record<string, { maxInflight: number; maxQueue: number }>;
  };
  replicaId: string;
};

/** A configuration problem, with the key it is about in the message. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Skip the "at least one server" rule (health CLI, tests of parts). */
  allowNoServers?: boolean;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  // convict reads env itself; hand it the map we were given so tests stay hermetic.
  const conf = buildSchema({ env, args: [] });
  const file = env.CONFIG_FILE;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`CONFIG_FILE: file '${file}' does not exist`);
    try {
      conf.loadFile(file);
    } catch (err) {
      throw new ConfigError(`CONFIG_FILE: cannot read '${file}': ${(err as Error).message}`);
    }
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${withEnvNames((err as Error).message, conf)}`);
  }
  const raw = conf.getProperties() as Raw;
  return finish(raw, env, options.allowNoServers === true);
}

function finish(raw: Raw, env: NodeJS.ProcessEnv, allowNoServers: boolean): Config {
  let servers: TritonServerConfig[];
  const rawServers: unknown = raw.triton.servers;
  try {
    if (typeof rawServers === 'string') servers = parseServerList(rawServers);
    else if (Array.isArray(rawServers)) servers = normalizeServerObjects(rawServers);
    else throw new Error('triton.servers must be a string or an array');
  } catch (err) {
    throw new ConfigError(`triton.servers (TRITON_SERVERS): ${(err as Error).message}`);
  }
  const tls = raw.triton.tls;
  if (tls.enabled) {
    for (const s of servers) s.tls ??= { ...tls };
  }
  if (raw.triton.discoveryDns !== '') {
    try {
      validateAddress(raw.triton.discoveryDns, 'TRITON_DISCOVERY_DNS');
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  if (
    !allowNoServers &&
    servers.length === 0 &&
    raw.triton.discoveryDns === '' &&
    !raw.demo.backend
  ) {
    throw new ConfigError(
      'triton.servers (TRITON_SERVERS): no Triton server configured; set TRITON_SERVERS or TRITON_DISCOVERY_DNS (or DEMO_BACKEND=true for the built-in demo backend)',
    );
  }
  let modelLimits: Config['admission']['modelLimits'];
  try {
    modelLimits = parseModelLimits(raw.admission.modelLimits);
  } catch (err) {
    throw new ConfigError(`admission.modelLimits (MODEL_LIMITS): ${(err as Error).message}`);
  }
  const { tlsCertFile, tlsKeyFile, tlsClientCaFile } = raw.http;
  if ((tlsCertFile === '') !== (tlsKeyFile === '')) {
    throw new ConfigError(
      tlsCertFile === ''
        ? 'http.tlsCertFile (TLS_CERT_FILE) is needed with TLS_KEY_FILE'
        : 'http.tlsKeyFile (TLS_KEY_FILE) is needed with TLS_CERT_FILE',
    );
  }
  if (tlsClientCaFile !== '' && tlsCertFile === '') {
    throw new ConfigError(
      'http.tlsClientCaFile (TLS_CLIENT_CA_FILE) needs TLS_CERT_FILE and TLS_KEY_FILE',
    );
  }
  if (raw.retry.maxAttempts < 1)
    throw new ConfigError('retry.maxAttempts (RETRY_MAX_ATTEMPTS) must be >= 1');
  if (raw.retry.budgetRatio < 0 || raw.retry.budgetRatio > 1) {
    throw new ConfigError('retry.budgetRatio (RETRY_BUDGET_RATIO) must be between 0 and 1');
  }
  if (raw.triton.channelsPerServer < 1) {
    throw new ConfigError('triton.channelsPerServer (GRPC_CHANNELS_PER_SERVER) must be >= 1');
  }
  if (raw.admission.maxInflight < 1 || raw.admission.modelMaxInflight < 1) {
    throw new ConfigError(
      'admission.maxInflight (MAX_INFLIGHT) and MODEL_MAX_INFLIGHT must be >= 1',
    );
  }
  if (raw.compression.level < 1 || raw.compression.level > 9) {
    throw new ConfigError('compression.level (RESPONSE_COMPRESSION_LEVEL) must be from 1 to 9');
  }
  const replicaId = raw.replicaId || `${env.HOSTNAME ?? hostname()}-${process.pid}`;
  return {
    ...raw,
    cache: cacheSettings(raw),
    triton: { ...raw.triton, servers },
    admission: { ...raw.admission, modelLimits },
    replicaId,
  };
}

function cacheSettings(raw: Raw): Config['cache'] {
  let models: ModelGlob[];
  let coalesceModels: ModelGlob[];
  try {
    models = parseModelGlobs(raw.cache.models, 'CACHE_MODELS', { ttl: 'required' });
  } catch (err) {
    throw new ConfigError(`cache.models (CACHE_MODELS): ${(err as Error).message}`);
  }
  try {
    coalesceModels = parseCoalesceModels(raw.cache.coalesceModels, models);
  } catch (err) {
    throw new ConfigError(`cache.coalesceModels (COALESCE_MODELS): ${(err as Error).message}`);
  }
  const c = raw.cache;
  if (models.length > 0 && c.maxEntryBytes > c.maxBytes) {
    throw new ConfigError(
      'cache.maxEntryBytes (CACHE_MAX_ENTRY_BYTES) must not exceed cache.maxBytes (CACHE_MAX_BYTES)',
    );
  }
  if (
    c.shared &&
    c.redisUrl === '' &&
    raw.state.redisUrl === '' &&
    raw.state.redisSentinels === ''
  ) {
    throw new ConfigError(
      'cache.shared (CACHE_SHARED): the shared tier needs Redis; set REDIS_URL, REDIS_SENTINELS or CACHE_REDIS_URL',
    );
  }
  return { ...c, models, coalesceModels };
}

interface SchemaNode {
  env?: string;
  _cvtProperties?: Record<string, SchemaNode>;
}

/** convict names the key ("http.port"); operators set env vars, so name both ("http.port (PORT)"). */
function withEnvNames(message: string, conf: { getSchema(): unknown }): string {
  const envOf = new Map<string, string>();
  const walk = (node: Record<string, SchemaNode>, path: string[]) => {
    for (const [key, value] of Object.entries(node)) {
      if (value._cvtProperties) walk(value._cvtProperties, [...path, key]);
      else if (value.env) envOf.set([...path, key].join('.'), value.env);
    }
  };
  walk((conf.getSchema() as SchemaNode)._cvtProperties ?? {}, []);
  return message.replace(/^([\w.]+):/gm, (whole, key: string) =>
    envOf.has(key) ? `${key} (${envOf.get(key)}):` : whole,
  );
}
