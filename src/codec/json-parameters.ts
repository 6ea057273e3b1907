import { invalidRequest } from '../errors';
import type { ParameterValue, Parameters } from '../protocol';
import { InexactIntegerError } from './json-header';

/**
 * JSON parameter values to InferParameter values, as Triton's HTTP frontend
 * maps them (SetTritonParameterFromJsonParameter): string, bool, integer
 * (int64) and other numbers (double); null, arrays and objects are refused.
 * A JSON number with an integer value is an integer here even when written
 * as 2.0, since JSON.parse does not keep the difference.
 */

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `exact` says the text was parsed with BigInt for long integers; before that,
 * an integer beyond 2^53 may have lost digits and asks for the exact parse.
 * After it, such a number came from a literal like 1e20 and is taken as a double.
 */
export function toParameterValue(key: string, value: unknown, exact: boolean): ParameterValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'number':
      if (!exact && !Number.isSafeInteger(value) && Number.isInteger(value))
        throw new InexactIntegerError();
      return value;
    default:
      throw invalidRequest(
        `parameter '${key}' has invalid type. It should be either 'int', 'bool', or 'string'.`,
      );
  }
}

/** A non-negative integer parameter (Triton's AsUInt); bigint once parsed exactly. */
export function isUnsignedInteger(value: unknown, exact: boolean): value is number | bigint {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return value >= 0;
    if (!exact && Number.isInteger(value)) throw new InexactIntegerError();
    return false;
  }
  return typeof value === 'bigint' && value >= 0n && value < 1n << 64n;
}

/** Copies a `parameters` object, leaving out the keys the HTTP frontend consumes. */
export function forwardParameters(
  params: JsonObject | undefined,
  consumed: (key: string) => boolean,
  exact: boolean,
): Parameters {
  const out: Parameters = {};
  if (params === undefined) return out;
  for (const key of Object.keys(params)) {
    if (consumed(key)) continue;
    const value = toParameterValue(key, params[key], exact);
    // A plain assignment to "__proto__" would replace the prototype instead of adding a key.
    if (key === '__proto__') {
      Object.defineProperty(out, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** The `parameters` member of a request, input or output object, if any. */
export function parametersOf(owner: JsonObject, where: string): JsonObject | undefined {
  const params = owner.parameters;
  if (params === undefined) return undefined;
  if (!isJsonObject(params)) {
    throw invalidRequest(`Unable to parse 'parameters' for ${where}: expected a JSON object`);
  }
  return params;
}
