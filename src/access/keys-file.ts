import { createHash } from 'node:crypto';
import yaml from 'js-yaml';
import {
  ModelGlobs,
  PRIORITIES,
  SCOPES,
  type Client,
  type Priority,
  type Quota,
  type Scope,
} from './client';

/** A client of the keys file with the SHA-256 (lowercase hex) of each of its keys. */
export interface KeyedClient {
  client: Client;
  keySha256: string[];
}

export class KeysFileError extends Error {
  override name = 'KeysFileError';
}

/** Lowercase hex SHA-256 of a key, the form the keys file and the lookup table use. */
export function sha256Hex(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const FIELDS = new Set([
  'name',
  'key',
  'keySha256',
  'scopes',
  'models',
  'requestsPerSecond',
  'burst',
  'bytesPerSecond',
  'priority',
]);

function stringList(value: unknown, what: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string' || v === '')) {
    throw new KeysFileError(`${what} must be a non-empty string or a list of them`);
  }
  return list as string[];
}

function positive(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new KeysFileError(`${what} must be a positive number`);
  }
  return value;
}

/**
 * Parses the keys file (YAML or JSON: JSON is YAML) into clients. Every
 * problem is reported with the client it is about and never with a key.
 */
export function parseKeysFile(text: string): KeyedClient[] {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new KeysFileError(`not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (
    typeof doc !== 'object' ||
    doc === null ||
    !Array.isArray((doc as { clients?: unknown }).clients)
  ) {
    throw new KeysFileError("expected a top-level 'clients' list");
  }
  const names = new Set<string>();
  const hashes = new Map<string, string>();
  return (doc as { clients: unknown[] }).clients.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new KeysFileError(`clients[${i}] must be an object`);
    }
    const e = entry as Record<string, unknown>;
    const name = e.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new KeysFileError(
        `clients[${i}].name must be 1-63 characters of letters, digits, '.', '_' or '-'`,
      );
    }
    const where = `client '${name}'`;
    if (names.has(name)) throw new KeysFileError(`${where} is listed twice`);
    names.add(name);
    for (const field of Object.keys(e)) {
      if (!FIELDS.has(field)) throw new KeysFileError(`${where} has an unknown field '${field}'`);
    }
    const keySha256: string[] = [];
    if (e.key !== undefined) {
      for (const key of stringList(e.key, `${where}: key`)) keySha256.push(sha256Hex(key));
    }
    if (e.keySha256 !== undefined) {
      for (const hash of stringList(e.keySha256, `${where}: keySha256`)) {
        if (!HEX64.test(hash)) {
          throw new KeysFileError(`${where}: keySha256 must be 64 lowercase hex characters`);
        }
        keySha256.push(hash);
      }
    }
    if (keySha256.length === 0) throw new KeysFileError(`${where} needs 'key' or 'keySha256'`);
    for (const hash of keySha256) {
      const other = hashes.get(hash);
      if (other !== undefined && other !== name) {
        throw new KeysFileError(`${where} and client '${other}' share a key`);
      }
      hashes.set(hash, name);
    }
    const scopes = stringList(e.scopes ?? [], `${where}: scopes`);
    for (const s of scopes) {
      if (!(SCOPES as readonly string[]).includes(s)) {
        throw new KeysFileError(`${where}: unknown scope '${s}' (use ${SCOPES.join(', ')})`);
      }
    }
    const priority = e.priority ?? 'normal';
    if (typeof priority !== 'string' || !(PRIORITIES as readonly string[]).includes(priority)) {
      throw new KeysFileError(`${where}: priority must be one of ${PRIORITIES.join(', ')}`);
    }
    const quota: Quota = {
      requestsPerSecond: positive(e.requestsPerSecond, `${where}: requestsPerSecond`),
      burst: positive(e.burst, `${where}: burst`),
      bytesPerSecond: positive(e.bytesPerSecond, `${where}: bytesPerSecond`),
    };
    if (quota.burst !== undefined && quota.requestsPerSecond === undefined) {
      throw new KeysFileError(`${where}: burst needs requestsPerSecond`);
    }
    const client: Client = {
      name,
      label: name,
      scopes: new Set(scopes as Scope[]),
      models:
        e.models === undefined
          ? undefined
          : new ModelGlobs(stringList(e.models, `${where}: models`)),
      quota,
      priority: priority as Priority,
      anonymous: false,
    };
    return { client, keySha256 };
  });
}
