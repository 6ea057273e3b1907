import type {
  LoadFailure,
  ModelStateEntry,
  ModelStateMetrics,
  ModelStateSnapshot,
  ModelStatus,
} from './types';

/**
 * Field name of a (model, version) pair. JSON keeps it unambiguous whatever
 * characters the names hold; the same string is the Redis hash field.
 */
export function entryField(model: string, version: string): string {
  return JSON.stringify([model, version]);
}

export type ServerEntries = ReadonlyMap<string, ModelStateEntry>;

const STATUS_RANK: Record<ModelStatus, number> = {
  READY: 0,
  LOADING: 1,
  UNLOADING: 2,
  UNAVAILABLE: 3,
};

const NONE: readonly never[] = Object.freeze([]);

/**
 * Built from maps that the local state never mutates afterwards (it copies on
 * write), so holding references instead of copies is safe. Indexes by model
 * are built on first use: most snapshots are replaced before anyone asks.
 */
export class StateSnapshot implements ModelStateSnapshot {
  private byModel: Map<string, ModelStateEntry[]> | undefined;
  private readonly serversByStatus = new Map<string, readonly string[]>();
  private sortedServers: readonly string[] | undefined;

  constructor(
    readonly version: number,
    private readonly byServer: ReadonlyMap<string, ServerEntries>,
    private readonly failures: ReadonlyMap<string, LoadFailure>,
    private readonly metrics: ModelStateMetrics,
    private readonly generations: ReadonlyMap<string, number> = new Map(),
  ) {}

  generation(model: string): number {
    return this.generations.get(model) ?? 0;
  }

  readyServers(model: string, version = ''): readonly string[] {
    const servers = this.serversWith('READY', model, version);
    this.metrics.onLookup?.(servers.length > 0);
    return servers;
  }

  loadingServers(model: string, version = ''): readonly string[] {
    return this.serversWith('LOADING', model, version);
  }

  status(server: string, model: string, version = ''): ModelStatus | undefined {
    const entries = this.byServer.get(server);
    if (entries === undefined) return undefined;
    if (version !== '') return entries.get(entryField(model, version))?.status;
    let best: ModelStatus | undefined;
    for (const entry of this.modelIndex().get(model) ?? NONE) {
      if (entry.server !== server) continue;
      if (best === undefined || STATUS_RANK[entry.status] < STATUS_RANK[best]) best = entry.status;
    }
    return best;
  }

  entry(server: string, model: string, version: string): ModelStateEntry | undefined {
    return this.byServer.get(server)?.get(entryField(model, version));
  }

  isKnown(model: string): boolean {
    return this.modelIndex().has(model);
  }

  entriesForModel(model: string): readonly ModelStateEntry[] {
    return this.modelIndex().get(model) ?? NONE;
  }

  entriesForServer(server: string): readonly ModelStateEntry[] {
    const entries = this.byServer.get(server);
    return entries === undefined ? NONE : [...entries.values()];
  }

  servers(): readonly string[] {
    this.sortedServers ??= [...this.byServer.keys()].sort();
    return this.sortedServers;
  }

  entries(): readonly ModelStateEntry[] {
    const all: ModelStateEntry[] = [];
    for (const entries of this.byServer.values()) all.push(...entries.values());
    return all;
  }

  loadFailure(model: string, version: string): LoadFailure | undefined {
    return this.failures.get(entryField(model, version));
  }

  loadFailures(): readonly LoadFailure[] {
    return [...this.failures.values()];
  }

  private serversWith(status: ModelStatus, model: string, version: string): readonly string[] {
    const key = `${status}${entryField(model, version)}`;
    const cached = this.serversByStatus.get(key);
    if (cached !== undefined) return cached;
    const servers = new Set<string>();
    for (const entry of this.modelIndex().get(model) ?? NONE) {
      // A request without a version is served by whatever version the server has ready.
      if (entry.status === status && (version === '' || entry.version === version)) {
        servers.add(entry.server);
      }
    }
    const result = servers.size === 0 ? NONE : Object.freeze([...servers].sort());
    this.serversByStatus.set(key, result);
    return result;
  }

  private modelIndex(): Map<string, ModelStateEntry[]> {
    if (this.byModel !== undefined) return this.byModel;
    const index = new Map<string, ModelStateEntry[]>();
    for (const entries of this.byServer.values()) {
      for (const entry of entries.values()) {
        const list = index.get(entry.model);
        if (list === undefined) index.set(entry.model, [entry]);
        else list.push(entry);
      }
    }
    this.byModel = index;
    return index;
  }
}
