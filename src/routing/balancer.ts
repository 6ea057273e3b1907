/** What the balancer needs to know about a server; `outstanding` is read at pick time. */
export interface BalancedServer {
  readonly name: string;
  /**
   * Relative capacity; a server of weight 2 is meant to carry twice the load.
   * Default 1. Zero or less counts as infinitely loaded: such a server wins
   * only when the other draw is no better.
   */
  readonly weight?: number;
  /** Requests this proxy has in flight on the server right now. */
  readonly outstanding: number;
}

export interface BalancerOptions {
  /** Uniform in [0, 1); pass a seeded generator for reproducible picks. Default Math.random. */
  random?: () => number;
}

export interface Balancer {
  /**
   * Picks the less loaded of two servers drawn at random from the candidates
   * that are neither in `exclude` nor rejected by `eligible`; undefined when
   * none is left. Filtering through `eligible` lets a caller skip servers
   * (breaker open, not ready) without building a filtered array per pick.
   */
  pick<S extends BalancedServer>(
    candidates: readonly S[],
    exclude?: ReadonlySet<string>,
    eligible?: (server: S) => boolean,
  ): S | undefined;
}

/**
 * Power of two choices over in-flight counts. Always sending to the single
 * least loaded server makes every proxy replica (each with a stale view of
 * the others' load) herd onto the same server; comparing two random servers
 * keeps most of the benefit while the randomness spreads the choices.
 *
 * Load is (outstanding + 1) / weight: the +1 is the request being placed, so
 * weights still steer traffic when every server is idle.
 */
export function createBalancer(options: BalancerOptions = {}): Balancer {
  const random = options.random ?? Math.random;

  function pick<S extends BalancedServer>(
    candidates: readonly S[],
    exclude?: ReadonlySet<string>,
    eligible?: (server: S) => boolean,
  ): S | undefined {
    const filtered = eligible !== undefined || (exclude !== undefined && exclude.size > 0);
    const count = filtered ? countEligible(candidates, exclude, eligible) : candidates.length;
    if (count === 0) return undefined;
    if (count === 1) {
      return filtered ? firstEligible(candidates, exclude, eligible) : candidates[0];
    }
    // Two distinct positions among the eligible ones, without copying them out.
    const i = Math.floor(random() * count);
    let j = Math.floor(random() * (count - 1));
    if (j >= i) j++;
    let a: S | undefined;
    let b: S | undefined;
    if (filtered) {
      let seen = 0;
      for (let k = 0; k < candidates.length && (a === undefined || b === undefined); k++) {
        const server = candidates[k]!;
        if (!isEligible(server, exclude, eligible)) continue;
        if (seen === i) a = server;
        else if (seen === j) b = server;
        seen++;
      }
    } else {
      a = candidates[i];
      b = candidates[j];
    }
    // Ties go to the first draw, which is itself random: no bias to list order.
    return load(b!) < load(a!) ? b : a;
  }

  return { pick };
}

function load(server: BalancedServer): number {
  const weight = server.weight ?? 1;
  return weight > 0 ? (server.outstanding + 1) / weight : Infinity;
}

function isEligible<S extends BalancedServer>(
  server: S,
  exclude: ReadonlySet<string> | undefined,
  eligible: ((server: S) => boolean) | undefined,
): boolean {
  if (exclude !== undefined && exclude.has(server.name)) return false;
  return eligible === undefined || eligible(server);
}

function countEligible<S extends BalancedServer>(
  candidates: readonly S[],
  exclude: ReadonlySet<string> | undefined,
  eligible: ((server: S) => boolean) | undefined,
): number {
  let count = 0;
  for (let k = 0; k < candidates.length; k++) {
    if (isEligible(candidates[k]!, exclude, eligible)) count++;
  }
  return count;
}

function firstEligible<S extends BalancedServer>(
  candidates: readonly S[],
  exclude: ReadonlySet<string> | undefined,
  eligible: ((server: S) => boolean) | undefined,
): S | undefined {
  for (let k = 0; k < candidates.length; k++) {
    const server = candidates[k]!;
    if (isEligible(server, exclude, eligible)) return server;
  }
  return undefined;
}
