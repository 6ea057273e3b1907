import { invalidRequest } from '../errors';

type Json = Record<string, unknown>;

/**
 * Triton's log and trace settings as its HTTP endpoint speaks them (JSON
 * values) and as its gRPC LogSettings / TraceSetting RPCs carry them (typed
 * oneofs, lists of strings). Keys the proxy does not know are passed on when
 * their value can travel, so a newer Triton's settings work unchanged.
 */

/** The order Triton's HTTP endpoint writes them in. */
const LOG_ORDER = [
  'log_file',
  'log_info',
  'log_warning',
  'log_error',
  'log_verbose_level',
  'log_format',
];
const TRACE_ORDER = [
  'trace_level',
  'trace_rate',
  'trace_count',
  'log_frequency',
  'trace_file',
  'trace_mode',
];

const LOG_TYPES: Readonly<Record<string, 'boolean' | 'uint32' | 'string'>> = {
  log_file: 'string',
  log_info: 'boolean',
  log_warning: 'boolean',
  log_error: 'boolean',
  log_verbose_level: 'uint32',
  log_format: 'string',
};

const TYPE_NAMES = {
  boolean: 'a boolean',
  uint32: 'an integer from 0 to 4294967295',
  string: 'a string',
} as const;

const isUint32 = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function typeOf(value: unknown): 'boolean' | 'uint32' | 'string' | undefined {
  if (typeof value === 'boolean') return 'boolean';
  if (isUint32(value)) return 'uint32';
  if (typeof value === 'string') return 'string';
  return undefined;
}

/**
 * A POST /v2/logging body as LogSettingsRequest.settings. A null value is
 * left out (Triton's HTTP endpoint ignores it); a value of the wrong type is
 * a 400 naming the setting.
 */
export function logSettingsRequest(body: Json): Json {
  const settings: Json = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === null) continue;
    const expected = LOG_TYPES[key];
    const actual = typeOf(value);
    if (expected !== undefined && actual !== expected)
      throw invalidRequest(`log setting '${key}' must be ${TYPE_NAMES[expected]}`);
    if (actual === undefined) {
      throw invalidRequest(
        `log setting '${key}' must be a boolean, an unsigned integer or a string`,
      );
    }
    settings[key] =
      actual === 'boolean'
        ? { bool_param: value }
        : actual === 'uint32'
          ? { uint32_param: value }
          : { string_param: value };
  }
  return settings;
}

/** LogSettingsResponse.settings as Triton's HTTP endpoint writes them. */
export function logSettingsJson(settings: Json | undefined): Json {
  const values: Json = {};
  for (const [key, raw] of Object.entries(settings ?? {})) {
    const v = raw as { bool_param?: boolean; uint32_param?: number; string_param?: string };
    values[key] = v.bool_param ?? v.uint32_param ?? v.string_param ?? null;
  }
  return ordered(values, LOG_ORDER);
}

/**
 * A POST .../trace/setting body as TraceSettingRequest.settings: a string
 * is one value, an array of strings several (trace_level), null clears the
 * setting (an empty list, as Triton's gRPC endpoint reads it).
 */
export function traceSettingsRequest(body: Json): Json {
  const settings: Json = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === null) settings[key] = { value: [] };
    else if (typeof value === 'string') settings[key] = { value: [value] };
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
      settings[key] = { value };
    else
      throw invalidRequest(
        `trace setting '${key}' must be a string, an array of strings or null (numbers are written as strings, e.g. "1000")`,
      );
  }
  return settings;
}

/** TraceSettingResponse.settings as Triton's HTTP endpoint writes them (trace_level stays a list). */
export function traceSettingsJson(settings: Json | undefined): Json {
  const values: Json = {};
  for (const [key, raw] of Object.entries(settings ?? {})) {
    const list = (raw as { value?: unknown[] }).value ?? [];
    values[key] = key === 'trace_level' ? list : (list[0] ?? '');
  }
  return ordered(values, TRACE_ORDER);
}

function ordered(values: Json, order: readonly string[]): Json {
  const out: Json = {};
  for (const key of order) if (key in values) out[key] = values[key];
  for (const key of Object.keys(values).sort()) if (!(key in out)) out[key] = values[key];
  return out;
}
