/**
 * The Kubernetes HorizontalPodAutoscaler decision for one `type: Pods` metric
 * with an `AverageValue` target, as kube-controller-manager computes it
 * (pkg/controller/podautoscaler: replica_calculator.go and horizontal.go,
 * autoscaling/v2 with `behavior`). Pure: the caller owns the clock, so a
 * simulation can compress time and a test can step it exactly.
 */

export type ScalingPolicyType = 'Pods' | 'Percent';
export type SelectPolicy = 'Max' | 'Min' | 'Disabled';

export interface ScalingPolicy {
  readonly type: ScalingPolicyType;
  readonly value: number;
  readonly periodSeconds: number;
}

export interface ScalingRules {
  readonly stabilizationWindowSeconds: number;
  readonly selectPolicy: SelectPolicy;
  readonly policies: readonly ScalingPolicy[];
}

export interface HpaBehavior {
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
}

export interface HpaSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** The metric's `target.averageValue`, in metric units (parse a quantity with parseQuantity). */
  readonly targetAverageValue: number;
  readonly behavior: HpaBehavior;
  /** kube-controller-manager `--horizontal-pod-autoscaler-tolerance`; default 0.1. */
  readonly tolerance?: number;
}

/** kube-controller-manager defaults: `--horizontal-pod-autoscaler-tolerance` and `--horizontal-pod-autoscaler-sync-period`. */
export const DEFAULT_TOLERANCE = 0.1;
export const DEFAULT_SYNC_PERIOD_SECONDS = 15;

/** The API server's defaults for fields left out of `spec.behavior` (autoscaling/v2). */
export function defaultBehavior(): HpaBehavior {
  return {
    scaleUp: {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [
        { type: 'Percent', value: 100, periodSeconds: 15 },
        { type: 'Pods', value: 4, periodSeconds: 15 },
      ],
    },
    scaleDown: {
      stabilizationWindowSeconds: 300,
      selectPolicy: 'Max',
      policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
    },
  };
}

const QUANTITY =
  /^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const SUFFIX_SCALE: Record<string, number> = {
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("5", "500m", "1.5k", or a YAML number) as a number. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') {
    if (!Number.isFinite(quantity)) throw new RangeError(`quantity ${quantity} is not finite`);
    return quantity;
  }
  const match = QUANTITY.exec(quantity.trim());
  if (!match) throw new RangeError(`'${quantity}' is not a Kubernetes quantity`);
  const [, mantissa, exponent, suffix] = match;
  return Number(mantissa) * 10 ** Number(exponent ?? 0) * (suffix ? SUFFIX_SCALE[suffix] : 1);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readRules(input: unknown, defaults: ScalingRules, where: string): ScalingRules {
  if (input === undefined || input === null) return defaults;
  if (!isRecord(input)) throw new TypeError(`${where} must be an object`);
  const window = input.stabilizationWindowSeconds ?? defaults.stabilizationWindowSeconds;
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 0 || window > 3600)
    throw new RangeError(`${where}.stabilizationWindowSeconds must be an integer in 0..3600`);
  const select = input.selectPolicy ?? defaults.selectPolicy;
  if (select !== 'Max' && select !== 'Min' && select !== 'Disabled')
    throw new RangeError(`${where}.selectPolicy must be Max, Min or Disabled`);
  const rawPolicies = input.policies ?? defaults.policies;
  if (!Array.isArray(rawPolicies)) throw new TypeError(`${where}.policies must be a list`);
  const policies = rawPolicies.map((p: unknown, i): ScalingPolicy => {
    const at = `${where}.policies[${i}]`;
    if (!isRecord(p)) throw new TypeError(`${at} must be an object`);
    if (p.type !== 'Pods' && p.type !== 'Percent')
      throw new RangeError(`${at}.type must be Pods or Percent`);
    if (typeof p.value !== 'number' || !Number.isInteger(p.value) || p.value <= 0)
      throw new RangeError(`${at}.value must be a positive integer`);
    const period = p.periodSeconds;
    if (typeof period !== 'number' || !Number.isInteger(period) || period <= 0 || period > 1800)
      throw new RangeError(`${at}.periodSeconds must be an integer in 1..1800`);
    return { type: p.type, value: p.value, periodSeconds: period };
  });
  return { stabilizationWindowSeconds: window, selectPolicy: select, policies };
}

/**
 * `spec.behavior` as written in a manifest or chart values, with the API
 * server's defaults for whatever is left out, validated as the API server
 * would (so a typo fails here instead of silently simulating the defaults).
 */
export function resolveBehavior(input: unknown): HpaBehavior {
  const defaults = defaultBehavior();
  if (input === undefined || input === null) return defaults;
  if (!isRecord(input)) throw new TypeError('behavior must be an object');
  return {
    scaleUp: readRules(input.scaleUp, defaults.scaleUp, 'behavior.scaleUp'),
    scaleDown: readRules(input.scaleDown, defaults.scaleDown, 'behavior.scaleDown'),
  };
}

export interface MetricProposal {
  /** Replicas the metric asks for, before stabilization, rate limits and min/max. */
  readonly replicas: number;
  /** Average of the per-pod values as the HPA sees it (milli-units, truncated). */
  readonly averageValue: number;
  /** averageValue / target. */
  readonly usageRatio: number;
  /** The ratio was within the tolerance, so the proposal is the current count. */
  readonly withinTolerance: boolean;
}

function toMilli(value: number): number {
  // prometheus-adapter hands the custom metrics API int64(value*1000) milli-units.
  return Math.trunc(value * 1000);
}

/**
 * The replica calculator for a Pods metric with an AverageValue target, every
 * pod ready and reporting: desired = ceil(usageRatio × pods), where usageRatio
 * is the average over pods divided by the target, in integer milli-units as
 * the controller does; a ratio within [1 − tolerance, 1 + tolerance] keeps
 * the current count.
 */
export function podsMetricProposal(
  podValues: readonly number[],
  currentReplicas: number,
  targetAverageValue: number,
  tolerance: number = DEFAULT_TOLERANCE,
): MetricProposal {
  if (podValues.length === 0)
    throw new RangeError('no pod reported the metric (the HPA would not scale)');
  const targetMilli = toMilli(targetAverageValue);
  if (targetMilli <= 0) throw new RangeError('the target average value must be positive');
  const totalMilli = podValues.reduce((sum, v) => sum + toMilli(v), 0);
  const averageMilli = Math.trunc(totalMilli / podValues.length);
  const usageRatio = averageMilli / targetMilli;
  const withinTolerance = 1 - tolerance <= usageRatio && usageRatio <= 1 + tolerance;
  return {
    replicas: withinTolerance ? currentReplicas : Math.ceil(usageRatio * podValues.length),
    averageValue: averageMilli / 1000,
    usageRatio,
    withinTolerance,
  };
}

/** What held the decision back from the metric's proposal, in the HPA's condition terms. */
export type HpaLimit =
  | 'tolerance'
  | 'stabilization'
  | 'scale-up policy'
  | 'scale-down policy'
  | 'minReplicas'
  | 'maxReplicas';

export interface HpaDecision {
  readonly timeSeconds: number;
  readonly currentReplicas: number;
  /** The metric as the HPA saw it; NaN when the current count was out of range and no metric was read. */
  readonly averageValue: number;
  readonly usageRatio: number;
  /** The metric's proposal (NaN when no metric was read). */
  readonly proposal: number;
  /** After the stabilization windows, before the rate limits and min/max. */
  readonly stabilized: number;
  readonly desired: number;
  readonly action: 'scale up' | 'scale down' | 'none';
  readonly limitedBy: readonly HpaLimit[];
}

interface TimedValue {
  readonly time: number;
  readonly value: number;
}

/** Replica changes within the last `periodSeconds` (events strictly after the cutoff, as Go's After). */
function changeInPeriod(events: readonly TimedValue[], now: number, periodSeconds: number): number {
  const cutoff = now - periodSeconds;
  return events.reduce((sum, e) => (e.time > cutoff ? sum + e.value : sum), 0);
}

/**
 * One HPA object's controller state: its recent recommendations (for the
 * stabilization windows) and scale events (for the rate policies). Call
 * `sync` once per sync period with the time in seconds; it returns the
 * decision and records the scale event when the count changes, as the
 * controller does after a successful scale update.
 */
export class HpaController {
  private readonly tolerance: number;
  private recommendations: TimedValue[] | null = null;
  private scaleUpEvents: TimedValue[] = [];
  private scaleDownEvents: TimedValue[] = [];

  constructor(private readonly spec: HpaSpec) {
    const { minReplicas, maxReplicas, targetAverageValue } = spec;
    if (!Number.isInteger(minReplicas) || minReplicas < 1)
      throw new RangeError('minReplicas must be an integer >= 1');
    if (!Number.isInteger(maxReplicas) || maxReplicas < minReplicas)
      throw new RangeError('maxReplicas must be an integer >= minReplicas');
    if (!(targetAverageValue > 0)) throw new RangeError('targetAverageValue must be positive');
    this.tolerance = spec.tolerance ?? DEFAULT_TOLERANCE;
  }

  sync(input: {
    timeSeconds: number;
    currentReplicas: number;
    podValues: readonly number[];
  }): HpaDecision {
    const { timeSeconds: now, currentReplicas: current } = input;
    if (!Number.isInteger(current) || current < 1)
      throw new RangeError('currentReplicas must be an integer >= 1 (0 disables the HPA)');
    // The controller seeds the windows with the count it found on its first sync.
    this.recommendations ??= [{ time: now, value: current }];
    const { minReplicas, maxReplicas } = this.spec;

    if (current > maxReplicas || current < minReplicas) {
      const desired = current > maxReplicas ? maxReplicas : minReplicas;
      this.recordScale(now, current, desired);
      return {
        timeSeconds: now,
        currentReplicas: current,
        averageValue: NaN,
        usageRatio: NaN,
        proposal: NaN,
        stabilized: desired,
        desired,
        action: desired > current ? 'scale up' : 'scale down',
        limitedBy: [current > maxReplicas ? 'maxReplicas' : 'minReplicas'],
      };
    }

    const metric = podsMetricProposal(
      input.podValues,
      current,
      this.spec.targetAverageValue,
      this.tolerance,
    );
    const stabilized = this.stabilize(now, current, metric.replicas);
    const { desired, limit } = this.applyRateLimits(now, current, stabilized);
    // The window only counts as a reason when the limits alone would have decided otherwise.
    const unstabilized = this.applyRateLimits(now, current, metric.replicas);
    this.recordScale(now, current, desired);

    const limitedBy: HpaLimit[] = [];
    if (metric.withinTolerance) limitedBy.push('tolerance');
    if (unstabilized.desired !== desired) {
      limitedBy.push('stabilization');
      if (limit !== null) limitedBy.push(limit);
    } else if (unstabilized.limit !== null) limitedBy.push(unstabilized.limit);
    return {
      timeSeconds: now,
      currentReplicas: current,
      averageValue: metric.averageValue,
      usageRatio: metric.usageRatio,
      proposal: metric.replicas,
      stabilized,
      desired,
      action: desired > current ? 'scale up' : desired < current ? 'scale down' : 'none',
      limitedBy,
    };
  }

  /**
   * Scale-up takes the lowest recommendation within its window, scale-down
   * the highest within its window; the current count is held between the two.
   */
  private stabilize(now: number, current: number, proposal: number): number {
    const { scaleUp, scaleDown } = this.spec.behavior;
    const upCutoff = now - scaleUp.stabilizationWindowSeconds;
    const downCutoff = now - scaleDown.stabilizationWindowSeconds;
    let up = proposal;
    let down = proposal;
    for (const rec of this.recommendations ?? []) {
      if (rec.time > upCutoff) up = Math.min(up, rec.value);
      if (rec.time > downCutoff) down = Math.max(down, rec.value);
    }
    // Samples older than both windows can never matter again.
    this.recommendations = (this.recommendations ?? []).filter(
      (rec) => rec.time >= upCutoff || rec.time >= downCutoff,
    );
    this.recommendations.push({ time: now, value: proposal });
    return Math.min(Math.max(current, up), down);
  }

  private applyRateLimits(
    now: number,
    current: number,
    wanted: number,
  ): { desired: number; limit: HpaLimit | null } {
    const { minReplicas, maxReplicas, behavior } = this.spec;
    if (wanted > current) {
      const byPolicy = Math.max(current, this.scaleLimit(now, current, behavior.scaleUp, 'up'));
      const ceiling = Math.min(maxReplicas, byPolicy);
      if (wanted <= ceiling) return { desired: wanted, limit: null };
      return {
        desired: ceiling,
        limit: maxReplicas <= byPolicy ? 'maxReplicas' : 'scale-up policy',
      };
    }
    if (wanted < current) {
      const byPolicy = Math.min(current, this.scaleLimit(now, current, behavior.scaleDown, 'down'));
      const floor = Math.max(minReplicas, byPolicy);
      if (wanted >= floor) return { desired: wanted, limit: null };
      return {
        desired: floor,
        limit: minReplicas >= byPolicy ? 'minReplicas' : 'scale-down policy',
      };
    }
    return { desired: wanted, limit: null };
  }

  /**
   * The furthest the policies let the count move from the count at the start
   * of each policy's period; selectPolicy Max picks the largest change, Min
   * the smallest, Disabled none.
   */
  private scaleLimit(
    now: number,
    current: number,
    rules: ScalingRules,
    direction: 'up' | 'down',
  ): number {
    if (rules.selectPolicy === 'Disabled' || rules.policies.length === 0) return current;
    const proposals = rules.policies.map((policy) => {
      const start =
        current -
        changeInPeriod(this.scaleUpEvents, now, policy.periodSeconds) +
        changeInPeriod(this.scaleDownEvents, now, policy.periodSeconds);
      if (direction === 'up')
        return policy.type === 'Pods'
          ? start + policy.value
          : // Rounded up so a small deployment can always grow by at least one pod.
            Math.ceil(start * (1 + policy.value / 100));
      return policy.type === 'Pods'
        ? start - policy.value
        : Math.trunc(start * (1 - policy.value / 100));
    });
    const widest = direction === 'up' ? Math.max : Math.min;
    const narrowest = direction === 'up' ? Math.min : Math.max;
    return rules.selectPolicy === 'Max' ? widest(...proposals) : narrowest(...proposals);
  }

  private recordScale(now: number, from: number, to: number): void {
    if (to > from) this.scaleUpEvents.push({ time: now, value: to - from });
    else if (to < from) this.scaleDownEvents.push({ time: now, value: from - to });
    else return;
    // Events older than the longest policy period no longer limit anything.
    const longest = Math.max(
      0,
      ...this.spec.behavior.scaleUp.policies.map((p) => p.periodSeconds),
      ...this.spec.behavior.scaleDown.policies.map((p) => p.periodSeconds),
    );
    this.scaleUpEvents = this.scaleUpEvents.filter((e) => e.time > now - longest);
    this.scaleDownEvents = this.scaleDownEvents.filter((e) => e.time > now - longest);
  }
}

/** A short phrase for a table: what the HPA did and what held it back. */
export function describeDecision(decision: HpaDecision): string {
  const limits = decision.limitedBy.filter((l) => l !== 'tolerance');
  if (decision.action !== 'none') {
    return limits.length === 0
      ? decision.action
      : `${decision.action}, limited by ${limits.join(' + ')}`;
  }
  if (decision.limitedBy.includes('tolerance')) return 'within tolerance';
  if (limits.length > 0) {
    const held = limits.map((l) => (l === 'stabilization' ? 'stabilization window' : l));
    return `held by ${held.join(' + ')}`;
  }
  return 'no change';
}
