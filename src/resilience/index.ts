export { ExponentialBackoff } from './backoff';
export type { Backoff, ExponentialBackoffOptions } from './backoff';
export { RetryBudget } from './retry-budget';
export type { RetryBudgetOptions } from './retry-budget';
export { CircuitBreaker, defaultIsServerFault } from './circuit-breaker';
export type { BreakerState, BreakerStateListener, CircuitBreakerOptions } from './circuit-breaker';
export { executeWithRetry } from './retry-policy';
export type {
  AttemptContext,
  GiveUpInfo,
  GiveUpReason,
  RetryInfo,
  RetryOptions,
} from './retry-policy';
