import Redis from 'ioredis';
import { buildRedisOptions, type RedisConnectionOptions } from '../model-state';
import { entryFromSharedValue, sharedValueOf, type CacheEntry } from './cache-entry';
import type { SharedTier } from './response-cache';

export interface RedisTierOptions {
  connection: RedisConnectionOptions;
  /** Prepended to every key (`<prefix>cache:<key>`). */
  keyPrefix: string;
  /** Longest wait for a read; a slower answer is a miss. */
  timeoutMs: number;
  /** Larger answers are not written. */
  maxEntryBytes: number;
  /** Names the connection in CLIENT LIST. */
  replicaId: string;
  logger: {
    info(message: string, meta?: Record<string, unknown>): void;
    warn(message: string, meta?: Record<string, unknown>): void;
    debug(message: string, meta?: Record<string, unknown>): void;
  };
  /** One Redis round trip, for the Redis metrics. */
  onRedisOp?(op: string, seconds: number, ok: boolean): void;
}

/**
 * The tier shared by all replicas: one Redis string per answer, holding the
 * raw Triton response bytes (never JSON), with the TTL set in Redis. Redis
 * trouble is always a miss and never an error: reads are bounded by a short
 * timeout, nothing is queued while Redis is away, and writes are fire and
 * forget.
 */
export class RedisTier implements SharedTier {
  private readonly client: Redis;
  private readonly prefix: string;
  private up = false;
  private closed = false;
  // Bytes this replica wrote, by the second they expire: live bytes without asking Redis.
  private readonly written = new Map<number, number>();

  constructor(private readonly options: RedisTierOptions) {
    this.prefix = `${options.keyPrefix}cache:`;
    this.client = new Redis(buildRedisOptions(options.connection, `${options.replicaId}:cache`));
    this.client.on('error', (error: Error) =>
      options.logger.debug('cache Redis connection error', { error: error.message }),
    );
    this.client.on('ready', () => this.setUp(true));
    this.client.on('close', () => this.setUp(false));
  }

  start(): void {
    this.client.connect().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    this.client.disconnect();
  }

  async get(key: string, model: string, generation: number): Promise<CacheEntry | undefined> {
    if (this.client.status !== 'ready') return undefined;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        this.client.getBuffer(this.prefix + key),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), this.options.timeoutMs);
        }),
      ]);
      this.options.onRedisOp?.('cache-get', (performance.now() - started) / 1000, true);
      if (value === null) return undefined;
      const entry = entryFromSharedValue(model, generation, value);
      return entry !== undefined && entry.expiresAt > Date.now() ? entry : undefined;
    } catch {
      this.options.onRedisOp?.('cache-get', (performance.now() - started) / 1000, false);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  set(key: string, entry: CacheEntry): void {
    if (this.client.status !== 'ready' || entry.bytes.length > this.options.maxEntryBytes) return;
    const ttlMs = Math.floor(entry.expiresAt - Date.now());
    if (ttlMs <= 0) return;
    const value = Buffer.concat(sharedValueOf(entry));
    const started = performance.now();
    this.client
      .set(this.prefix + key, value, 'PX', ttlMs)
      .then(() => {
        this.options.onRedisOp?.('cache-set', (performance.now() - started) / 1000, true);
        const second = Math.ceil(entry.expiresAt / 1000);
        this.written.set(second, (this.written.get(second) ?? 0) + value.length);
      })
      .catch(() => {
        this.options.onRedisOp?.('cache-set', (performance.now() - started) / 1000, false);
      });
  }

  /** Bytes this replica wrote to the shared tier that have not expired yet. */
  bytes(): number {
    const now = Date.now() / 1000;
    let total = 0;
    for (const [second, bytes] of this.written) {
      if (second <= now) this.written.delete(second);
      else total += bytes;
    }
    return total;
  }

  private setUp(up: boolean): void {
    if (up === this.up || this.closed) return;
    this.up = up;
    if (up) this.options.logger.info('shared cache tier connected to Redis');
    else this.options.logger.warn('shared cache tier lost Redis; serving misses from Triton');
  }
}
