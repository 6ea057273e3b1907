import type { ModelStateSnapshot } from '../model-state';
import type { Upstream } from '../fleet';
import type { Balancer } from './balancer';
import type { RoutingRules } from './rules';
import { rendezvousPick } from './rendezvous';

export interface RouteQuery {
  model: string;
  version: string;
  /** Servers already tried by this request. */
  exclude?: ReadonlySet<string>;
  /**
   * Choose by rendezvous hashing of this key instead of by load, so that
   * every replica sends the same key (a stateful sequence) to the same server.
   */
  affinityKey?: string;
}

/**
 * A pick is a value, not an exception (as grpc-js's picker): the caller
 * decides what each outcome means for the request (wait for a load, fail,
 * retry).
 */
export type Pick =
  | { kind: 'server'; upstream: Upstream }
  /** The model is known nowhere (and the state is complete enough to say so). */
  | { kind: 'not-found' }
  /** Known, but READY on no available server; `loading` when a load is under way. */
  | { kind: 'not-ready'; loading: boolean }
  /** The model is READY somewhere, but no such server can take a call now. */
  | { kind: 'unavailable' };

export interface RouterDeps {
  servers: () => readonly Upstream[];
  snapshot: () => ModelStateSnapshot;
  rules: RoutingRules;
  balancer: Balancer;
  /**
   * True once every available server's repository has been read at least
   * once: only then does "unknown in the state" mean "unknown to the fleet".
   * Before that, an unknown model is tried on any server (direct probing).
   */
  stateIsComplete: () => boolean;
  onLookup?: (hit: boolean) => void;
}

/**
 * Model-aware routing over the fleet and the local model-state snapshot.
 * Everything it reads is in memory: no Redis round trip per request.
 */
export class Router {
  constructor(private readonly deps: RouterDeps) {}

  private groupAllowed(upstream: Upstream, groups: readonly string[] | undefined): boolean {
    return groups === undefined || groups.includes(upstream.group);
  }

  private choose(
    servers: readonly Upstream[],
    query: RouteQuery,
    eligible: (s: Upstream) => boolean,
  ): Upstream | undefined {
    if (query.affinityKey !== undefined) {
      const exclude = query.exclude;
      return rendezvousPick(
        servers,
        query.affinityKey,
        (s) => (exclude === undefined || !exclude.has(s.name)) && eligible(s),
      );
    }
    return this.deps.balancer.pick(servers, query.exclude, eligible);
  }

  pick(query: RouteQuery): Pick {
    const { model, version } = query;
    const groups = this.deps.rules.groupsFor(model);
    const snapshot = this.deps.snapshot();
    const servers = this.deps.servers();
    if (!snapshot.isKnown(model)) {
      this.deps.onLookup?.(false);
      // With no server to ask, "complete" is vacuously true and says nothing:
      // the fleet being down must read as unavailable, never as "no such model".
      if (!servers.some((s) => s.available && this.groupAllowed(s, groups)))
        return { kind: 'unavailable' };
      if (this.deps.stateIsComplete()) return { kind: 'not-found' };
      const any = this.choose(servers, query, (s) => s.available && this.groupAllowed(s, groups));
      return any ? { kind: 'server', upstream: any } : { kind: 'unavailable' };
    }
    const ready = snapshot.readyServers(model, version);
    this.deps.onLookup?.(ready.length > 0);
    if (ready.length === 0) {
      return { kind: 'not-ready', loading: snapshot.loadingServers(model, version).length > 0 };
    }
    const upstream = this.choose(
      servers,
      query,
      (s) => s.available && this.groupAllowed(s, groups) && ready.includes(s.name),
    );
    if (upstream) return { kind: 'server', upstream };
    // READY only on servers that are down, excluded or outside the model's groups.
    const anyReadyAllowed = servers.some(
      (s) => ready.includes(s.name) && this.groupAllowed(s, groups),
    );
    return anyReadyAllowed ? { kind: 'unavailable' } : { kind: 'not-ready', loading: false };
  }

  /** Whether a retry could find a server outside `exclude` (without choosing one). */
  hasCandidate(model: string, version: string, exclude: ReadonlySet<string>): boolean {
    const groups = this.deps.rules.groupsFor(model);
    const snapshot = this.deps.snapshot();
    const known = snapshot.isKnown(model);
    const ready = known ? snapshot.readyServers(model, version) : undefined;
    return this.deps
      .servers()
      .some(
        (s) =>
          !exclude.has(s.name) &&
          s.available &&
          this.groupAllowed(s, groups) &&
          (ready === undefined || ready.includes(s.name)),
      );
  }

  /** The server a model's request should go to, if any (for metadata, config and stats). */
  pickForControl(model: string, version: string): Upstream | undefined {
    const pick = this.pick({ model, version });
    if (pick.kind === 'server') return pick.upstream;
    // Metadata of a known but unloaded model can still come from a server that has it.
    return this.deps.servers().find((s) => s.available) ?? undefined;
  }

  /**
   * Servers a model may be loaded on (routing rules), available now: those
   * whose repository lists it, or any allowed one when none is known to.
   */
  candidatesForLoad(model: string): Upstream[] {
    const groups = this.deps.rules.groupsFor(model);
    const allowed = this.deps.servers().filter((s) => s.available && this.groupAllowed(s, groups));
    // Triton loads only what its own repository holds; a load anywhere else fails.
    const listing = new Set(
      this.deps
        .snapshot()
        .entriesForModel(model)
        .map((e) => e.server),
    );
    const holders = allowed.filter((s) => listing.has(s.name));
    return holders.length > 0 ? holders : allowed;
  }
}
