import { ProxyError, toProxyError } from '../errors';
import type { Backoff } from './backoff';
import type { RetryBudget } from './retry-budget';

export interface AttemptContext {
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** Servers already tried by this request; the attempt must pick another. */
  readonly exclude: ReadonlySet<string>;
  /** Milliseconds left until the request's deadline; use it as the call's deadline. */
  readonly remainingMs: number;
  /** Aborted when the caller gives up; the attempt should cancel its call. */
  readonly signal: AbortSignal;
}

export interface RetryInfo {
  /** Number of the attempt about to be made (2 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: ProxyError;
  /** The server that failed and is now excluded. */
  readonly server: string;
}

/** Why the loop stopped with an error instead of retrying. */
export type GiveUpReason =
  'not-retryable' | 'sticky' | 'max-attempts' | 'no-server' | 'deadline' | 'budget' | 'aborted';

export interface GiveUpInfo {
  readonly reason: GiveUpReason;
  /** Attempts that were started. */
  readonly attempts: number;
  /** What the caller receives (for 'aborted', the signal's reason). */
  readonly error: unknown;
}

export interface RetryOptions<T> {
  /** One try against one server; a failure must be a ProxyError naming that server. */
  attempt: (ctx: AttemptContext) => Promise<T>;
  /** Absolute deadline of the whole request, ms since the epoch (same clock as `now`). */
  deadline: number;
  /** Attempts in total, the first one included. */
  maxAttempts: number;
  backoff: Backoff;
  budget: Pick<RetryBudget, 'recordRequest' | 'tryAcquireRetry'>;
  /** Aborting stops the loop at once and rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A stateful sequence bound to one server: a single attempt, never retried.
   * Retrying elsewhere would lose the sequence state, and a request that
   * never left this process (connection not yet up) is already retried by
   * grpc-js itself (transparent retry), so nothing is left that is safe here.
   */
  sticky?: boolean;
  /**
   * Whether a server outside `exclude` could take the retry. When it says no
   * the loop ends at once with the last error instead of sleeping a backoff
   * only to find nobody left to try.
   */
  hasAlternative?: (exclude: ReadonlySet<string>) => boolean;
  /**
   * True once the failed attempt's answer had begun reaching the client
   * (an answer passed through as it arrives): a retry would send the client
   * a second answer after part of the first, so the loop ends there.
   */
  answered?: () => boolean;
  onRetry?: (info: RetryInfo) => void;
  onGiveUp?: (info: GiveUpInfo) => void;
  /** Milliseconds clock; injectable for tests. Default Date.now. */
  now?: () => number;
}

/**
 * Runs `attempt` until it succeeds or retrying stops making sense. Each retry
 * excludes the servers already tried (so the picker chooses another), waits a
 * jittered backoff (OVERLOADED waits its Retry-After when it has one), and
 * needs room in the deadline and a token from the retry budget.
 *
 * The result is the attempt's value or, on failure:
 * - the last error, when it is not retryable, attempts or budget ran out, or
 *   the backoff would not fit in the remaining deadline;
 * - the previous error, when an attempt fails without naming a server after
 *   an earlier attempt failed: the picker had nothing left to try, and the
 *   client is better served by what the last server said (429 stays 429);
 * - UPSTREAM_TIMEOUT, when the deadline had already passed;
 * - the signal's reason, when the caller aborted.
 */
export async function executeWithRetry<T>(options: RetryOptions<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const maxAttempts = Math.max(1, options.maxAttempts);
  const signal = options.signal ?? new AbortController().signal;
  const exclude = new Set<string>();
  let previous: ProxyError | undefined;

  options.budget.recordRequest();

  const giveUp = (reason: GiveUpReason, attempts: number, error: unknown): unknown => {
    options.onGiveUp?.({ reason, attempts, error });
    return error;
  };

  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw giveUp('aborted', attempt - 1, signal.reason);
    const remainingMs = options.deadline - now();
    if (remainingMs <= 0) throw giveUp('deadline', attempt - 1, timeout(attempt - 1, previous));

    let error: ProxyError;
    try {
      return await options.attempt({ attempt, exclude, remainingMs, signal });
    } catch (thrown) {
      if (signal.aborted) throw giveUp('aborted', attempt, signal.reason);
      error = toProxyError(thrown);
    }

    const server = error.server;
    if (server === undefined) {
      // Failing before reaching a server means the picker found none to try;
      // a retry would face the same choice.
      if (previous) throw giveUp('no-server', attempt, previous);
      throw giveUp(error.retryable ? 'no-server' : 'not-retryable', attempt, error);
    }
    if (!error.retryable || options.answered?.() === true)
      throw giveUp('not-retryable', attempt, error);
    if (options.sticky) throw giveUp('sticky', attempt, error);
    if (attempt >= maxAttempts) throw giveUp('max-attempts', attempt, error);
    exclude.add(server);
    if (options.hasAlternative && !options.hasAlternative(exclude)) {
      throw giveUp('no-server', attempt, error);
    }

    const delayMs = retryDelay(error, options.backoff, attempt - 1);
    const left = options.deadline - now();
    if (left <= 0) throw giveUp('deadline', attempt, timeout(attempt, error));
    if (delayMs >= left) throw giveUp('deadline', attempt, error);
    // Last check, so a retry we would not make never spends a budget token.
    if (!options.budget.tryAcquireRetry()) throw giveUp('budget', attempt, error);

    previous = error;
    options.onRetry?.({ attempt: attempt + 1, delayMs, error, server });
    if (delayMs > 0) {
      try {
        await sleep(delayMs, signal);
      } catch {
        throw giveUp('aborted', attempt, signal.reason);
      }
    }
  }
}

function retryDelay(error: ProxyError, backoff: Backoff, retry: number): number {
  if (error.code === 'OVERLOADED' && error.retryAfterSeconds !== undefined) {
    return error.retryAfterSeconds * 1000;
  }
  return backoff.delay(retry);
}

function timeout(attempts: number, last: ProxyError | undefined): ProxyError {
  const detail = last ? `; last error: ${last.message}` : '';
  return new ProxyError(
    'UPSTREAM_TIMEOUT',
    `request deadline exceeded after ${attempts} attempt${attempts === 1 ? '' : 's'}${detail}`,
    { cause: last },
  );
}

/** setTimeout that rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
