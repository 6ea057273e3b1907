import type { ErrorCode } from '../errors';

/** Load state of one model version on one Triton server, as the fleet shares it. */
export type ModelStatus = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

export const MODEL_STATUSES: readonly ModelStatus[] = [
  'READY',
  'LOADING',
  'UNLOADING',
  'UNAVAILABLE',
];

/**
 * One (server, model, version) fact. Version '' stands for "the model's default
 * version" (what Triton serves when a request names no version).
 */
export interface ModelStateEntry {
  readonly server: string;
  readonly model: string;
  readonly version: string;
  readonly status: ModelStatus;
  readonly reason: string;
  /** When the fact was observed or written, ms since epoch; newest write wins. */
  readonly updatedAt: number;
  /** Replica id of the writer. */
  readonly updatedBy: string;
  /** The fact is dropped at this time unless it is written again. */
  readonly expiresAt: number;
}

/** What callers write; the store stamps time, writer and expiry. */
export interface ModelStateInput {
  readonly server: string;
  readonly model: string;
  readonly version: string;
  readonly status: ModelStatus;
  readonly reason?: string;
}

/** A status transition seen by this replica (added: previous undefined; removed: current undefined). */
export interface ModelStateChange {
  readonly server: string;
  readonly model: string;
  readonly version: string;
  readonly previous: ModelStatus | undefined;
  readonly current: ModelStatus | undefined;
}

/**
 * A load that failed recently. While it is remembered, every replica fails
 * requests that would trigger the same load at once instead of retrying it.
 */
export interface LoadFailure {
  readonly model: string;
  readonly version: string;
  readonly server: string;
  readonly reason: string;
  readonly code: ErrorCode;
  readonly failedAt: number;
  /** End of the backoff period, ms since epoch. */
  readonly until: number;
  readonly failedBy: string;
}

export type ChangeOrigin = 'local' | 'remote' | 'resync' | 'expiry';

export interface ModelStateEvent {
  readonly origin: ChangeOrigin;
  readonly changes: readonly ModelStateChange[];
  /** True when load-failure records were added, replaced or removed. */
  readonly failuresChanged: boolean;
  /** Models whose generation went up (see ModelStateSnapshot.generation). */
  readonly generationsChanged: readonly string[];
  readonly snapshot: ModelStateSnapshot;
}

export type ModelStateListener = (event: ModelStateEvent) => void;

/**
 * Immutable view of the shared state at one moment. Built locally, so reading
 * it never waits on Redis; a new snapshot (with a higher `version`) replaces it
 * after every change, so derived data can be cached per `version`.
 */
export interface ModelStateSnapshot {
  readonly version: number;
  /** Servers where the model is READY; version '' matches any version. Sorted by name. */
  readyServers(model: string, version?: string): readonly string[];
  /** Servers where the model is LOADING; version '' matches any version. Sorted by name. */
  loadingServers(model: string, version?: string): readonly string[];
  /**
   * Status of the model on one server. With version '' the best status over all
   * versions (READY, then LOADING, UNLOADING, UNAVAILABLE).
   */
  status(server: string, model: string, version?: string): ModelStatus | undefined;
  entry(server: string, model: string, version: string): ModelStateEntry | undefined;
  /** True when any server has an entry for the model, whatever its status. */
  isKnown(model: string): boolean;
  entriesForModel(model: string): readonly ModelStateEntry[];
  entriesForServer(server: string): readonly ModelStateEntry[];
  servers(): readonly string[];
  entries(): readonly ModelStateEntry[];
  loadFailure(model: string, version: string): LoadFailure | undefined;
  loadFailures(): readonly LoadFailure[];
  /**
   * A number that goes up, on every replica, whenever the model became ready
   * or stopped being ready anywhere in the fleet (a load, reload or unload):
   * whatever was derived from the model's answers under an older generation
   * (cached responses) is stale. 0 for a model never seen changing.
   */
  generation(model: string): number;
}

/** An exclusive lock; `token` increases with every grant of the same name (a fencing token). */
export interface ModelStateLock {
  readonly name: string;
  readonly token: number;
  /** 'local' when Redis was unreachable and the lock only excludes this replica. */
  readonly scope: 'shared' | 'local';
  /** Releases the lock if this holder still owns it; false when it had expired or been taken over. */
  release(): Promise<boolean>;
  /** Pushes the expiry out to ttlMs from now if this holder still owns it. */
  extend(ttlMs: number): Promise<boolean>;
}

/** A proxy replica that announced itself in shared state recently. */
export interface ReplicaSeen {
  readonly id: string;
  /** Its last announcement, ms since epoch. */
  readonly lastSeenAt: number;
  /** This replica. */
  readonly self: boolean;
}

export interface StoreHealth {
  readonly backend: 'memory' | 'redis';
  readonly up: boolean;
}

export interface ReplaceOptions {
  /**
   * When the truth being written was observed (ms since epoch; default now).
   * Entries written after this moment by anyone survive the replace.
   */
  readonly asOf?: number;
}

export interface ModelStateStore {
  readonly replicaId: string;
  /** Local, synchronous, never touches Redis: the only call on the request hot path. */
  snapshot(): ModelStateSnapshot;
  /**
   * Applies the entries locally at once, then writes and publishes them. The
   * promise settles when the shared write is done or has been deferred (Redis
   * down); it never rejects.
   */
  update(entries: readonly ModelStateInput[]): Promise<readonly ModelStateChange[]>;
  markStatus(
    server: string,
    model: string,
    version: string,
    status: ModelStatus,
    reason?: string,
  ): Promise<readonly ModelStateChange[]>;
  /** The full truth for one server: its entries not listed (and not newer than asOf) are removed. */
  replaceServer(
    server: string,
    entries: readonly Omit<ModelStateInput, 'server'>[],
    options?: ReplaceOptions,
  ): Promise<readonly ModelStateChange[]>;
  removeServer(server: string): Promise<readonly ModelStateChange[]>;
  recordLoadFailure(
    failure: Omit<LoadFailure, 'failedAt' | 'failedBy' | 'until'> & { backoffMs: number },
  ): Promise<void>;
  clearLoadFailure(model: string, version: string): Promise<void>;
  /** Fires after local and remote changes; returns an unsubscribe function. */
  onChange(listener: ModelStateListener): () => void;
  /** Reconciles the local view with the shared one now (no-op in memory). Never rejects. */
  resync(): Promise<void>;
  /**
   * A short lease so that one replica does a periodic job per interval. Held
   * leases are renewed by their holder. True when Redis is unreachable, so
   * every replica falls back to doing the job itself.
   */
  tryLease(name: string, ttlMs: number): Promise<boolean>;
  /** An exclusive lock with a fencing token, or null when someone else holds it. */
  acquireLock(name: string, ttlMs: number): Promise<ModelStateLock | null>;
  health(): StoreHealth;
  /**
   * Replicas seen recently (this one always included), for the status page:
   * read from Redis on each call, never on the request path. Only this one
   * in memory or while Redis is unreachable. Never rejects.
   */
  replicas(): Promise<readonly ReplicaSeen[]>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The minimal logger the module needs; winston's logger satisfies it. */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export type LoadOutcome = 'started' | 'succeeded' | 'failed' | 'coalesced';
export type ReconcileOutcome = 'ok' | 'failed' | 'skipped';

/**
 * Hooks for metrics, all optional, so main.ts can feed prom-client without
 * this module owning any registry.
 */
export interface ModelStateMetrics {
  /** One Redis round trip (a command, script or pipeline). */
  onRedisOp?(op: string, seconds: number, ok: boolean): void;
  /** A hot-path lookup of ready servers; hit when at least one server is READY. */
  onLookup?(hit: boolean): void;
  onRedisUp?(up: boolean): void;
  /** One server reconciled (or skipped because another replica holds its lease). */
  onReconcile?(outcome: ReconcileOutcome, changes: number): void;
  /** Each failed index read of a server (stale: its last known state is kept), and the first success after. */
  onIndexStale?(server: string, stale: boolean): void;
  onLoad?(outcome: LoadOutcome): void;
}
