import { LRUCache } from 'lru-cache';
import type { CacheEntry } from './cache-entry';

export interface MemoryTierOptions {
  /** Bound on the bytes held (answers plus a per-entry overhead estimate). */
  maxBytes: number;
  /** Larger answers are not kept. */
  maxEntryBytes: number;
  /** An entry pushed out to make room (not expiry, not invalidation). */
  onEvict?: () => void;
}

// Objects around the bytes: the decoded message, its arrays and the LRU's own slots.
const ENTRY_OVERHEAD_BYTES = 512;

/**
 * The in-process tier: an LRU bounded in bytes (lru-cache), entries expiring
 * at their own deadline. Also indexes keys by model, so that a model's
 * entries are dropped at once when it is loaded or unloaded instead of
 * occupying memory until they age out.
 */
export class MemoryTier {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly keysByModel = new Map<string, Set<string>>();

  constructor(options: MemoryTierOptions) {
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: options.maxBytes,
      maxEntrySize: options.maxEntryBytes + ENTRY_OVERHEAD_BYTES,
      sizeCalculation: (entry, key) => entry.bytes.length + key.length + ENTRY_OVERHEAD_BYTES,
      ttlAutopurge: false,
      dispose: (entry, key, reason) => {
        const keys = this.keysByModel.get(entry.model);
        keys?.delete(key);
        if (keys?.size === 0) this.keysByModel.delete(entry.model);
        if (reason === 'evict') options.onEvict?.();
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  /** False when the entry is too large or already expired. */
  set(key: string, entry: CacheEntry): boolean {
    const ttl = Math.floor(entry.expiresAt - Date.now());
    if (ttl <= 0) return false;
    this.lru.set(key, entry, { ttl });
    if (!this.lru.has(key)) return false;
    let keys = this.keysByModel.get(entry.model);
    if (keys === undefined) {
      keys = new Set();
      this.keysByModel.set(entry.model, keys);
    }
    keys.add(key);
    return true;
  }

  /** Drops the model's entries of generations before `generation`; returns how many. */
  invalidate(model: string, generation: number): number {
    const keys = this.keysByModel.get(model);
    if (keys === undefined) return 0;
    let dropped = 0;
    for (const key of [...keys]) {
      const entry = this.lru.peek(key, { allowStale: true });
      if (entry === undefined || entry.generation < generation) {
        this.lru.delete(key);
        keys.delete(key);
        dropped++;
      }
    }
    if (keys.size === 0) this.keysByModel.delete(model);
    return dropped;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get entries(): number {
    return this.lru.size;
  }

  clear(): void {
    this.lru.clear();
    this.keysByModel.clear();
  }
}
