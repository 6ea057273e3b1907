import type { ModelStateLock } from './types';

interface Held {
  token: number;
  expiresAt: number;
}

/**
 * Locks that exclude callers within this process only: the memory store's
 * locks, and the Redis store's fallback while Redis is unreachable.
 */
export class LocalLocks {
  private readonly held = new Map<string, Held>();
  private readonly fences = new Map<string, number>();

  acquire(name: string, ttlMs: number): ModelStateLock | null {
    const now = Date.now();
    const current = this.held.get(name);
    if (current !== undefined && current.expiresAt > now) return null;
    const token = (this.fences.get(name) ?? 0) + 1;
    this.fences.set(name, token);
    this.held.set(name, { token, expiresAt: now + ttlMs });
    return {
      name,
      token,
      scope: 'local',
      release: () => Promise.resolve(this.release(name, token)),
      extend: (extendMs: number) => Promise.resolve(this.extend(name, token, extendMs)),
    };
  }

  private owns(name: string, token: number): boolean {
    const current = this.held.get(name);
    return current !== undefined && current.token === token && current.expiresAt > Date.now();
  }

  private release(name: string, token: number): boolean {
    if (!this.owns(name, token)) return false;
    this.held.delete(name);
    return true;
  }

  /**
   * The holder keeps the lock while its token is current: no later token was
   * granted, even if the lock lapsed (a slow renewal) in between.
   */
  private extend(name: string, token: number, ttlMs: number): boolean {
    const current = this.held.get(name);
    if (this.fences.get(name) !== token || (current !== undefined && current.token !== token))
      return false;
    this.held.set(name, { token, expiresAt: Date.now() + ttlMs });
    return true;
  }
}
