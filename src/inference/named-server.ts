import { invalidRequest } from '../errors';
import type { Fleet, Upstream } from '../fleet';

/**
 * The server a caller named (`?server=` or `X-Triton-Server`), undefined when
 * none was named; a name the fleet does not know is the caller's mistake, so
 * it is a 400 that lists the names it could have used.
 */
export function namedServer(fleet: Fleet, target: string | undefined): Upstream | undefined {
  if (target === undefined || target === '') return undefined;
  const s = fleet.get(target);
  if (!s)
    throw invalidRequest(
      `unknown Triton server '${target}' (known: ${fleet.servers.map((x) => x.name).join(', ')})`,
    );
  return s;
}
