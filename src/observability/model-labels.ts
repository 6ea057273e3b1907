/**
 * Keeps the `model` label bounded: the first `limit` model names seen keep
 * their own label, any further name becomes "other". Names are only admitted
 * once the caller knows the model exists, so garbage names from clients never
 * take a slot.
 */
export class ModelLabels {
  private readonly known = new Set<string>();

  constructor(private readonly limit: number) {}

  /** Label for a model that exists (admits it while there is room). */
  forKnown(model: string): string {
    if (this.known.has(model)) return model;
    if (this.known.size < this.limit) {
      this.known.add(model);
      return model;
    }
    return 'other';
  }

  /** Label for a name that may be garbage: never admits a new one. */
  forUntrusted(model: string): string {
    return this.known.has(model) ? model : 'other';
  }
}
