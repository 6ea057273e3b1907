import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { ProxyError } from '../errors';
import type { Client, Quota } from './client';

/** The budget a client's limiter enforces: `points` per fixed window of `windowSeconds`. */
interface Policy {
  name: 'requests' | 'bytes';
  points: number;
  windowSeconds: number;
}

/** What a request consumed of its client's budget, for the RateLimit headers of the answer. */
export interface QuotaState {
  /** Header values (IETF httpapi-ratelimit-headers): empty when the client has no quota. */
  headers: Readonly<Record<string, string>>;
}

export interface QuotaOptions {
  /** An ioredis client: budgets are shared by every replica using it. Absent: per replica. */
  redis?: unknown;
  keyPrefix: string;
  onLimited?: (client: Client, policy: 'requests' | 'bytes') => void;
  /** Redis failed and the in-memory insurance decided (quotas per replica until it is back). */
  onInsurance?: () => void;
}

const NO_QUOTA: QuotaState = { headers: {} };

/**
 * A request quota as a fixed window rate-limiter-flexible can keep in Redis:
 * `burst` requests per `burst / requestsPerSecond` seconds (at least one
 * second), so the sustained rate is requestsPerSecond and up to `burst` may
 * come at once.
 */
export function requestPolicy(quota: Quota): Policy | undefined {
  const rps = quota.requestsPerSecond;
  if (rps === undefined) return undefined;
  const burst = Math.max(quota.burst ?? rps, 1);
  const windowSeconds = Math.max(1, Math.round(burst / rps));
  return { name: 'requests', points: Math.max(1, Math.round(rps * windowSeconds)), windowSeconds };
}

function bytesPolicy(quota: Quota): Policy | undefined {
  const bps = quota.bytesPerSecond;
  return bps === undefined
    ? undefined
    : { name: 'bytes', points: Math.round(bps), windowSeconds: 1 };
}

/**
 * Per-client budgets (requests/s and body bytes/s). With Redis they are
 * shared by all replicas (one atomic INCR per request of a client that has a
 * quota; clients without one cost nothing); when Redis fails, each replica
 * falls back to an in-memory limiter of the same budget, so quotas degrade
 * to per replica and no request fails because Redis did. Over budget:
 * RATE_LIMITED (429) with Retry-After and RateLimit headers.
 */
export class QuotaEnforcer {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(private readonly options: QuotaOptions) {}

  /**
   * Takes one request (and `bytes`, when the client has a byte quota and
   * they are known) from the client's budget. Rejects with RATE_LIMITED.
   */
  async consume(client: Client, bytes = 0): Promise<QuotaState> {
    const requests = requestPolicy(client.quota);
    const byteBudget = bytesPolicy(client.quota);
    if (requests === undefined && byteBudget === undefined) return NO_QUOTA;
    const headers: Record<string, string> = {};
    const policies: string[] = [];
    const remaining: string[] = [];
    for (const [policy, cost] of [
      [requests, 1],
      [byteBudget, bytes],
    ] as const) {
      if (policy === undefined) continue;
      policies.push(`"${policy.name}";q=${policy.points};w=${policy.windowSeconds}`);
      // A body larger than a whole window's budget takes the whole window, not a 429 forever.
      const res = await this.take(client, policy, Math.min(cost, policy.points));
      const resetSeconds = Math.max(0, Math.ceil(res.msBeforeNext / 1000));
      remaining.push(`"${policy.name}";r=${Math.max(0, res.remainingPoints)};t=${resetSeconds}`);
      if (res.limited) {
        headers['ratelimit-policy'] = policies.join(', ');
        headers.ratelimit = remaining.join(', ');
        this.options.onLimited?.(client, policy.name);
        throw new ProxyError(
          'RATE_LIMITED',
          `client '${client.name}' is over its quota of ${policy.points} ${policy.name} per ${policy.windowSeconds} s`,
          { retryAfterSeconds: Math.max(1, resetSeconds), headers },
        );
      }
    }
    headers['ratelimit-policy'] = policies.join(', ');
    headers.ratelimit = remaining.join(', ');
    return { headers };
  }

  private async take(
    client: Client,
    policy: Policy,
    cost: number,
  ): Promise<{ limited: boolean; remainingPoints: number; msBeforeNext: number }> {
    if (cost <= 0) {
      return { limited: false, remainingPoints: policy.points, msBeforeNext: 0 };
    }
    const limiter = this.limiterFor(client, policy);
    try {
      const res = await limiter.consume(client.name, cost);
      return {
        limited: false,
        remainingPoints: res.remainingPoints,
        msBeforeNext: res.msBeforeNext,
      };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        return {
          limited: true,
          remainingPoints: err.remainingPoints,
          msBeforeNext: err.msBeforeNext,
        };
      }
      // The insurance limiter cannot fail; anything else is a bug, and quotas must not fail requests.
      return { limited: false, remainingPoints: policy.points, msBeforeNext: 0 };
    }
  }

  /** One limiter per client and budget; a changed budget (keys file reload) gets a new one. */
  private limiterFor(client: Client, policy: Policy): RateLimiterAbstract {
    const id = `${client.name}\u0000${policy.name}\u0000${policy.points}\u0000${policy.windowSeconds}`;
    let limiter = this.limiters.get(id);
    if (limiter !== undefined) return limiter;
    const keyPrefix = `${this.options.keyPrefix}quota:${policy.name}:${policy.points}:${policy.windowSeconds}`;
    const base = { points: policy.points, duration: policy.windowSeconds, keyPrefix };
    const memory = new RateLimiterMemory(base);
    if (this.options.redis === undefined) {
      limiter = memory;
    } else {
      const onInsurance = this.options.onInsurance;
      limiter = new RateLimiterRedis({
        ...base,
        storeClient: this.options.redis,
        // A Redis that is down or reconnecting is not waited for: the insurance decides at once.
        rejectIfRedisNotReady: true,
        // Once over budget, the client is refused from memory until the window ends:
        // a client hammering past its quota costs no Redis round trips.
        inMemoryBlockOnConsumed: policy.points,
        inMemoryBlockDuration: policy.windowSeconds,
        insuranceLimiter: onInsurance ? new CountingInsurance(base, onInsurance) : memory,
      });
    }
    this.limiters.set(id, limiter);
    return limiter;
  }
}

/** The in-memory fallback, counting when it had to decide because Redis failed. */
class CountingInsurance extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: () => void,
  ) {
    super(options);
  }

  override consume(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(key, points, options);
  }
}
