import { status } from '@grpc/grpc-js';
import { TritonError, invalidArgument } from './triton-error';

/** One LogSettings value as proto-loader decodes it (oneofs: true names the field set). */
export interface WireLogSettingValue {
  parameter_choice?: 'bool_param' | 'uint32_param' | 'string_param';
  bool_param?: boolean;
  uint32_param?: number;
  string_param?: string;
}

export interface WireLogSettingsRequest {
  settings: Record<string, WireLogSettingValue>;
}

export interface WireTraceSettingsRequest {
  settings: Record<string, { value: string[] }>;
  model_name: string;
}

type LogValue = boolean | number | string;

const LOG_DEFAULTS: Readonly<Record<string, LogValue>> = {
  log_file: '',
  log_info: true,
  log_warning: true,
  log_error: true,
  log_verbose_level: 0,
  log_format: 'default',
};

/** The settings Triton keeps per trace scope; each a list of strings as TraceSetting carries them. */
const TRACE_KEYS = ['trace_level', 'trace_rate', 'trace_count', 'log_frequency'] as const;
type TraceKey = (typeof TRACE_KEYS)[number];
type TraceValues = Record<TraceKey, string[]>;

const TRACE_DEFAULTS: Readonly<TraceValues> = {
  trace_level: ['OFF'],
  trace_rate: ['1000'],
  trace_count: ['-1'],
  log_frequency: ['0'],
};

const LOG_TYPES: Readonly<Record<string, { choice: string; name: string }>> = {
  log_info: { choice: 'bool_param', name: 'boolean' },
  log_warning: { choice: 'bool_param', name: 'boolean' },
  log_error: { choice: 'bool_param', name: 'boolean' },
  log_verbose_level: { choice: 'uint32_param', name: 'int32' },
  log_format: { choice: 'string_param', name: 'string' },
};

/** Triton's std::stoi: leading whitespace, a sign and digits; the rest is ignored. */
function stoi(text: string): number | undefined {
  const match = /^\s*([+-]?\d+)/.exec(text);
  if (match === null) return undefined;
  const n = Number(match[1]);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : undefined;
}

/**
 * The log and trace settings of one server, changed and read the way
 * Triton's gRPC LogSettings and TraceSetting handlers do (server
 * src/grpc/grpc_server.cc): the same keys, value types, validation and
 * messages; per-model trace settings fall back to the global ones key by
 * key, and an empty value clears a key (a model's then follows the global).
 */
export class ServerSettings {
  private log: Record<string, LogValue> = { ...LOG_DEFAULTS };
  private trace: TraceValues = { ...TRACE_DEFAULTS };
  private readonly modelTrace = new Map<string, Partial<TraceValues>>();

  reset(): void {
    this.log = { ...LOG_DEFAULTS };
    this.trace = { ...TRACE_DEFAULTS };
    this.modelTrace.clear();
  }

  updateLog(request: WireLogSettingsRequest): TritonError | null {
    const settings = request.settings;
    if ('log_file' in settings) {
      return new TritonError(
        status.UNIMPLEMENTED,
        'log file location can not be updated through network protocol',
      );
    }
    const next = { ...this.log };
    for (const [key, type] of Object.entries(LOG_TYPES)) {
      const value = settings[key];
      if (value === undefined) continue;
      if (value.parameter_choice !== type.choice)
        return invalidArgument(`expect ${type.name} for '${key}'`);
      const v = value[type.choice as 'bool_param' | 'uint32_param' | 'string_param']!;
      if (key === 'log_format' && v !== 'default' && v !== 'ISO8601')
        return invalidArgument(`invalid argument for log_format, got: ${String(v)}`);
      next[key] = v;
    }
    this.log = next;
    return null;
  }

  logSettings(): { settings: Record<string, WireLogSettingValue> } {
    const settings: Record<string, WireLogSettingValue> = {};
    for (const [key, value] of Object.entries(this.log)) {
      if (typeof value === 'boolean') settings[key] = { bool_param: value };
      else if (typeof value === 'number') settings[key] = { uint32_param: value };
      else settings[key] = { string_param: value };
    }
    return { settings };
  }

  /** TraceSetting: applies the request's settings (if any) to the model's or the global scope. */
  updateTrace(request: WireTraceSettingsRequest): TritonError | null {
    const settings = request.settings;
    if ('trace_file' in settings) {
      return new TritonError(
        status.UNIMPLEMENTED,
        'trace file location can not be updated through network protocol',
      );
    }
    const changes: Partial<Record<TraceKey, string[] | null>> = {};
    for (const key of TRACE_KEYS) {
      const entry = settings[key];
      if (entry === undefined) continue;
      const values = entry.value;
      if (values.length === 0) {
        changes[key] = null;
        continue;
      }
      if (key === 'trace_level') {
        const problem = traceLevelProblem(values);
        if (problem !== null) return problem;
        const level = values.filter((v) => v === 'TIMESTAMPS' || v === 'TENSORS');
        changes[key] = level.length > 0 ? level : ['OFF'];
        continue;
      }
      if (values.length > 1) return invalidArgument(`expect only 1 value for '${key}'`);
      const n = stoi(values[0]!);
      if (n === undefined) return invalidArgument(`Unable to parse '${key}', got: ${values[0]}`);
      if (key === 'trace_count' && n < -1) {
        return invalidArgument(`Unable to parse '${key}'. Expecting value >= -1, got:${values[0]}`);
      }
      changes[key] = [String(n)];
    }
    const global = request.model_name === '';
    // The global scope clears a key back to its start value; a model's clears back to the global one.
    const scope: Partial<TraceValues> = global
      ? { ...this.trace }
      : { ...this.modelTrace.get(request.model_name) };
    for (const [key, value] of Object.entries(changes) as Array<[TraceKey, string[] | null]>) {
      if (value !== null) scope[key] = value;
      else if (global) scope[key] = TRACE_DEFAULTS[key];
      else delete scope[key];
    }
    const effective: TraceValues = { ...this.trace, ...scope };
    // Triton refuses to trace without a file to write to (its default is none here).
    if (effective.trace_level[0] !== 'OFF') {
      return invalidArgument(
        'Attempting to set invalid trace setting :trace file name is not given',
      );
    }
    if (global) this.trace = effective;
    else this.modelTrace.set(request.model_name, scope);
    return null;
  }

  traceSettings(model: string): { settings: Record<string, { value: string[] }> } {
    const values: TraceValues = {
      ...this.trace,
      ...(model === '' ? {} : this.modelTrace.get(model)),
    };
    const settings: Record<string, { value: string[] }> = {};
    for (const key of TRACE_KEYS) settings[key] = { value: [...values[key]] };
    settings.trace_file = { value: [''] };
    settings.trace_mode = { value: ['triton'] };
    return { settings };
  }
}

function traceLevelProblem(values: readonly string[]): TritonError | null {
  if (values.includes('OFF') && values.length > 1)
    return invalidArgument("Expect only one trace level 'OFF' is specified");
  return null;
}
