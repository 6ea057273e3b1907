import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { LocalLocks } from './local-locks';
import { buildRedisOptions, type RedisConnectionOptions } from './redis-connection';
import {
  parseEntry,
  parseFailure,
  parseJson,
  parseMessage,
  type ChangeMessage,
} from './redis-codec';
import { SCRIPTS } from './redis-scripts';
import { entryField } from './snapshot';
import { StoreBase, type StoreOptions } from './store-base';
import type {
  LoadFailure,
  ModelStateEntry,
  ModelStateLock,
  ReplicaSeen,
  StoreHealth,
} from './types';

export interface RedisStoreOptions extends StoreOptions {
  connection: RedisConnectionOptions;
  /** Prepended to every key and to the channel, so several proxies can share one Redis. */
  keyPrefix?: string;
  /** Full resync period: repairs pub/sub messages missed for any reason. */
  resyncIntervalMs: number;
  /** How long start() waits for Redis and the first resync before serving anyway. */
  startTimeoutMs?: number;
}

/**
 * Key layout (P = keyPrefix, default "triton-proxy:"):
 *   P + "server:" + name   hash, one per Triton server; field JSON [model, version],
 *                          value JSON entry; PEXPIRE entryTtl on each write, so a
 *                          server nobody refreshes disappears with its entries
 *   P + "servers"          set of server names that have a hash (resync reads these)
 *   P + "load-failures"    hash, field JSON [model, version], value JSON LoadFailure
 *   P + "epoch"            random id written once; a different or missing value
 *                          means Redis lost its data and replicas push their views back
 *   P + "lease:" + name    holder replica id, PX ttl (reconcile spreading)
 *   P + "lock:" + name     fencing token of the holder, PX ttl
 *   P + "fence:" + name    token counter for the lock (INCR), PEXPIRE a day after the last grant
 * Every key has a TTL or is bounded: server hashes and leases and locks expire,
 * "servers" holds only servers with a live hash, "load-failures" is pruned of
 * ended backoffs on every write, "epoch" is one key.
 *   P + "generations"      hash, field model name, value its generation (only goes up)
 * Channel P + "changes" carries ChangeMessage JSON; each write script publishes it.
 */
export function redisKeys(prefix: string) {
  return {
    servers: `${prefix}servers`,
    server: (name: string) => `${prefix}server:${name}`,
    failures: `${prefix}load-failures`,
    epoch: `${prefix}epoch`,
    lease: (name: string) => `${prefix}lease:${name}`,
    lock: (name: string) => `${prefix}lock:${name}`,
    fence: (name: string) => `${prefix}fence:${name}`,
    generations: `${prefix}generations`,
    channel: `${prefix}changes`,
    /** Sorted set: replica id -> time of its last announcement. */
    replicas: `${prefix}replicas`,
  };
}

/** Replicas announce themselves this often (or every resync interval when shorter). */
const PRESENCE_INTERVAL_MS = 10_000;
/** A replica that missed this many announcements is no longer listed as seen. */
const PRESENCE_MISSED = 3;
/** Announcements older than this are deleted from the set. */
const PRESENCE_FORGET_MS = 10 * 60_000;

/** Fence counters outlive their locks by this much (tokens stay increasing without them: see the script). */
const FENCE_TTL_MS = 24 * 60 * 60 * 1000;

interface DirtyServer {
  /** The latest replace not yet written; undefined when only merges are pending. */
  replaceAsOf: number | undefined;
}

/**
 * The shared store. Every replica keeps the full state locally (LocalState)
 * and Redis is where replicas meet: writes go through scripts that also
 * publish, subscribers apply messages at once, and a periodic resync repairs
 * anything missed. Redis trouble never reaches callers: failed writes are
 * remembered per server and written again by the next resync.
 */
export class RedisModelStateStore extends StoreBase {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly resyncIntervalMs: number;
  private readonly startTimeoutMs: number;
  private readonly fallbackLocks = new LocalLocks();
  private readonly dirty = new Map<string, DirtyServer>();
  private failuresDirty = false;
  /** Generations not yet shared: 'bump' for changes seen, 'raise' for a view to write back. */
  private readonly generationsDirty = new Map<string, 'bump' | 'raise'>();
  private knownEpoch: string | undefined;
  private subscribed = false;
  private up = false;
  private everUp = false;
  private started = false;
  private closed = false;
  private resyncing: Promise<void> | undefined;
  private resyncAgain = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  private readonly presenceIntervalMs: number;
  private readonly firstSync: Promise<void>;
  private firstSyncDone: () => void = () => undefined;

  constructor(options: RedisStoreOptions) {
    super(options);
    this.keys = redisKeys(options.keyPrefix ?? 'triton-proxy:');
    this.resyncIntervalMs = options.resyncIntervalMs;
    this.presenceIntervalMs = Math.max(1, Math.min(options.resyncIntervalMs, PRESENCE_INTERVAL_MS));
    this.startTimeoutMs = options.startTimeoutMs ?? options.connection.connectTimeoutMs;
    this.client = new Redis(buildRedisOptions(options.connection, `${this.replicaId}:state`));
    // Pub/sub needs a connection of its own: a subscribed connection cannot run commands.
    this.subscriber = new Redis(buildRedisOptions(options.connection, `${this.replicaId}:changes`));
    this.firstSync = new Promise((resolve) => (this.firstSyncDone = resolve));
  }

  health(): StoreHealth {
    return { backend: 'redis', up: this.up };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.metrics.onRedisUp?.(false);
    this.watch();
    this.client.connect().catch(() => undefined);
    this.subscriber.connect().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>(
      (resolve) => (timer = setTimeout(resolve, this.startTimeoutMs)),
    );
    await Promise.race([this.firstSync, timeout]);
    clearTimeout(timer);
    if (!this.up) {
      const message = "Redis not reachable at start; serving from this replica's own model state";
      this.logger.warn(message, { backend: 'redis' });
    }
    this.resyncTimer = setInterval(() => void this.resync(), this.resyncIntervalMs);
    this.resyncTimer.unref();
    void this.announce();
    this.presenceTimer = setInterval(() => void this.announce(), this.presenceIntervalMs);
    this.presenceTimer.unref();
  }

  /** Says "this replica is here" in the replicas set, and forgets replicas long silent. */
  private async announce(): Promise<void> {
    if (!this.writable()) return;
    const now = Date.now();
    try {
      await this.timed('announce', () =>
        this.client
          .multi()
          .zadd(this.keys.replicas, now, this.replicaId)
          .zremrangebyscore(this.keys.replicas, '-inf', now - PRESENCE_FORGET_MS)
          .exec(),
      );
    } catch {
      // The status page shows fewer replicas until the next announcement; nothing else depends on it.
    }
  }

  async replicas(): Promise<readonly ReplicaSeen[]> {
    const self: ReplicaSeen = { id: this.replicaId, lastSeenAt: Date.now(), self: true };
    if (!this.writable()) return [self];
    try {
      const since = Date.now() - PRESENCE_MISSED * this.presenceIntervalMs;
      const flat = await this.timed('replicas', () =>
        this.client.zrangebyscore(this.keys.replicas, since, '+inf', 'WITHSCORES'),
      );
      const seen: ReplicaSeen[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const id = flat[i]!;
        if (id !== this.replicaId) seen.push({ id, lastSeenAt: Number(flat[i + 1]), self: false });
      }
      return [self, ...seen.sort((a, b) => a.id.localeCompare(b.id))];
    } catch {
      return [self];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.resyncTimer);
    clearInterval(this.presenceTimer);
    this.state.close();
    this.firstSyncDone();
    await Promise.all([this.client, this.subscriber].map((redis) => this.disconnect(redis)));
    this.updateUp();
  }

  resync(): Promise<void> {
    if (this.resyncing !== undefined) {
      // The caller wants a resync that starts after its call: run once more.
      this.resyncAgain = true;
      return this.resyncing;
    }
    const run = async () => {
      try {
        do {
          this.resyncAgain = false;
          await this.resyncOnce();
        } while (this.resyncAgain && !this.closed);
      } finally {
        this.resyncing = undefined;
      }
    };
    this.resyncing = run();
    return this.resyncing;
  }

  async tryLease(name: string, ttlMs: number): Promise<boolean> {
    if (!this.writable()) return true;
    try {
      const granted = await this.timed('try-lease', () =>
        SCRIPTS.tryLease.run(this.client, [this.keys.lease(name)], [this.replicaId, ttlMs]),
      );
      return granted === 1;
    } catch (error) {
      this.logger.debug('lease failed; doing the job anyway', {
        lease: name,
        error: String(error),
      });
      return true;
    }
  }

  async acquireLock(name: string, ttlMs: number): Promise<ModelStateLock | null> {
    if (!this.writable()) return this.fallbackLocks.acquire(name, ttlMs);
    try {
      const token = await this.timed('acquire-lock', () =>
        SCRIPTS.acquireLock.run(
          this.client,
          [this.keys.lock(name), this.keys.fence(name)],
          [ttlMs, Date.now(), FENCE_TTL_MS],
        ),
      );
      return token === null ? null : this.sharedLock(name, Number(token));
    } catch (error) {
      // Degrade to excluding this replica's callers rather than failing the caller.
      this.logger.debug('shared lock failed; using a local lock', {
        lock: name,
        error: String(error),
      });
      return this.fallbackLocks.acquire(name, ttlMs);
    }
  }

  protected async persistEntries(
    server: string,
    entries: readonly ModelStateEntry[],
    replaceAsOf: number | undefined,
  ): Promise<void> {
    if (!(await this.writeEntries(server, entries, replaceAsOf)))
      this.markDirty(server, replaceAsOf);
  }

  protected async persistFailure(failure: LoadFailure): Promise<void> {
    const message: ChangeMessage = { kind: 'failure', origin: this.replicaId, failure };
    const field = entryField(failure.model, failure.version);
    if (!(await this.writeFailure(field, JSON.stringify(failure), message))) {
      this.failuresDirty = true;
    }
  }

  protected async persistFailureCleared(model: string, version: string): Promise<void> {
    const message: ChangeMessage = {
      kind: 'failure-cleared',
      origin: this.replicaId,
      model,
      version,
    };
    // A lost clear only delays retries until the failure's backoff ends.
    await this.writeFailure(entryField(model, version), '', message);
  }

  protected async persistGeneration(model: string, generation: number): Promise<void> {
    if (!(await this.writeGeneration(model, generation, 'bump'))) {
      this.generationsDirty.set(model, 'bump');
    }
  }

  /** True when written; the shared number, if higher, is taken over locally. */
  private async writeGeneration(
    model: string,
    generation: number,
    mode: 'bump' | 'raise',
  ): Promise<boolean> {
    if (!this.writable()) return false;
    try {
      const shared = await this.timed('set-generation', () =>
        SCRIPTS.setGeneration.run(
          this.client,
          [this.keys.generations],
          [this.keys.channel, this.replicaId, model, generation, mode],
        ),
      );
      if (this.state.raiseGeneration(model, Number(shared))) this.state.commit('local');
      return true;
    } catch (error) {
      this.logger.debug('generation write deferred', { model, error: String(error) });
      return false;
    }
  }

  private writable(): boolean {
    return !this.closed && this.client.status === 'ready';
  }

  private sharedLock(name: string, token: number): ModelStateLock {
    const key = this.keys.lock(name);
    return {
      name,
      token,
      scope: 'shared',
      release: async () => {
        try {
          const released = await this.timed('release-lock', () =>
            SCRIPTS.releaseLock.run(this.client, [key], [token]),
          );
          return released === 1;
        } catch {
          // Unreleased, the lock simply expires at its TTL.
          return false;
        }
      },
      extend: async (ttlMs: number) => {
        try {
          const extended = await this.timed('extend-lock', () =>
            SCRIPTS.extendLock.run(this.client, [key, this.keys.fence(name)], [token, ttlMs]),
          );
          return extended === 1;
        } catch {
          return false;
        }
      },
    };
  }

  private async writeEntries(
    server: string,
    entries: readonly ModelStateEntry[],
    replaceAsOf: number | undefined,
  ): Promise<boolean> {
    if (!this.writable()) return false;
    const message: ChangeMessage = {
      kind: 'entries',
      origin: this.replicaId,
      server,
      replaceAsOf: replaceAsOf ?? null,
      entries: [...entries],
    };
    const args: (string | number)[] = [
      this.keys.channel,
      JSON.stringify(message),
      this.entryTtlMs,
      Date.now(),
      replaceAsOf ?? '',
      server,
    ];
    for (const entry of entries) {
      args.push(
        entryField(entry.model, entry.version),
        JSON.stringify(entry),
        entry.updatedAt,
        entry.updatedBy,
      );
    }
    try {
      await this.timed('apply-state', () =>
        SCRIPTS.applyState.run(this.client, [this.keys.server(server), this.keys.servers], args),
      );
      return true;
    } catch (error) {
      this.logger.debug('model-state write deferred', { server, error: String(error) });
      return false;
    }
  }

  private async writeFailure(
    field: string,
    value: string,
    message: ChangeMessage,
  ): Promise<boolean> {
    if (!this.writable()) return false;
    try {
      await this.timed('set-failure', () =>
        SCRIPTS.setFailure.run(
          this.client,
          [this.keys.failures],
          [this.keys.channel, JSON.stringify(message), field, value, Date.now()],
        ),
      );
      return true;
    } catch (error) {
      this.logger.debug('load-failure write deferred', { error: String(error) });
      return false;
    }
  }

  private markDirty(server: string, replaceAsOf: number | undefined): void {
    const pending = this.dirty.get(server)?.replaceAsOf;
    const latest = pending === undefined ? replaceAsOf : Math.max(pending, replaceAsOf ?? pending);
    this.dirty.set(server, { replaceAsOf: latest });
  }

  private async resyncOnce(): Promise<void> {
    if (!this.writable()) return;
    try {
      await this.checkEpoch();
      await this.pushPending();
      await this.pushGenerations();
      await this.pullShared();
      this.firstSyncDone();
    } catch (error) {
      // While Redis answers, a failing resync is a real problem (at most one line per interval);
      // during an outage it is expected and the up/down lines already say so.
      const log = this.up ? this.logger.warn : this.logger.debug;
      log.call(this.logger, 'model-state resync failed; will retry', { error: String(error) });
    }
  }

  /** Detects that Redis lost its data (restart without persistence, flush, new master). */
  private async checkEpoch(): Promise<void> {
    let epoch = await this.timed('epoch', () => this.client.get(this.keys.epoch));
    if (epoch === null) {
      await this.timed('epoch', () => this.client.set(this.keys.epoch, randomUUID(), 'NX'));
      epoch = await this.timed('epoch', () => this.client.get(this.keys.epoch));
    }
    if (epoch === null) throw new Error('epoch key vanished');
    if (this.knownEpoch !== undefined && epoch !== this.knownEpoch) {
      this.logger.warn("Redis lost the shared model state; writing this replica's view back", {
        servers: this.state.serverNames().length,
      });
      for (const server of this.state.serverNames()) this.markDirty(server, undefined);
      this.failuresDirty = true;
      for (const [model] of this.state.generationList()) {
        if (!this.generationsDirty.has(model)) this.generationsDirty.set(model, 'raise');
      }
    }
    this.knownEpoch = epoch;
  }

  /** Writes what failed to reach Redis; stops the resync if Redis still refuses. */
  private async pushPending(): Promise<void> {
    for (const [server, pending] of [...this.dirty]) {
      this.dirty.delete(server);
      const entries = this.state.serverEntries(server);
      if (!(await this.writeEntries(server, entries, pending.replaceAsOf))) {
        this.markDirty(server, pending.replaceAsOf);
        throw new Error(`could not write back state of server ${server}`);
      }
    }
    if (this.failuresDirty) {
      this.failuresDirty = false;
      for (const failure of this.state.failureList()) {
        const message: ChangeMessage = { kind: 'failure', origin: this.replicaId, failure };
        const field = entryField(failure.model, failure.version);
        if (!(await this.writeFailure(field, JSON.stringify(failure), message))) {
          this.failuresDirty = true;
          throw new Error('could not write back load failures');
        }
      }
    }
  }

  private async pushGenerations(): Promise<void> {
    for (const [model, mode] of [...this.generationsDirty]) {
      this.generationsDirty.delete(model);
      if (!(await this.writeGeneration(model, this.state.generation(model), mode))) {
        this.generationsDirty.set(model, mode);
        throw new Error(`could not write back the generation of model ${model}`);
      }
    }
  }

  private async pullShared(): Promise<void> {
    const readStartedAt = Date.now();
    const names = await this.timed('resync-read', () => this.client.smembers(this.keys.servers));
    const pipeline = this.client.pipeline();
    for (const name of names) pipeline.hgetall(this.keys.server(name));
    pipeline.hgetall(this.keys.failures);
    pipeline.hgetall(this.keys.generations);
    const results = await this.timed('resync-read', () => pipeline.exec());
    if (results === null) throw new Error('resync pipeline was discarded');
    const hashes: Record<string, string>[] = results.map(([error, value]) => {
      if (error !== null) throw error;
      return value as Record<string, string>;
    });
    const now = Date.now();
    const shared = new Map<string, ModelStateEntry[]>();
    names.forEach((name, index) => {
      const entries = Object.values(hashes[index] ?? {})
        .map((raw) => parseEntry(parseJson(raw)))
        .filter(
          (entry): entry is ModelStateEntry => entry?.server === name && entry.expiresAt > now,
        );
      if (entries.length > 0) shared.set(name, entries);
      else this.pruneServer(name);
    });
    const failures = Object.values(hashes[names.length] ?? {})
      .map((raw) => parseFailure(parseJson(raw)))
      .filter((failure): failure is LoadFailure => failure !== undefined);
    for (const server of new Set([...shared.keys(), ...this.state.serverNames()])) {
      this.state.applyServer(server, shared.get(server) ?? [], { readStartedAt });
    }
    this.state.replaceFailures(failures, readStartedAt);
    for (const [model, raw] of Object.entries(hashes[names.length + 1] ?? {})) {
      const generation = Number(raw);
      if (Number.isSafeInteger(generation)) this.state.raiseGeneration(model, generation);
    }
    this.state.commit('resync');
  }

  private pruneServer(name: string): void {
    SCRIPTS.pruneServer
      .run(this.client, [this.keys.server(name), this.keys.servers], [name])
      .catch(() => undefined);
  }

  private onMessage(channel: string, raw: string): void {
    if (channel !== this.keys.channel) return;
    const message = parseMessage(raw);
    if (message === undefined) {
      this.logger.debug('ignored malformed model-state message', { size: raw.length });
      return;
    }
    // Own writes were applied locally before they were sent.
    if (message.origin === this.replicaId) return;
    switch (message.kind) {
      case 'entries':
        this.state.applyServer(message.server, message.entries, {
          replaceAsOf: message.replaceAsOf ?? undefined,
        });
        break;
      case 'failure': {
        const known = this.state
          .snapshot()
          .loadFailure(message.failure.model, message.failure.version);
        if (
          message.failure.until > Date.now() &&
          (known?.failedAt ?? 0) <= message.failure.failedAt
        ) {
          this.state.setFailure(message.failure);
        }
        break;
      }
      case 'failure-cleared':
        this.state.deleteFailure(message.model, message.version);
        break;
      case 'generation':
        this.state.raiseGeneration(message.model, message.generation);
        break;
    }
    this.state.commit('remote');
  }

  private watch(): void {
    for (const redis of [this.client, this.subscriber]) {
      // Without a listener ioredis prints every connection error; the up/down log line says enough.
      redis.on('error', (error: Error) =>
        this.logger.debug('Redis connection error', { error: error.message }),
      );
      redis.on('close', () => {
        if (redis === this.subscriber) this.subscribed = false;
        this.updateUp();
      });
      redis.on('end', () => this.updateUp());
    }
    this.client.on('ready', () => this.updateUp());
    this.subscriber.on('ready', () => {
      // Subscribe ourselves (autoResubscribe is not awaited) so that "up" means
      // messages flow; only then does the resync run, leaving no gap.
      this.subscriber
        .subscribe(this.keys.channel)
        .then(() => {
          this.subscribed = true;
          this.updateUp();
        })
        .catch((error: unknown) =>
          this.logger.debug('subscribe failed; will retry on reconnect', { error: String(error) }),
        );
    });
    this.subscriber.on('message', (channel: string, raw: string) => this.onMessage(channel, raw));
  }

  private updateUp(): void {
    const up =
      !this.closed &&
      this.client.status === 'ready' &&
      this.subscriber.status === 'ready' &&
      this.subscribed;
    if (up === this.up) return;
    this.up = up;
    this.metrics.onRedisUp?.(up);
    if (up) {
      this.logger.info(
        this.everUp ? 'Redis reachable again; resyncing model state' : 'Redis connected',
        {
          backend: 'redis',
        },
      );
      this.everUp = true;
      void this.resync();
    } else if (!this.closed) {
      this.logger.warn(
        "Redis unreachable; serving from this replica's model state until it returns",
        {
          backend: 'redis',
        },
      );
    }
  }

  private async disconnect(redis: Redis): Promise<void> {
    if (redis.status === 'ready') {
      try {
        await redis.quit();
        return;
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    redis.disconnect();
  }

  private async timed<T>(op: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      this.metrics.onRedisOp?.(op, (performance.now() - started) / 1000, true);
      return result;
    } catch (error) {
      this.metrics.onRedisOp?.(op, (performance.now() - started) / 1000, false);
      throw error;
    }
  }
}
