import { createHash } from 'node:crypto';

/** What rendezvous hashing needs to know about a server. */
export interface RendezvousServer {
  readonly name: string;
  /** Relative capacity; a server of weight 2 gets twice the keys. Default 1; <= 0 never wins. */
  readonly weight?: number;
}

/** A uniform number in (0, 1) from the server and the key: the same on every replica. */
function unitHash(server: string, key: string): number {
  const digest = createHash('sha1').update(server).update('\u0000').update(key).digest();
  // 52 bits: as many as a double holds exactly; +0.5 keeps it off 0 and 1.
  const high = digest.readUInt32BE(0) >>> 0;
  const low = digest.readUInt32BE(4) >>> 12;
  return (high * 2 ** 20 + low + 0.5) / 2 ** 52;
}

/**
 * Highest random weight (rendezvous) hashing: every server gets a score for
 * the key and the highest score wins. Every replica that sees the same
 * eligible servers picks the same one, with no coordination; a server joining
 * takes over only the keys it now wins, and a server leaving moves only the
 * keys it held, so the other keys never move when the set changes.
 *
 * The weighted score -w / ln(u) gives each server a share of keys
 * proportional to its weight (Schindelhauer and Schomaker's logarithmic
 * method).
 */
export function rendezvousPick<S extends RendezvousServer>(
  candidates: readonly S[],
  key: string,
  eligible: (server: S) => boolean = () => true,
): S | undefined {
  let best: S | undefined;
  let bestScore = -Infinity;
  for (const server of candidates) {
    if (!eligible(server)) continue;
    const weight = server.weight ?? 1;
    const score = weight > 0 ? -weight / Math.log(unitHash(server.name, key)) : -Infinity;
    // Ties (practically only equal names) go to the lower name, so the pick never depends on order.
    if (
      best === undefined ||
      score > bestScore ||
      (score === bestScore && server.name < best.name)
    ) {
      best = server;
      bestScore = score;
    }
  }
  return best;
}
