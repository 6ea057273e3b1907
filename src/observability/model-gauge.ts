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
export class ModelGauge {
  private readonly contributions = new Map<string, { label: string; value: number }>();

  constructor(
    private readonly gauge: Gauge<'model'>,
    private readonly labelOf: (model: string) => string,
  ) {}

  set(model: string, value: number): void {
    const label = this.labelOf(model);
    const previous = this.contributions.get(model);
    if (previous === undefined) {
      this.gauge.labels(label).inc(value);
    } else if (previous.label === label) {
      this.gauge.labels(label).inc(value - previous.value);
    } else {
      this.gauge.labels(previous.label).dec(previous.value);
      this.gauge.labels(label).inc(value);
    }
    if (value === 0) this.contributions.delete(model);
    else this.contributions.set(model, { label, value });
  }
}
