/**
 * Which server a stateful sequence (sequence_id) lives on. Triton keeps the
 * sequence's state on one server, so every request of the sequence must go
 * there. Entries end with sequence_end or expire when idle; the map is bounded.
 */
export class SequenceAffinity {
  private readonly map = new Map<string, { server: string; expiresAt: number }>();

  constructor(
    private readonly idleMs: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  private static key(model: string, sequenceId: string): string {
    return `${model}\u0000${sequenceId}`;
  }

  get(model: string, sequenceId: string): string | undefined {
    const key = SequenceAffinity.key(model, sequenceId);
    const entry = this.map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return entry.server;
  }

  set(model: string, sequenceId: string, server: string): void {
    const key = SequenceAffinity.key(model, sequenceId);
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { server, expiresAt: this.now() + this.idleMs });
  }

  end(model: string, sequenceId: string): void {
    this.map.delete(SequenceAffinity.key(model, sequenceId));
  }
}
