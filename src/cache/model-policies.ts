import { matchGlob } from '../routing';

/** One entry of CACHE_MODELS / COALESCE_MODELS: a model-name glob and, for caching, a TTL. */
export interface ModelGlob {
  /** Glob over the model name: `*` any run of characters, `?` exactly one. Case-sensitive. */
  readonly pattern: string;
  /** How long an answer stays fresh; undefined when the entry gave none. */
  readonly ttlMs: number | undefined;
}

/** What the proxy does with answers of one model. */
export interface ModelPolicy {
  /** Answers are cached this long; undefined when the model is not cached. */
  readonly ttlMs: number | undefined;
  /** Identical requests in flight share one upstream call. */
  readonly coalesce: boolean;
}

const NONE: ModelPolicy = Object.freeze({ ttlMs: undefined, coalesce: false });
const MEMO_LIMIT = 1024;

/**
 * Answers "is this model cached, for how long, and coalesced?" from the
 * configured globs (first match wins), remembered per model name in a
 * bounded map: the same few models are asked about on every request.
 */
export class ModelPolicies {
  readonly enabled: boolean;
  private readonly memo = new Map<string, ModelPolicy>();

  constructor(
    private readonly cached: readonly ModelGlob[],
    private readonly coalesced: readonly ModelGlob[],
  ) {
    this.enabled = cached.length > 0 || coalesced.length > 0;
  }

  for(model: string): ModelPolicy {
    if (!this.enabled) return NONE;
    const known = this.memo.get(model);
    if (known !== undefined) return known;
    const cache = this.cached.find((g) => matchGlob(g.pattern, model));
    const coalesce = this.coalesced.some((g) => matchGlob(g.pattern, model));
    const policy: ModelPolicy =
      cache === undefined && !coalesce ? NONE : Object.freeze({ ttlMs: cache?.ttlMs, coalesce });
    // Names come from requests: the memo must not grow with them.
    if (this.memo.size >= MEMO_LIMIT) {
      const oldest = this.memo.keys().next();
      if (!oldest.done) this.memo.delete(oldest.value);
    }
    this.memo.set(model, policy);
    return policy;
  }
}
