/**
 * CACHE_MODELS and COALESCE_MODELS: comma-separated `glob[:ttl]` entries
 * (e.g. `embed-*:10m,classifier:30s`).
 */
export interface ModelGlob {
  /** Glob over the model name: `*` any run of characters, `?` exactly one. Case-sensitive. */
  readonly pattern: string;
  /** How long an answer stays fresh; undefined when the entry gave none. */
  readonly ttlMs: number | undefined;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^([0-9]+)(ms|s|m|h)$/;
// Characters that separate entries and fields in the text form.
const PATTERN_FORBIDDEN = /[\s,:=|]/;

/** `500ms`, `30s`, `10m`, `2h` in milliseconds; throws with what was wrong. */
export function parseDuration(text: string, where: string): number {
  const m = DURATION.exec(text);
  if (m === null) {
    throw new Error(`${where}: TTL "${text}" must be a whole number with a unit: ms, s, m or h`);
  }
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error(`${where}: TTL must be above zero`);
  return ms;
}

/**
 * Parses `embed-*:10m,classifier:30s`: comma-separated `glob[:ttl]` entries.
 * With `ttl: 'required'` every entry needs one (CACHE_MODELS); otherwise a
 * TTL is accepted and kept, so a CACHE_MODELS value can be copied as is.
 */
export function parseModelGlobs(
  text: string,
  source: string,
  options: { ttl: 'required' | 'optional' },
): ModelGlob[] {
  if (text.trim() === '') return [];
  const seen = new Set<string>();
  return text.split(',').map((raw, index) => {
    const entry = raw.trim();
    const where = `${source} entry ${index + 1} "${entry}"`;
    if (entry === '') throw new Error(`${where}: empty entry (check for a stray comma)`);
    const colon = entry.lastIndexOf(':');
    const pattern = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    const ttlText = colon < 0 ? undefined : entry.slice(colon + 1).trim();
    if (pattern === '') throw new Error(`${where}: model pattern is empty`);
    if (PATTERN_FORBIDDEN.test(pattern)) {
      throw new Error(`${where}: pattern may not contain whitespace, ',', ':', '=' or '|'`);
    }
    if (seen.has(pattern)) throw new Error(`${where}: pattern "${pattern}" is listed twice`);
    seen.add(pattern);
    if (ttlText === undefined && options.ttl === 'required') {
      throw new Error(`${where}: expected glob:ttl, e.g. ${pattern}:10m`);
    }
    return { pattern, ttlMs: ttlText === undefined ? undefined : parseDuration(ttlText, where) };
  });
}

/** The value of COALESCE_MODELS that means "the models of CACHE_MODELS" (its default). */
export const COALESCE_CACHED_MODELS = 'CACHE_MODELS';

/**
 * COALESCE_MODELS: `CACHE_MODELS` (coalesce exactly the cached models),
 * `none` or empty (never), or its own glob list (a TTL there is accepted and
 * unused: coalescing lasts as long as the call).
 */
export function parseCoalesceModels(text: string, cached: readonly ModelGlob[]): ModelGlob[] {
  const value = text.trim();
  if (value === COALESCE_CACHED_MODELS) return [...cached];
  if (value === '' || value === 'none') return [];
  return parseModelGlobs(value, 'COALESCE_MODELS', { ttl: 'optional' });
}
