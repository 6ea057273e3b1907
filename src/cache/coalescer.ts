import { ProxyError } from '../errors';
import { ClientGoneError } from '../admission';

/** One caller waiting for a shared call. */
export interface Waiter {
  /** This caller went away: it stops waiting; the call goes on for the others. */
  signal: AbortSignal;
  /** This caller's own deadline (ms since epoch): it gets a 504 then, the others keep waiting. */
  deadline: number;
}

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiters: number;
  settled: boolean;
}

/**
 * Identical requests in flight share one call. The call runs under a signal
 * of its own that aborts only when every waiter has gone, so one caller
 * disconnecting never cancels the others; its outcome, success or error,
 * reaches each waiter once (nobody retries it on their own: no storm).
 */
export class Coalescer<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Calls in flight (for tests and status). */
  get size(): number {
    return this.flights.size;
  }

  /**
   * Waits for the call in flight under `key`, or starts it with `start`.
   * `joined` says whether this caller shares a call another one started.
   */
  run(
    key: string,
    waiter: Waiter,
    start: (signal: AbortSignal) => Promise<T>,
    what: string,
  ): { promise: Promise<T>; joined: boolean } {
    let flight = this.flights.get(key);
    const joined = flight !== undefined;
    if (flight === undefined) flight = this.start(key, start);
    return { promise: this.wait(key, flight, waiter, what), joined };
  }

  private start(key: string, start: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    let promise: Promise<T>;
    try {
      promise = start(controller.signal);
    } catch (error) {
      promise = Promise.reject(error);
    }
    const flight: Flight<T> = { promise, controller, waiters: 0, settled: false };
    const done = () => {
      flight.settled = true;
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    promise.then(done, done);
    this.flights.set(key, flight);
    return flight;
  }

  private wait(key: string, flight: Flight<T>, waiter: Waiter, what: string): Promise<T> {
    flight.waiters++;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (error: unknown) => {
        if (left) return;
        left = true;
        clearTimeout(timer);
        waiter.signal.removeEventListener('abort', onAbort);
        if (error !== undefined) reject(error);
        if (--flight.waiters === 0 && !flight.settled) {
          // Nobody is left to read the answer: cancel the call, and let the
          // next identical request start a fresh one instead of joining it.
          if (this.flights.get(key) === flight) this.flights.delete(key);
          flight.controller.abort();
        }
      };
      const onAbort = () => leave(new ClientGoneError(what));
      const remaining = waiter.deadline - Date.now();
      const timer = setTimeout(
        () =>
          leave(
            new ProxyError(
              'UPSTREAM_TIMEOUT',
              `deadline exceeded while waiting for the answer to an identical request for model '${what}'`,
            ),
          ),
        Math.max(0, remaining),
      );
      if (waiter.signal.aborted) {
        onAbort();
        return;
      }
      waiter.signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          if (left) return;
          leave(undefined);
          resolve(value);
        },
        (error: unknown) => leave(error),
      );
    });
  }
}
