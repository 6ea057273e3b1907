/**
 * Which server a stateful sequence (sequence_id) lives on, as this replica
 * last sent it. Triton keeps a sequence's state on one server, so every
 * request of the sequence must go there.
 *
 * The server is chosen by rendezvous hashing of the sequence over the servers
 * where the model is READY (see Router.pick with `affinityKey`), so every
 * replica picks the same one without asking anybody. The pin kept here adds
 * what hashing alone cannot: once this replica has sent a sequence somewhere,
 * a change in the set of servers (one joins, one goes down) never moves it;
 * if its server goes away, the request fails with a clear error instead.
 *
 * A pin lives as long as the sequence is active: each request refreshes it,
 * and it ends with sequence_end or after `idleMs` without a request. The map
 * is bounded (least recently used first out).
 */
export class SequenceAffinity {
  private readonly map = new Map<string, { server: string; expiresAt: number }>();

  constructor(
    private readonly idleMs: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Key used both for the pin and for rendezvous hashing. */
  static key(model: string, sequenceId: string): string {
    return `${model}\u0000${sequenceId}`;
  }

  /** The pinned server, refreshing the pin's idle time; undefined when none or expired. */
  get(model: string, sequenceId: string): string | undefined {
    const key = SequenceAffinity.key(model, sequenceId);
    const entry = this.map.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (entry.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    // Re-inserted so the map's order stays least recently used first.
    this.map.delete(key);
    entry.expiresAt = now + this.idleMs;
    this.map.set(key, entry);
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

  get size(): number {
    return this.map.size;
  }
}
