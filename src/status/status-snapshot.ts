import type { AdmissionRejectReason, AdmissionStats } from '../admission';
import type { UpstreamSnapshot } from '../fleet';
import type { ModelStateSnapshot, ModelStatus, ReplicaSeen, StoreHealth } from '../model-state';
import type { ErrorSummary } from '../observability';

/** Everything `/status` and `/status.json` show, as one JSON-ready value. */
export interface StatusSnapshot {
  /** When the snapshot was taken (ISO 8601). */
  readonly generatedAt: string;
  readonly replica: ReplicaStatus;
  readonly servers: readonly ServerStatus[];
  readonly models: ModelMatrix;
  readonly admission: AdmissionStatus;
  readonly cache: CacheStatus;
  readonly errors: ErrorSummaryStatus;
}

export interface ReplicaStatus {
  readonly id: string;
  readonly version: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly ready: boolean;
  /** Why /health/ready fails; empty when ready. */
  readonly notReadyReasons: readonly string[];
  /** Where the model state lives; redisUp is null when Redis is not used. */
  readonly state: { readonly mode: StoreHealth['backend']; readonly redisUp: boolean | null };
  readonly replicasSeen: ReadonlyArray<{ id: string; lastSeenAt: string; self: boolean }>;
}

export type ServerHealth = 'ready' | 'not ready' | 'draining';

export interface ServerStatus {
  readonly name: string;
  readonly address: string;
  readonly group: string;
  readonly health: ServerHealth;
  readonly breaker: UpstreamSnapshot['breaker'];
  readonly inflight: number;
  /**
   * Its models' state is the last known, not current: the server fails its
   * health checks, or its repository index could not be read lately.
   */
  readonly stale: boolean;
  readonly recent: {
    readonly windowSeconds: number;
    readonly calls: number;
    readonly errors: number;
    readonly errorRatio: number | null;
    readonly p99Ms: number | null;
  };
}

/** One model on one server: its best status over versions, and each version's. */
export interface MatrixCell {
  readonly status: ModelStatus;
  readonly versions: ReadonlyArray<{ version: string; status: ModelStatus; reason: string }>;
  readonly stale: boolean;
}

export interface ModelMatrix {
  /** Column order: every server in the fleet or in the shared state, by name. */
  readonly servers: readonly string[];
  /** Rows by model name; a server without the model has no cell. */
  readonly rows: ReadonlyArray<{ model: string; cells: Readonly<Record<string, MatrixCell>> }>;
}

export interface AdmissionStatus {
  readonly accepting: boolean;
  readonly queued: number;
  readonly inflight: number;
  readonly inflightBytes: number;
  /** Refused or dropped from the queue since start, by reason. */
  readonly rejected: Readonly<Partial<Record<AdmissionRejectReason, number>>>;
  readonly byModel: ReadonlyArray<{
    model: string;
    inflight: number;
    queued: number;
    maxInflight: number;
    maxQueue: number;
  }>;
}

export type CacheStatus =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      readonly models: ReadonlyArray<{
        model: string;
        hits: number;
        misses: number;
        bypassed: number;
        /** hits / (hits + misses); null before any lookup. */
        hitRatio: number | null;
      }>;
    };

export interface ErrorSummaryStatus {
  readonly byCode: ReadonlyArray<{ code: string; count: number; lastAt: string }>;
  readonly recent: ReadonlyArray<{
    at: string;
    code: string;
    status: number;
    message: string;
    server: string | null;
    path: string;
    requestId: string;
  }>;
}

/** Read-only views of the modules the page reports on (wired in proxy.ts). */
export interface StatusSources {
  readonly version: string;
  readonly replicaId: string;
  /** ms since epoch. */
  readonly startedAt: number;
  isReady(): { ready: boolean; reasons: string[] };
  stateHealth(): StoreHealth;
  replicas(): Promise<readonly ReplicaSeen[]>;
  servers(): readonly UpstreamSnapshot[];
  staleServers(): readonly string[];
  modelState(): ModelStateSnapshot;
  admission(): AdmissionStats;
  /** Cache lookups per model; undefined when no model is cached. */
  cacheResults?: () => Promise<ReadonlyMap<string, { hit: number; miss: number; bypass: number }>>;
  errors(): ErrorSummary;
  /** ms since epoch; Date.now by default. */
  now?: () => number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

const STATUS_RANK: Record<ModelStatus, number> = {
  READY: 0,
  LOADING: 1,
  UNLOADING: 2,
  UNAVAILABLE: 3,
};

function healthOf(s: UpstreamSnapshot): ServerHealth {
  if (s.draining) return 'draining';
  return s.ready ? 'ready' : 'not ready';
}

function matrixOf(
  state: ModelStateSnapshot,
  fleet: readonly UpstreamSnapshot[],
  stale: ReadonlySet<string>,
): ModelMatrix {
  const servers = [...new Set([...fleet.map((s) => s.name), ...state.servers()])].sort();
  const rows = new Map<string, Record<string, MatrixCell>>();
  for (const entry of state.entries()) {
    let cells = rows.get(entry.model);
    if (cells === undefined) {
      cells = {};
      rows.set(entry.model, cells);
    }
    const version = { version: entry.version, status: entry.status, reason: entry.reason };
    const cell = cells[entry.server];
    if (cell === undefined) {
      cells[entry.server] = {
        status: entry.status,
        versions: [version],
        stale: stale.has(entry.server),
      };
    } else {
      cells[entry.server] = {
        status: STATUS_RANK[entry.status] < STATUS_RANK[cell.status] ? entry.status : cell.status,
        versions: [...cell.versions, version].sort((a, b) => a.version.localeCompare(b.version)),
        stale: cell.stale,
      };
    }
  }
  return {
    servers,
    rows: [...rows.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([model, cells]) => ({ model, cells })),
  };
}

async function cacheOf(sources: StatusSources): Promise<CacheStatus> {
  if (sources.cacheResults === undefined) return { enabled: false };
  const results = await sources.cacheResults();
  return {
    enabled: true,
    models: [...results.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([model, r]) => ({
        model,
        hits: r.hit,
        misses: r.miss,
        bypassed: r.bypass,
        hitRatio: r.hit + r.miss === 0 ? null : r.hit / (r.hit + r.miss),
      })),
  };
}

/**
 * Takes one snapshot of everything the status page shows. Each module hands
 * over a copy of what it already tracks; nothing here runs per request.
 */
export async function collectStatus(sources: StatusSources): Promise<StatusSnapshot> {
  const now = (sources.now ?? Date.now)();
  const [replicas, cache] = await Promise.all([sources.replicas(), cacheOf(sources)]);
  const readiness = sources.isReady();
  const health = sources.stateHealth();
  const fleet = sources.servers();
  // A server that does not answer is not read either: what the state says of it is last known.
  const stale = new Set([
    ...sources.staleServers(),
    ...fleet.filter((s) => !s.ready && !s.draining).map((s) => s.name),
  ]);
  const admission = sources.admission();
  const errors = sources.errors();
  return {
    generatedAt: iso(now),
    replica: {
      id: sources.replicaId,
      version: sources.version,
      startedAt: iso(sources.startedAt),
      uptimeSeconds: Math.max(0, Math.round((now - sources.startedAt) / 1000)),
      ready: readiness.ready,
      notReadyReasons: readiness.reasons,
      state: { mode: health.backend, redisUp: health.backend === 'redis' ? health.up : null },
      replicasSeen: replicas.map((r) => ({
        id: r.id,
        lastSeenAt: iso(r.lastSeenAt),
        self: r.self,
      })),
    },
    servers: fleet
      .map((s) => ({
        name: s.name,
        address: s.address,
        group: s.group,
        health: healthOf(s),
        breaker: s.breaker,
        inflight: s.inflight,
        stale: stale.has(s.name),
        recent: {
          windowSeconds: s.recent.windowSeconds,
          calls: s.recent.calls,
          errors: s.recent.errors,
          errorRatio: s.recent.errorRatio,
          p99Ms: s.recent.p99Seconds === null ? null : Math.round(s.recent.p99Seconds * 1e4) / 10,
        },
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    models: matrixOf(sources.modelState(), fleet, stale),
    admission: {
      accepting: admission.accepting,
      queued: admission.queued,
      inflight: admission.inflight,
      inflightBytes: admission.inflightBytes,
      rejected: admission.rejected,
      byModel: [...admission.byModel.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([model, m]) => ({ model, ...m })),
    },
    cache,
    errors: {
      byCode: errors.byCode.map((c) => ({ code: c.code, count: c.count, lastAt: iso(c.lastAt) })),
      recent: errors.recent.map((e) => ({
        at: iso(e.at),
        code: e.code,
        status: e.status,
        message: e.message,
        server: e.server ?? null,
        path: e.path,
        requestId: e.requestId,
      })),
    },
  };
}
