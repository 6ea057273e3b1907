import { invalidRequest } from '../errors';

/**
 * Parsing the JSON inference header.
 *
 * Exact 64-bit integers: JSON.parse turns 9007199254740993 into
 * 9007199254740992 without a word. The converters notice any integer outside
 * the safe range where exactness matters (INT64/UINT64 tensor data, parameter
 * values) and throw InexactIntegerError; the caller then parses the same text
 * again with `exact`, where a reviver reads each such number's source text
 * (the `context.source` argument JSON.parse passes to revivers since V8 11.4,
 * Node 21) and returns a BigInt with the exact digits. Ordinary requests pay
 * for one plain JSON.parse only.
 *
 * Non-finite numbers: Triton parses with rapidjson's kParseNanAndInfFlag, and
 * tritonclient (python-rapidjson) sends NaN / Infinity / -Infinity tokens for
 * such float inputs. JSON.parse rejects them, so on a syntax error the text is
 * rewritten, outside strings, to stand-in number literals and parsed again.
 */

/** Thrown by converters that met an integer JSON.parse could not hold exactly. */
export class InexactIntegerError extends Error {
  constructor() {
    super('integer beyond 2^53 needs an exact parse');
    this.name = 'InexactIntegerError';
  }
}

export interface ParsedJson {
  readonly root: unknown;
  /** True when integers beyond 2^53 are BigInt (the reviver ran). */
  readonly exact: boolean;
}

interface ReviverContext {
  source?: string;
}

// Stands in for NaN: a literal no client would write, told apart by its source text.
const NAN_STAND_IN = '-0.0e-314159';
const INFINITY_STAND_IN = '1e999';
const PLAIN_INTEGER = /^-?[0-9]+$/;

function revive(_key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value !== 'number') return value;
  const source = context?.source;
  if (source === undefined) return value;
  if (value === 0) return source === NAN_STAND_IN ? NaN : value;
  if (!Number.isSafeInteger(value) && Number.isInteger(value) && PLAIN_INTEGER.test(source)) {
    return BigInt(source);
  }
  return value;
}

function parseError(error: unknown, text: string): never {
  let message = error instanceof Error ? error.message : String(error);
  if (message === 'Unexpected end of JSON input') message += ` at position ${text.length}`;
  throw invalidRequest(`failed to parse the request JSON buffer: ${message}`);
}

/** Parses the header text; `exact` turns integers beyond 2^53 into BigInt. */
export function parseJsonHeader(text: string, exact: boolean): ParsedJson {
  try {
    return exact
      ? { root: JSON.parse(text, revive), exact: true }
      : { root: JSON.parse(text), exact: false };
  } catch (error) {
    const rewritten = rewriteNonFiniteTokens(text);
    if (rewritten === undefined) parseError(error, text);
    try {
      return { root: JSON.parse(rewritten, revive), exact: true };
    } catch {
      parseError(error, text);
    }
  }
}

const CHAR_QUOTE = 34;
const CHAR_BACKSLASH = 92;
const CHAR_MINUS = 45;
const CHAR_N = 78;
const CHAR_I = 73;

/**
 * Replaces the tokens rapidjson accepts (NaN, Inf, Infinity, with optional
 * minus) outside strings by number literals; undefined when there are none.
 * Outside strings, valid JSON never contains 'N' or 'I', so any occurrence
 * starts one of these tokens or is an error JSON.parse will still report.
 */
function rewriteNonFiniteTokens(text: string): string | undefined {
  if (!text.includes('NaN') && !text.includes('Inf')) return undefined;
  let out = '';
  let copied = 0;
  let inString = false;
  let found = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === CHAR_BACKSLASH) i++;
      else if (c === CHAR_QUOTE) inString = false;
      continue;
    }
    if (c === CHAR_QUOTE) {
      inString = true;
      continue;
    }
    const negative = c === CHAR_MINUS;
    const at = negative ? i + 1 : i;
    const lead = text.charCodeAt(at);
    let length = 0;
    let replacement = '';
    if (lead === CHAR_N && text.startsWith('NaN', at)) {
      length = 3;
      replacement = NAN_STAND_IN;
    } else if (lead === CHAR_I && text.startsWith('Inf', at)) {
      length = text.startsWith('Infinity', at) ? 8 : 3;
      replacement = negative ? `-${INFINITY_STAND_IN}` : INFINITY_STAND_IN;
    } else {
      continue;
    }
    out += text.slice(copied, i) + replacement;
    i = at + length - 1;
    copied = at + length;
    found = true;
  }
  return found ? out + text.slice(copied) : undefined;
}
