import { LocalLocks } from './local-locks';
import { StoreBase, type StoreOptions } from './store-base';
import type { ModelStateLock, ReplicaSeen, StoreHealth } from './types';

export type MemoryStoreOptions = StoreOptions;

/**
 * The embedded store for a single replica (no REDIS_URL): the local view is
 * the whole truth, leases are always granted, locks exclude callers in this
 * process.
 */
export class MemoryModelStateStore extends StoreBase {
  private readonly locks = new LocalLocks();

  constructor(options: MemoryStoreOptions) {
    super(options);
  }

  health(): StoreHealth {
    return { backend: 'memory', up: true };
  }

  replicas(): Promise<readonly ReplicaSeen[]> {
    return Promise.resolve([{ id: this.replicaId, lastSeenAt: Date.now(), self: true }]);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.state.close();
    return Promise.resolve();
  }

  resync(): Promise<void> {
    return Promise.resolve();
  }

  tryLease(): Promise<boolean> {
    return Promise.resolve(true);
  }

  acquireLock(name: string, ttlMs: number): Promise<ModelStateLock | null> {
    return Promise.resolve(this.locks.acquire(name, ttlMs));
  }

  protected persistEntries(): Promise<void> {
    return Promise.resolve();
  }

  protected persistFailure(): Promise<void> {
    return Promise.resolve();
  }

  protected persistFailureCleared(): Promise<void> {
    return Promise.resolve();
  }

  protected persistGeneration(): Promise<void> {
    return Promise.resolve();
  }
}
