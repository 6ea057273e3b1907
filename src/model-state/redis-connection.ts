import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisConnectionOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. Ignored when sentinels are set. */
  url?: string;
  /** Sentinel addresses; with them the master named `sentinelName` is used. */
  sentinels?: readonly RedisAddress[];
  sentinelName?: string;
  sentinelPassword?: string;
  /** Override the URL's credentials and database. */
  username?: string;
  password?: string;
  db?: number;
  /** TLS to Redis (and to the sentinels). rediss:// turns it on too. */
  tls?: boolean;
  /** Extra TLS settings (CA, client certificate, servername) when TLS is on. */
  tlsOptions?: TlsOptions;
  connectTimeoutMs: number;
  /** A command without a reply after this long fails; the store treats it as a failed write. */
  commandTimeoutMs: number;
  /** TCP keepalive initial delay. */
  keepAliveMs: number;
  maxRetriesPerRequest: number;
  /** Reconnect backoff: exponential from base to max, with jitter. */
  reconnectBaseMs: number;
  reconnectMaxMs: number;
}

/**
 * Exponential backoff with "equal jitter": at least half the step, so a fleet
 * of replicas does not reconnect in lockstep, yet never a near-zero delay.
 */
export function reconnectDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

function fromUrl(url: string): Partial<RedisOptions> & { tls?: TlsOptions } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`Redis URL must start with redis:// or rediss://, got ${parsed.protocol}//`);
  }
  const options: Partial<RedisOptions> & { tls?: TlsOptions } = {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
  };
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '') options.db = Number(db);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return options;
}

/**
 * ioredis settings for the store. The offline queue is off: a write issued
 * while Redis is away fails at once and the store keeps it for the resync,
 * instead of piling up in a queue that could block callers.
 */
export function buildRedisOptions(
  options: RedisConnectionOptions,
  connectionName: string,
): RedisOptions {
  const base: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    autoResubscribe: true,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    keepAlive: options.keepAliveMs,
    maxRetriesPerRequest: options.maxRetriesPerRequest,
    connectionName,
    retryStrategy: (attempt) =>
      reconnectDelay(attempt, options.reconnectBaseMs, options.reconnectMaxMs),
  };
  const tls: TlsOptions | undefined = options.tls ? { ...options.tlsOptions } : undefined;
  if (options.sentinels !== undefined && options.sentinels.length > 0) {
    if (options.sentinelName === undefined || options.sentinelName === '') {
      throw new Error('sentinelName is required when sentinels are configured');
    }
    Object.assign(base, {
      sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
      name: options.sentinelName,
      sentinelPassword: options.sentinelPassword,
      sentinelRetryStrategy: (attempt: number) =>
        reconnectDelay(attempt, options.reconnectBaseMs, options.reconnectMaxMs),
      sentinelCommandTimeout: options.commandTimeoutMs,
    });
    if (tls !== undefined) {
      Object.assign(base, { tls, enableTLSForSentinelMode: true, sentinelTLS: tls });
    }
  } else if (options.url !== undefined && options.url !== '') {
    const parsed = fromUrl(options.url);
    Object.assign(base, parsed);
    if (tls !== undefined) base.tls = { ...parsed.tls, ...tls };
  } else {
    throw new Error('Redis store needs either a url or sentinels');
  }
  if (options.username !== undefined) base.username = options.username;
  if (options.password !== undefined) base.password = options.password;
  if (options.db !== undefined) base.db = options.db;
  return base;
}

/** The `state.*` settings of the proxy's configuration that describe the Redis connection. */
export interface RedisSettings {
  redisUrl: string;
  redisSentinels: string;
  redisSentinelName: string;
  redisPassword: string;
  redisTls: boolean;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  keepAliveMs: number;
}

/** Connection options from configuration: `REDIS_SENTINELS` is `host:port,...`. */
export function redisConnectionFromSettings(s: RedisSettings): RedisConnectionOptions {
  return {
    url: s.redisUrl || undefined,
    sentinels:
      s.redisSentinels === ''
        ? undefined
        : s.redisSentinels.split(',').map((hp) => {
            const i = hp.lastIndexOf(':');
            return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
          }),
    sentinelName: s.redisSentinelName,
    password: s.redisPassword || undefined,
    tls: s.redisTls,
    connectTimeoutMs: s.connectTimeoutMs,
    commandTimeoutMs: s.commandTimeoutMs,
    keepAliveMs: s.keepAliveMs,
    // One try per command: the store handles failures itself (local view, resync).
    maxRetriesPerRequest: 1,
    reconnectBaseMs: 100,
    reconnectMaxMs: 5000,
  };
}
