import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { LocalState } from './local-state';
import type {
  LoadFailure,
  Logger,
  ModelStateChange,
  ModelStateEntry,
  ModelStateInput,
  ModelStateListener,
  ModelStateLock,
  ModelStateMetrics,
  ModelStateSnapshot,
  ModelStateStore,
  ModelStatus,
  ReplaceOptions,
  ReplicaSeen,
  StoreHealth,
} from './types';

export interface StoreOptions {
  /** How long an entry lives without being written again; keep it above 2-3 reconcile intervals. */
  entryTtlMs: number;
  /** Names this replica in `updatedBy`; defaults to hostname-pid-random. */
  replicaId?: string;
  logger: Logger;
  metrics?: ModelStateMetrics;
}

export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * What both backends share: every write is applied to the local view first
 * (so the caller's own replica sees it at once) and then handed to `persist*`,
 * which the Redis store turns into a shared write plus a published message.
 */
export abstract class StoreBase implements ModelStateStore {
  readonly replicaId: string;
  protected readonly state: LocalState;
  protected readonly entryTtlMs: number;
  protected readonly logger: Logger;
  protected readonly metrics: ModelStateMetrics;

  protected constructor(options: StoreOptions) {
    if (!(options.entryTtlMs > 0)) throw new RangeError('entryTtlMs must be positive');
    this.replicaId = options.replicaId ?? defaultReplicaId();
    this.entryTtlMs = options.entryTtlMs;
    this.logger = options.logger;
    this.metrics = options.metrics ?? {};
    this.state = new LocalState(this.logger, this.metrics);
  }

  abstract health(): StoreHealth;
  abstract replicas(): Promise<readonly ReplicaSeen[]>;
  abstract start(): Promise<void>;
  abstract close(): Promise<void>;
  abstract resync(): Promise<void>;
  abstract tryLease(name: string, ttlMs: number): Promise<boolean>;
  abstract acquireLock(name: string, ttlMs: number): Promise<ModelStateLock | null>;
  protected abstract persistEntries(
    server: string,
    entries: readonly ModelStateEntry[],
    replaceAsOf: number | undefined,
  ): Promise<void>;
  protected abstract persistFailure(failure: LoadFailure): Promise<void>;
  protected abstract persistFailureCleared(model: string, version: string): Promise<void>;
  /** Shares a generation this replica raised; the shared copy may answer with a higher one. */
  protected abstract persistGeneration(model: string, generation: number): Promise<void>;

  snapshot(): ModelStateSnapshot {
    return this.state.snapshot();
  }

  onChange(listener: ModelStateListener): () => void {
    return this.state.onChange(listener);
  }

  async update(inputs: readonly ModelStateInput[]): Promise<readonly ModelStateChange[]> {
    const now = Date.now();
    const byServer = new Map<string, ModelStateEntry[]>();
    for (const input of inputs) {
      const entry = this.stamp(input.server, input, now);
      const list = byServer.get(input.server);
      if (list === undefined) byServer.set(input.server, [entry]);
      else list.push(entry);
    }
    const changes: ModelStateChange[] = [];
    for (const [server, entries] of byServer) {
      changes.push(...this.state.applyServer(server, entries));
    }
    const bumped = this.bumpGenerations(changes);
    this.state.commit('local');
    await Promise.all([
      ...[...byServer].map(([server, entries]) => this.persistEntries(server, entries, undefined)),
      ...bumped.map((model) => this.persistGeneration(model, this.state.generation(model))),
    ]);
    return changes;
  }

  markStatus(
    server: string,
    model: string,
    version: string,
    status: ModelStatus,
    reason = '',
  ): Promise<readonly ModelStateChange[]> {
    return this.update([{ server, model, version, status, reason }]);
  }

  async replaceServer(
    server: string,
    inputs: readonly Omit<ModelStateInput, 'server'>[],
    options: ReplaceOptions = {},
  ): Promise<readonly ModelStateChange[]> {
    const asOf = options.asOf ?? Date.now();
    const entries = inputs.map((input) => this.stamp(server, input, asOf));
    const changes = this.state.applyServer(server, entries, { replaceAsOf: asOf });
    const bumped = this.bumpGenerations(changes);
    this.state.commit('local');
    await Promise.all([
      this.persistEntries(server, entries, asOf),
      ...bumped.map((model) => this.persistGeneration(model, this.state.generation(model))),
    ]);
    return changes;
  }

  removeServer(server: string): Promise<readonly ModelStateChange[]> {
    return this.replaceServer(server, []);
  }

  async recordLoadFailure(
    input: Omit<LoadFailure, 'failedAt' | 'failedBy' | 'until'> & { backoffMs: number },
  ): Promise<void> {
    const now = Date.now();
    const failure: LoadFailure = {
      model: input.model,
      version: input.version,
      server: input.server,
      reason: input.reason,
      code: input.code,
      failedAt: now,
      until: now + input.backoffMs,
      failedBy: this.replicaId,
    };
    this.state.setFailure(failure);
    this.state.commit('local');
    await this.persistFailure(failure);
  }

  async clearLoadFailure(model: string, version: string): Promise<void> {
    if (this.state.snapshot().loadFailure(model, version) === undefined) return;
    this.state.deleteFailure(model, version);
    this.state.commit('local');
    await this.persistFailureCleared(model, version);
  }

  /**
   * A model that became ready or stopped being ready (loaded, reloaded,
   * unloaded, found gone) gets a new generation. Only the replica that writes
   * the change bumps it; the others learn the number from the shared copy.
   */
  private bumpGenerations(changes: readonly ModelStateChange[]): string[] {
    const models = new Set<string>();
    for (const c of changes) {
      if ((c.previous === 'READY') !== (c.current === 'READY')) models.add(c.model);
    }
    for (const model of models) {
      this.state.raiseGeneration(model, this.state.generation(model) + 1);
    }
    return [...models];
  }

  private stamp(
    server: string,
    input: Omit<ModelStateInput, 'server'>,
    updatedAt: number,
  ): ModelStateEntry {
    return {
      server,
      model: input.model,
      version: input.version,
      status: input.status,
      reason: input.reason ?? '',
      updatedAt,
      updatedBy: this.replicaId,
      expiresAt: updatedAt + this.entryTtlMs,
    };
  }
}
