/** Under overload `high` is served first and `low` is shed first. */
export type AdmissionPriority = 'high' | 'normal' | 'low';

export type AdmissionRejectReason =
  | 'shed'
  | 'bytes_full'
  | 'queue_full'
  | 'queue_timeout'
  | 'deadline'
  | 'bytes'
  | 'client_gone'
  | 'shutting_down';

export interface ModelLimits {
  /** Requests of this model in flight to Triton at once. */
  maxInflight: number;
  /** Requests of this model allowed to wait for a slot. */
  maxQueue: number;
}

/**
 * Metric hooks, called synchronously at every transition (enqueue, dequeue,
 * admit, release), so gauges track the live state rather than completions.
 * The model argument is the raw name; mapping it to a bounded label is the
 * caller's job.
 */
export interface AdmissionHooks {
  onQueueChange?(model: string, depthForModel: number, totalDepth: number): void;
  onInflightChange?(
    model: string,
    inflightForModel: number,
    totalInflight: number,
    totalInflightBytes: number,
  ): void;
  onReject?(reason: AdmissionRejectReason, model: string): void;
  /** Once per admitted request, 0 when it was admitted without queueing. */
  onQueueWait?(seconds: number, model: string): void;
  /** Bytes reserved outside a slot (reserveBytes) changed the in-flight total. */
  onBytesChange?(totalInflightBytes: number): void;
}

export interface AdmissionOptions {
  /** In-flight requests across all models. */
  maxInflight: number;
  /** Queued requests across all models. */
  maxQueue: number;
  /** How long a request may wait in the queue before it is rejected with 429. */
  queueTimeoutMs: number;
  /** Default per-model in-flight limit; defaults to maxInflight (no per-model limit). */
  modelMaxInflight?: number;
  /** Default per-model queue limit; defaults to maxQueue. */
  modelMaxQueue?: number;
  /** Per-model limits that replace the defaults above, by model name. */
  modelOverrides?:
    ReadonlyMap<string, Partial<ModelLimits>> | Readonly<Record<string, Partial<ModelLimits>>>;
  /** Cap on the summed body bytes of admitted requests; defaults to no cap. */
  maxInflightBytes?: number;
  /** Sent as Retry-After with 429 and shutting-down 503 rejections; defaults to 1. */
  retryAfterSeconds?: number;
  /**
   * Idle per-model records kept for reuse. Clients choose model names, so
   * records of idle models beyond this count are dropped to keep memory
   * bounded; busy models are always tracked. Defaults to 256.
   */
  maxIdleModels?: number;
  hooks?: AdmissionHooks;
}

export interface ResolvedAdmissionOptions {
  maxInflight: number;
  maxQueue: number;
  queueTimeoutMs: number;
  modelDefaults: ModelLimits;
  modelOverrides: ReadonlyMap<string, ModelLimits>;
  maxInflightBytes: number;
  retryAfterSeconds: number;
  maxIdleModels: number;
  hooks: Required<AdmissionHooks>;
}

const noop = (): void => {};

function requireInteger(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`admission option ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

function requirePositive(name: string, value: number): number {
  if (Number.isNaN(value) || value <= 0) {
    throw new RangeError(`admission option ${name} must be a positive number, got ${value}`);
  }
  return value;
}

function overrideEntries(
  overrides: AdmissionOptions['modelOverrides'],
): Iterable<[string, Partial<ModelLimits>]> {
  if (overrides === undefined) return [];
  if (overrides instanceof Map) return overrides.entries();
  return Object.entries(overrides);
}

/** Validates options at construction so a bad config fails at start-up, naming the key. */
export function resolveAdmissionOptions(options: AdmissionOptions): ResolvedAdmissionOptions {
  const maxInflight = requireInteger('maxInflight', options.maxInflight, 1);
  const maxQueue = requireInteger('maxQueue', options.maxQueue, 0);
  const queueTimeoutMs = requirePositive('queueTimeoutMs', options.queueTimeoutMs);
  if (!Number.isFinite(queueTimeoutMs)) {
    throw new RangeError('admission option queueTimeoutMs must be finite');
  }
  const modelDefaults: ModelLimits = {
    maxInflight: requireInteger('modelMaxInflight', options.modelMaxInflight ?? maxInflight, 1),
    maxQueue: requireInteger('modelMaxQueue', options.modelMaxQueue ?? maxQueue, 0),
  };
  const modelOverrides = new Map<string, ModelLimits>();
  for (const [model, limits] of overrideEntries(options.modelOverrides)) {
    modelOverrides.set(model, {
      maxInflight: requireInteger(
        `modelOverrides.${model}.maxInflight`,
        limits.maxInflight ?? modelDefaults.maxInflight,
        1,
      ),
      maxQueue: requireInteger(
        `modelOverrides.${model}.maxQueue`,
        limits.maxQueue ?? modelDefaults.maxQueue,
        0,
      ),
    });
  }
  const hooks = options.hooks ?? {};
  return {
    maxInflight,
    maxQueue,
    queueTimeoutMs,
    modelDefaults,
    modelOverrides,
    maxInflightBytes: requirePositive(
      'maxInflightBytes',
      options.maxInflightBytes ?? Number.POSITIVE_INFINITY,
    ),
    retryAfterSeconds: requireInteger('retryAfterSeconds', options.retryAfterSeconds ?? 1, 0),
    maxIdleModels: requireInteger('maxIdleModels', options.maxIdleModels ?? 256, 0),
    hooks: {
      onQueueChange: hooks.onQueueChange?.bind(hooks) ?? noop,
      onInflightChange: hooks.onInflightChange?.bind(hooks) ?? noop,
      onReject: hooks.onReject?.bind(hooks) ?? noop,
      onQueueWait: hooks.onQueueWait?.bind(hooks) ?? noop,
      onBytesChange: hooks.onBytesChange?.bind(hooks) ?? noop,
    },
  };
}
