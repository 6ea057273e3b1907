import type {
  Logger,
  ModelStateInput,
  ModelStateMetrics,
  ModelStateStore,
  ModelStatus,
} from './types';

/** One row of Triton's RepositoryIndex answer (state strings as Triton spells them). */
export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

export interface ReconcileSource {
  servers(): readonly string[];
  repositoryIndex(server: string): Promise<readonly RepositoryIndexEntry[]>;
}

export interface ReconcilerOptions {
  store: ModelStateStore;
  source: ReconcileSource;
  intervalMs: number;
  /** Per-server lease so one replica polls each server per interval; default intervalMs. */
  leaseMs?: number;
  /** Bound on one index call, in case the source sets none; default intervalMs. */
  fetchTimeoutMs?: number;
  logger: Logger;
  metrics?: ModelStateMetrics;
}

export interface ReconcileResult {
  /** Servers whose index was read and written as the truth. */
  reconciled: string[];
  /** Servers another replica is reconciling this interval. */
  skipped: string[];
  /** Servers whose index could not be read; their last known state was kept (stale). */
  failed: string[];
  /** Status changes the run caused on this replica. */
  changes: number;
}

export interface ReconcilerStats {
  runs: number;
  changes: number;
  failures: number;
}

export function statusFromTriton(state: string): ModelStatus {
  switch (state.toUpperCase()) {
    case 'READY':
      return 'READY';
    case 'LOADING':
      return 'LOADING';
    case 'UNLOADING':
      return 'UNLOADING';
    default:
      // Triton reports '' or UNAVAILABLE for models in the repository but not loaded.
      return 'UNAVAILABLE';
  }
}

/**
 * Rebuilds the shared state from Triton's own repository index. Each server's
 * index replaces what the store holds for it, so models unloaded behind the
 * proxy's back disappear.
 *
 * A failed or slow index read says nothing about the models: the server is
 * health-checked separately (only servers that answer ServerReady are read
 * here) and may well be serving while one RepositoryIndex call times out.
 * So the last known state is kept, marked stale (a log line, the
 * `onIndexStale` metric), and kept alive past its TTL while reads keep
 * failing, until a successful read replaces it or a definite signal corrects
 * it: NOT_FOUND on an inference call (the request path marks the model
 * UNAVAILABLE on that server) or the server failing its health checks (it is
 * no longer routed to, and no longer read here, so its entries expire).
 * Servers that leave the fleet are removed by the fleet owner
 * (store.removeServer) or expire with their entries' TTL.
 */
export class Reconciler {
  private readonly leaseMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly metrics: ModelStateMetrics;
  private readonly unreachable = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileResult> | undefined;
  private readonly totals: ReconcilerStats = { runs: 0, changes: 0, failures: 0 };

  constructor(private readonly options: ReconcilerOptions) {
    this.leaseMs = options.leaseMs ?? options.intervalMs;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? options.intervalMs;
    this.metrics = options.metrics ?? {};
  }

  stats(): ReconcilerStats {
    return { ...this.totals };
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      // A slow run is not stacked on: the next tick picks up where it left off.
      if (this.running === undefined) void this.runOnce();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reconciles every server once; a call during a run waits for it, then runs afresh. */
  async runOnce(): Promise<ReconcileResult> {
    while (this.running !== undefined) await this.running.catch(() => undefined);
    this.running = this.run();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async run(): Promise<ReconcileResult> {
    const result: ReconcileResult = { reconciled: [], skipped: [], failed: [], changes: 0 };
    await Promise.all(
      this.options.source.servers().map(async (server) => {
        const leased = await this.options.store.tryLease(`reconcile:${server}`, this.leaseMs);
        if (!leased) {
          result.skipped.push(server);
          this.metrics.onReconcile?.('skipped', 0);
          return;
        }
        const { ok, changes } = await this.reconcileServer(server);
        (ok ? result.reconciled : result.failed).push(server);
        result.changes += changes;
        this.metrics.onReconcile?.(ok ? 'ok' : 'failed', changes);
      }),
    );
    this.totals.runs += 1;
    this.totals.changes += result.changes;
    this.totals.failures += result.failed.length;
    return result;
  }

  async reconcileServer(server: string): Promise<{ ok: boolean; changes: number }> {
    const { store, logger } = this.options;
    const asOf = Date.now();
    try {
      const index = await this.fetchIndex(server);
      const entries: Omit<ModelStateInput, 'server'>[] = index.map((row) => ({
        model: row.name,
        version: row.version,
        status: statusFromTriton(row.state),
        reason: row.reason !== '' ? row.reason : row.state === '' ? 'not loaded' : '',
      }));
      const changes = await store.replaceServer(server, entries, { asOf });
      if (this.unreachable.delete(server)) {
        logger.info('repository index readable again', { server, models: entries.length });
        this.metrics.onIndexStale?.(server, false);
      }
      return { ok: true, changes: changes.length };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (!this.unreachable.has(server)) {
        this.unreachable.add(server);
        logger.warn('repository index unreadable; keeping its last known model state (stale)', {
          server,
          error: why,
        });
      }
      this.metrics.onIndexStale?.(server, true);
      return { ok: false, changes: await this.keepAlive(server) };
    }
  }

  /** Servers whose last index read failed: their state in the store is the last known one. */
  staleServers(): readonly string[] {
    return [...this.unreachable];
  }

  /**
   * Rewrites the server's known entries (same status and reason) that are
   * past half their TTL, so a long run of failed reads does not let a
   * serving server's models expire into "unknown" (404).
   */
  private async keepAlive(server: string): Promise<number> {
    const now = Date.now();
    const ageing = this.options.store
      .snapshot()
      .entriesForServer(server)
      .filter((e) => e.expiresAt - now < (e.expiresAt - e.updatedAt) / 2)
      .map((e) => ({
        server,
        model: e.model,
        version: e.version,
        status: e.status,
        reason: e.reason,
      }));
    if (ageing.length === 0) return 0;
    return (await this.options.store.update(ageing)).length;
  }

  private async fetchIndex(server: string): Promise<readonly RepositoryIndexEntry[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`repository index took over ${this.fetchTimeoutMs} ms`)),
        this.fetchTimeoutMs,
      );
    });
    try {
      return await Promise.race([this.options.source.repositoryIndex(server), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
