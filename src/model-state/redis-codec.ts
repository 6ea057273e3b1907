import { ERROR_CODES, type ErrorCode } from '../errors';
import { MODEL_STATUSES, type LoadFailure, type ModelStateEntry, type ModelStatus } from './types';

/**
 * What replicas publish on the change channel. Everything read from Redis is
 * validated: another proxy version, or a person with redis-cli, may have
 * written it.
 */
export type ChangeMessage =
  | {
      kind: 'entries';
      origin: string;
      server: string;
      replaceAsOf: number | null;
      entries: ModelStateEntry[];
    }
  | { kind: 'failure'; origin: string; failure: LoadFailure }
  | { kind: 'failure-cleared'; origin: string; model: string; version: string }
  | { kind: 'generation'; origin: string; model: string; generation: number };

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

export function parseEntry(value: unknown): ModelStateEntry | undefined {
  if (!isObject(value)) return undefined;
  const { server, model, version, status, reason, updatedAt, updatedBy, expiresAt } = value;
  if (!isString(server) || !isString(model) || !isString(version) || !isString(reason)) {
    return undefined;
  }
  if (!MODEL_STATUSES.includes(status as ModelStatus) || !isString(updatedBy)) return undefined;
  if (!isTime(updatedAt) || !isTime(expiresAt)) return undefined;
  return {
    server,
    model,
    version,
    status: status as ModelStatus,
    reason,
    updatedAt,
    updatedBy,
    expiresAt,
  };
}

export function parseFailure(value: unknown): LoadFailure | undefined {
  if (!isObject(value)) return undefined;
  const { model, version, server, reason, code, failedAt, until, failedBy } = value;
  if (!isString(model) || !isString(version) || !isString(server) || !isString(reason)) {
    return undefined;
  }
  if (!isString(code) || !(code in ERROR_CODES) || !isString(failedBy)) return undefined;
  if (!isTime(failedAt) || !isTime(until)) return undefined;
  return { model, version, server, reason, code: code as ErrorCode, failedAt, until, failedBy };
}

export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

export function parseMessage(raw: string): ChangeMessage | undefined {
  const value = parseJson(raw);
  if (!isObject(value) || !isString(value.origin)) return undefined;
  const origin = value.origin;
  switch (value.kind) {
    case 'entries': {
      if (!isString(value.server) || !Array.isArray(value.entries)) return undefined;
      const replaceAsOf = value.replaceAsOf;
      if (replaceAsOf !== null && !isTime(replaceAsOf)) return undefined;
      const entries: ModelStateEntry[] = [];
      for (const item of value.entries) {
        const entry = parseEntry(item);
        if (entry === undefined || entry.server !== value.server) return undefined;
        entries.push(entry);
      }
      return { kind: 'entries', origin, server: value.server, replaceAsOf, entries };
    }
    case 'failure': {
      const failure = parseFailure(value.failure);
      return failure === undefined ? undefined : { kind: 'failure', origin, failure };
    }
    case 'failure-cleared':
      if (!isString(value.model) || !isString(value.version)) return undefined;
      return { kind: 'failure-cleared', origin, model: value.model, version: value.version };
    case 'generation': {
      const generation = value.generation;
      if (!isString(value.model) || typeof generation !== 'number') return undefined;
      if (!Number.isSafeInteger(generation) || generation < 0) return undefined;
      return { kind: 'generation', origin, model: value.model, generation };
    }
    default:
      return undefined;
  }
}
