import type { ModelInferRequest, ModelInferResponse, Parameters } from '../protocol';
import { cacheKeyOf } from './cache-key';
import { entryFromResponse, type CacheEntry } from './cache-entry';
import { Coalescer } from './coalescer';
import type { MemoryTier } from './memory-tier';
import type { ModelPolicies } from './model-policies';

/** How an answer was obtained, for the X-Cache header (undefined: the model is not listed). */
export type CacheStatus = 'HIT' | 'MISS' | 'COALESCED' | 'BYPASS';

/** hit: served from a tier; miss: looked up, not there; bypass: not looked up. */
export type CacheResult = 'hit' | 'miss' | 'bypass';

/** A tier shared by replicas; failures are misses, never errors. */
export interface SharedTier {
  get(key: string, model: string, generation: number): Promise<CacheEntry | undefined>;
  set(key: string, entry: CacheEntry): void;
}

/** The part of the model state the cache reads (ModelStateStore satisfies it). */
export interface CacheStateView {
  snapshot(): {
    generation(model: string): number;
    entriesForModel(model: string): readonly { version: string; status: string }[];
  };
  onChange(listener: (event: { generationsChanged: readonly string[] }) => void): () => void;
}

export interface CacheHooks {
  onRequest?(model: string, result: CacheResult): void;
  onCoalesced?(model: string): void;
  onInvalidation?(model: string): void;
}

export interface ResponseCacheDeps {
  policies: ModelPolicies;
  memory: MemoryTier;
  shared?: SharedTier;
  state: CacheStateView;
  hooks?: CacheHooks;
}

/** One caller's side of a request. */
export interface CacheCall {
  /** Aborted when this caller goes away. */
  signal: AbortSignal;
  /** This caller's deadline, ms since epoch. */
  deadline: number;
  /** Cache-Control: no-store: neither read nor write the cache. */
  noStore?: boolean;
  /** Cache-Control: no-cache: do not read the cache, but store the fresh answer. */
  noCache?: boolean;
}

/** Makes the upstream call; `signal` aborts when nobody waits for the answer any more. */
export type Fetch = (signal: AbortSignal) => Promise<ModelInferResponse>;

export interface CacheAnswer {
  /** The caller's own copy: `id` is the request's id. */
  response: ModelInferResponse;
  status: CacheStatus | undefined;
}

/**
 * Why a request's answer must not be reused, or undefined. Sequence requests
 * change the model's state; shared-memory outputs are written elsewhere.
 */
export function uncacheableReason(request: ModelInferRequest): string | undefined {
  const p = request.parameters;
  const seq = p.sequence_id;
  if (seq !== undefined && seq !== 0 && seq !== 0n && seq !== '' && seq !== false) {
    return 'sequence';
  }
  const sharedMemory = (params: Parameters) =>
    Object.keys(params).some((k) => k.startsWith('shared_memory'));
  if (request.inputs.some((t) => sharedMemory(t.parameters))) return 'shared memory';
  if (request.outputs.some((t) => sharedMemory(t.parameters))) return 'shared memory';
  return undefined;
}

/**
 * The version that will answer: the one asked for, or, without one, the
 * highest version READY in the fleet (Triton serves its newest ready
 * version). Undefined when no numbered version is known yet.
 */
export function servedVersion(
  entries: readonly { version: string; status: string }[],
  requested: string,
): string | undefined {
  if (requested !== '') return requested;
  let best = -1;
  let version: string | undefined;
  for (const e of entries) {
    if (e.status !== 'READY' || !/^[0-9]+$/.test(e.version)) continue;
    const n = Number(e.version);
    if (n > best) {
      best = n;
      version = e.version;
    }
  }
  return version;
}

/**
 * Response cache and request coalescing for listed (deterministic) models,
 * independent of the protocol: it works on ModelInfer messages, stores
 * Triton's raw answer, and each front end renders it per caller (REST in
 * codec; a gRPC front end encodes the returned message, whose id is the
 * caller's).
 */
export class ResponseCache {
  private readonly flights = new Coalescer<ModelInferResponse>();
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: ResponseCacheDeps) {
    this.unsubscribe = deps.state.onChange((event) => {
      for (const model of event.generationsChanged) this.invalidate(model);
    });
  }

  /** True when some model is cached or coalesced. */
  get enabled(): boolean {
    return this.deps.policies.enabled;
  }

  /**
   * True when requests for `model` go through the cache or coalescing: a
   * front end that forwards bytes (gRPC) decodes the message only then, and
   * otherwise calls Triton directly.
   */
  handles(model: string): boolean {
    const policy = this.deps.policies.for(model);
    return policy.ttlMs !== undefined || policy.coalesce;
  }

  get inFlight(): number {
    return this.flights.size;
  }

  close(): void {
    this.unsubscribe();
    this.deps.memory.clear();
  }

  async serve(request: ModelInferRequest, call: CacheCall, fetch: Fetch): Promise<CacheAnswer> {
    const model = request.modelName;
    const policy = this.deps.policies.for(model);
    const ttlMs = policy.ttlMs;
    if (ttlMs === undefined && !policy.coalesce) {
      return { response: await fetch(call.signal), status: undefined };
    }
    const hooks = this.deps.hooks;
    const view = this.deps.state.snapshot();
    const generation = view.generation(model);
    const version = servedVersion(view.entriesForModel(model), request.modelVersion);
    const usable = uncacheableReason(request) === undefined && call.noStore !== true;
    const storable = usable && ttlMs !== undefined && version !== undefined;
    if (!usable || (!storable && !policy.coalesce)) {
      if (ttlMs !== undefined) hooks?.onRequest?.(model, 'bypass');
      return {
        response: await fetch(call.signal),
        status: ttlMs === undefined ? undefined : 'BYPASS',
      };
    }

    const key = await cacheKeyOf(request, {
      version: version ?? request.modelVersion,
      generation,
    });
    const lookup = storable && call.noCache !== true;
    if (lookup) {
      const entry = await this.lookup(key, model, generation);
      if (entry !== undefined) {
        hooks?.onRequest?.(model, 'hit');
        return { response: { ...entry.response, id: request.id }, status: 'HIT' };
      }
    }
    if (ttlMs !== undefined) hooks?.onRequest?.(model, lookup ? 'miss' : 'bypass');
    const fresh = lookup ? 'MISS' : 'BYPASS';

    const store = (response: ModelInferResponse): void => {
      if (!storable || response.modelVersion !== version) return;
      // A load or unload while the call ran: the answer may be from either side of it.
      if (this.deps.state.snapshot().generation(model) !== generation) return;
      const entry = entryFromResponse(response, generation, Date.now() + ttlMs);
      this.deps.memory.set(key, entry);
      this.deps.shared?.set(key, entry);
    };
    if (!policy.coalesce) {
      const response = await fetch(call.signal);
      store(response);
      return { response, status: fresh };
    }
    const { promise, joined } = this.flights.run(
      key,
      call,
      async (signal) => {
        const response = await fetch(signal);
        store(response);
        return response;
      },
      model,
    );
    if (joined) hooks?.onCoalesced?.(model);
    const response = await promise;
    return { response: { ...response, id: request.id }, status: joined ? 'COALESCED' : fresh };
  }

  private async lookup(
    key: string,
    model: string,
    generation: number,
  ): Promise<CacheEntry | undefined> {
    const local = this.deps.memory.get(key);
    if (local !== undefined || this.deps.shared === undefined) return local;
    const shared = await this.deps.shared.get(key, model, generation);
    if (shared !== undefined) this.deps.memory.set(key, shared);
    return shared;
  }

  private invalidate(model: string): void {
    if (this.deps.policies.for(model).ttlMs === undefined) return;
    this.deps.memory.invalidate(model, this.deps.state.snapshot().generation(model));
    this.deps.hooks?.onInvalidation?.(model);
  }
}
