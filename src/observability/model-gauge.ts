import type { Gauge } from 'prom-client';

/**
 * A gauge with a bounded `model` label, fed with raw model names and each
 * model's current value.
 *
 * Setting the label's series to one model's value would be wrong twice over:
 * many raw names share the "other" label (the last one to change would hide
 * the rest), and a model's label changes while it has a value (it gets its own
 * label on its first success, after it was queued as "other"), which would
 * leave the old series stuck at a value nobody lowers. So each model's
 * contribution is remembered with the label it was counted under and moved
 * when that label changes. Only models with a non-zero value are remembered:
 * garbage names cost nothing once idle.
 */
type GaugeChild = { inc(value: number): void; dec(value: number): void };

export class ModelGauge {
  private readonly contributions = new Map<string, { label: string; value: number }>();
  /** One child per label value (bounded by the labeller): labels() hashes a label object per call. */
  private readonly children = new Map<string, GaugeChild>();

  constructor(
    private readonly gauge: Gauge<'model'>,
    private readonly labelOf: (model: string) => string,
  ) {}

  set(model: string, value: number): void {
    const label = this.labelOf(model);
    const previous = this.contributions.get(model);
    if (previous === undefined) {
      this.child(label).inc(value);
    } else if (previous.label === label) {
      this.child(label).inc(value - previous.value);
    } else {
      this.child(previous.label).dec(previous.value);
      this.child(label).inc(value);
    }
    if (value === 0) this.contributions.delete(model);
    else if (previous === undefined) this.contributions.set(model, { label, value });
    else {
      previous.label = label;
      previous.value = value;
    }
  }

  private child(label: string): GaugeChild {
    let child = this.children.get(label);
    if (child === undefined) {
      child = this.gauge.labels(label);
      this.children.set(label, child);
    }
    return child;
  }
}
