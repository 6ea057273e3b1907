import { entryField, StateSnapshot, type ServerEntries } from './snapshot';
import type {
  ChangeOrigin,
  LoadFailure,
  Logger,
  ModelStateChange,
  ModelStateEntry,
  ModelStateListener,
  ModelStateMetrics,
  ModelStateSnapshot,
} from './types';

const EMPTY: ServerEntries = new Map();

export interface ApplyMode {
  /** Replace semantics: unlisted entries written at or before this time are removed. */
  replaceAsOf?: number;
  /**
   * Resync semantics: unlisted entries this replica learned before the shared
   * copy was read are removed (someone removed them, or they expired there).
   */
  readStartedAt?: number;
}
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Newest write wins; the writer id breaks ties so that every replica, and the
 * Redis script, picks the same winner whatever order writes arrive in.
 */
export function isNewer(
  a: Pick<ModelStateEntry, 'updatedAt' | 'updatedBy'>,
  b: Pick<ModelStateEntry, 'updatedAt' | 'updatedBy'>,
): boolean {
  return a.updatedAt > b.updatedAt || (a.updatedAt === b.updatedAt && a.updatedBy > b.updatedBy);
}

function sameEntry(a: ModelStateEntry, b: ModelStateEntry): boolean {
  return (
    a.updatedAt === b.updatedAt &&
    a.updatedBy === b.updatedBy &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.expiresAt === b.expiresAt
  );
}

/**
 * One replica's view of the shared state, the same for both store backends.
 * Mutations collect changes; `commit` publishes them as one event. Server maps
 * are copied on write so that snapshots can share them.
 */
export class LocalState {
  private readonly byServer = new Map<string, ServerEntries>();
  private readonly earliestExpiry = new Map<string, number>();
  private failures: ReadonlyMap<string, LoadFailure> = new Map();
  private generations: ReadonlyMap<string, number> = new Map();
  private pendingGenerations: string[] = [];
  private current: StateSnapshot | undefined;
  private version = 0;
  private pending: ModelStateChange[] = [];
  private pendingFailures = false;
  private readonly listeners = new Set<ModelStateListener>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  // When this replica learned each entry or failure (its own clock), for resync decisions.
  private readonly learnedAt = new WeakMap<object, number>();

  constructor(
    private readonly logger: Logger,
    private readonly metrics: ModelStateMetrics,
  ) {}

  snapshot(): ModelStateSnapshot {
    if (this.current === undefined) {
      this.version += 1;
      this.current = new StateSnapshot(
        this.version,
        new Map(this.byServer),
        this.failures,
        this.metrics,
        this.generations,
      );
    }
    return this.current;
  }

  serverNames(): string[] {
    return [...this.byServer.keys()];
  }

  serverEntries(server: string): ModelStateEntry[] {
    return [...(this.byServer.get(server) ?? EMPTY).values()];
  }

  failureList(): LoadFailure[] {
    return [...this.failures.values()];
  }

  /**
   * Merges entries for one server, newest write winning per entry. With a
   * replace or resync mode, unlisted entries are removed unless they are newer
   * than what the caller observed. Returns the status changes it caused.
   */
  applyServer(
    server: string,
    entries: readonly ModelStateEntry[],
    mode: ApplyMode = {},
  ): ModelStateChange[] {
    const now = Date.now();
    const before = this.byServer.get(server) ?? EMPTY;
    const after = new Map(before);
    const { replaceAsOf, readStartedAt } = mode;
    if (replaceAsOf !== undefined || readStartedAt !== undefined) {
      const listed = new Set(entries.map((entry) => entryField(entry.model, entry.version)));
      for (const [field, entry] of before) {
        if (listed.has(field)) continue;
        if (
          (replaceAsOf !== undefined && entry.updatedAt <= replaceAsOf) ||
          (readStartedAt !== undefined && (this.learnedAt.get(entry) ?? 0) < readStartedAt)
        ) {
          after.delete(field);
        }
      }
    }
    for (const entry of entries) {
      const field = entryField(entry.model, entry.version);
      const existing = after.get(field);
      // Keeping an identical entry spares a new snapshot when a resync re-reads known facts.
      if (existing !== undefined && (isNewer(existing, entry) || sameEntry(existing, entry))) {
        continue;
      }
      after.set(field, entry);
    }
    return this.install(server, before, after, now);
  }

  setFailure(failure: LoadFailure): void {
    this.learnedAt.set(failure, Date.now());
    const next = new Map(this.failures);
    next.set(entryField(failure.model, failure.version), failure);
    this.installFailures(next);
  }

  deleteFailure(model: string, version: string): void {
    const field = entryField(model, version);
    if (!this.failures.has(field)) return;
    const next = new Map(this.failures);
    next.delete(field);
    this.installFailures(next);
  }

  /** Takes the shared list of failures, keeping local ones learned after the read started. */
  replaceFailures(failures: readonly LoadFailure[], readStartedAt: number): void {
    const now = Date.now();
    const next = new Map<string, LoadFailure>();
    for (const [field, failure] of this.failures) {
      if ((this.learnedAt.get(failure) ?? 0) >= readStartedAt) next.set(field, failure);
    }
    for (const failure of failures) {
      const field = entryField(failure.model, failure.version);
      const local = next.get(field);
      if (failure.until <= now || (local !== undefined && local.failedAt > failure.failedAt))
        continue;
      if (local?.failedAt !== failure.failedAt) this.learnedAt.set(failure, now);
      next.set(field, failure);
    }
    const same =
      next.size === this.failures.size &&
      [...next].every(
        ([field, failure]) => this.failures.get(field)?.failedAt === failure.failedAt,
      );
    if (!same) this.installFailures(next);
  }

  generation(model: string): number {
    return this.generations.get(model) ?? 0;
  }

  generationList(): [string, number][] {
    return [...this.generations];
  }

  /**
   * Generations only go up: every replica ends at the highest number anyone
   * wrote, whatever order messages arrive in. False when `generation` is not
   * higher than the one known.
   */
  raiseGeneration(model: string, generation: number): boolean {
    if (!(generation > (this.generations.get(model) ?? 0))) return false;
    const next = new Map(this.generations);
    next.set(model, generation);
    this.generations = next;
    this.current = undefined;
    if (!this.pendingGenerations.includes(model)) this.pendingGenerations.push(model);
    return true;
  }

  /** Publishes what changed since the last commit as one event. */
  commit(origin: ChangeOrigin): void {
    const changes = this.pending;
    const failuresChanged = this.pendingFailures;
    const generationsChanged = this.pendingGenerations;
    this.pending = [];
    this.pendingFailures = false;
    this.pendingGenerations = [];
    this.scheduleExpiry();
    if (changes.length === 0 && !failuresChanged && generationsChanged.length === 0) return;
    const event = {
      origin,
      changes,
      failuresChanged,
      generationsChanged,
      snapshot: this.snapshot(),
    };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error('model-state change listener threw', { error: String(error) });
      }
    }
  }

  onChange(listener: ModelStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.expiryTimer);
    this.listeners.clear();
  }

  private install(
    server: string,
    before: ServerEntries,
    after: Map<string, ModelStateEntry>,
    now: number,
  ): ModelStateChange[] {
    let earliest = Infinity;
    for (const [field, entry] of after) {
      if (entry.expiresAt <= now) after.delete(field);
      else earliest = Math.min(earliest, entry.expiresAt);
    }
    const changes: ModelStateChange[] = [];
    let touched = after.size !== before.size;
    for (const [field, entry] of after) {
      if (before.get(field) !== entry) this.learnedAt.set(entry, now);
    }
    for (const [field, entry] of before) {
      const next = after.get(field);
      if (next !== entry) touched = true;
      if (next?.status !== entry.status) {
        changes.push({
          server,
          model: entry.model,
          version: entry.version,
          previous: entry.status,
          current: next?.status,
        });
      }
    }
    for (const [field, entry] of after) {
      if (!before.has(field)) {
        touched = true;
        changes.push({
          server,
          model: entry.model,
          version: entry.version,
          previous: undefined,
          current: entry.status,
        });
      }
    }
    if (!touched) return changes;
    if (after.size === 0) {
      this.byServer.delete(server);
      this.earliestExpiry.delete(server);
    } else {
      this.byServer.set(server, after);
      this.earliestExpiry.set(server, earliest);
    }
    this.current = undefined;
    this.pending.push(...changes);
    return changes;
  }

  private installFailures(next: ReadonlyMap<string, LoadFailure>): void {
    this.failures = next;
    this.current = undefined;
    this.pendingFailures = true;
  }

  private expire(): void {
    const now = Date.now();
    for (const [server, earliest] of [...this.earliestExpiry]) {
      if (earliest > now) continue;
      const before = this.byServer.get(server) ?? EMPTY;
      this.install(server, before, new Map(before), now);
    }
    const live = [...this.failures].filter(([, failure]) => failure.until > now);
    if (live.length !== this.failures.size) this.installFailures(new Map(live));
    this.commit('expiry');
  }

  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.closed) return;
    let earliest = Infinity;
    for (const at of this.earliestExpiry.values()) earliest = Math.min(earliest, at);
    for (const failure of this.failures.values()) earliest = Math.min(earliest, failure.until);
    if (earliest === Infinity) return;
    // +1 so the timer fires strictly after the expiry instant, never just before it.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, earliest - Date.now() + 1));
    this.expiryTimer = setTimeout(() => this.expire(), delay);
    this.expiryTimer.unref();
  }
}
