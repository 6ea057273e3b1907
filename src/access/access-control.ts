import { readFileSync } from 'node:fs';
import { watchFileChanges } from '../config';
import { ProxyError } from '../errors';
import type { Logger } from '../observability';
import { mayUseModel, type Client, type Scope } from './client';
import { JwtVerifier, looksLikeJwt, type JwtOptions } from './jwt';
import { KeysFileError, parseKeysFile, sha256Hex } from './keys-file';

/** Credentials as a request carries them, whatever the protocol. */
export interface Credentials {
  /** The value after `Bearer ` in `authorization` (HTTP header or gRPC metadata). */
  bearer?: string;
  /** `x-api-key` (HTTP header or gRPC metadata). */
  apiKey?: string;
}

export interface AccessControlOptions {
  /**
   * YAML/JSON file(s) with a top-level `clients` list, comma-separated (e.g.
   * inference keys and admin keys from two Secrets); each is reloaded when it
   * changes and their clients are merged.
   */
  keysFile?: string;
  keysReloadIntervalMs?: number;
  /** The older flat key list: each key gets `infer` and `read`. */
  apiKeys?: readonly string[];
  jwt?: JwtOptions;
  /** With no credential configured at all, anonymous callers get `admin` too. */
  allowUnauthenticatedAdmin: boolean;
  /** Load parameters named `file:...` (model files written onto Triton) are allowed. */
  modelFileOverrides: boolean;
  logger: Logger;
  onReload?: (ok: boolean) => void;
}

const LEGACY_SCOPES: ReadonlySet<Scope> = new Set(['infer', 'read']);

/**
 * The front door's identity and permission decisions, independent of the
 * protocol: `authenticate` turns credentials into a Client (or a 401/403
 * ProxyError), `authorize` checks a scope and a model. The HTTP and gRPC
 * front ends only extract credentials and map the errors.
 */
export class AccessControl {
  private byKeyHash = new Map<string, Client>();
  private readonly jwt: JwtVerifier | undefined;
  private readonly anonymousClient: Client;
  private stopWatching: (() => void) | undefined;
  /** True when any credential is configured: then every request needs one. */
  readonly enabled: boolean;

  constructor(private readonly options: AccessControlOptions) {
    this.jwt = options.jwt ? new JwtVerifier(options.jwt) : undefined;
    this.enabled =
      (options.keysFile ?? '').split(',').some((f) => f.trim() !== '') ||
      (options.apiKeys?.length ?? 0) > 0 ||
      this.jwt !== undefined;
    this.anonymousClient = {
      name: 'anonymous',
      label: 'anonymous',
      scopes: new Set<Scope>(
        options.allowUnauthenticatedAdmin ? ['infer', 'read', 'admin'] : ['infer', 'read'],
      ),
      models: undefined,
      quota: {},
      priority: 'normal',
      anonymous: true,
    };
    // Throws at start on a bad file: a proxy must not come up open by mistake.
    this.byKeyHash = this.buildTable(this.readKeysFile());
  }

  /** Starts reloading the keys files when one of them changes. */
  start(): void {
    const files = this.keysFiles();
    if (files.length === 0 || this.stopWatching) return;
    const stops = files.map((file) =>
      watchFileChanges(file, this.options.keysReloadIntervalMs ?? 2000, () => this.reload()),
    );
    this.stopWatching = () => {
      for (const stop of stops) stop();
    };
  }

  private keysFiles(): string[] {
    return (this.options.keysFile ?? '')
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f !== '');
  }

  stop(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /**
   * Reads the keys file again. A file that does not parse leaves the
   * previous clients in place (a half-written Secret must not lock everyone
   * out, nor open the door); the error is logged without any key.
   */
  reload(): boolean {
    try {
      this.byKeyHash = this.buildTable(this.readKeysFile());
      this.options.logger.info('auth keys file reloaded', { clients: this.clientCount() });
      this.options.onReload?.(true);
      return true;
    } catch (err) {
      this.options.logger.error('auth keys file not reloaded; keeping the previous clients', {
        error: (err as Error).message,
      });
      this.options.onReload?.(false);
      return false;
    }
  }

  /** Names of the clients currently configured (for metric labels and status). */
  clientCount(): number {
    return new Set([...this.byKeyHash.values()].map((c) => c.name)).size;
  }

  /**
   * The client behind these credentials. Without any configured credential
   * everyone is the anonymous client. Rejects with UNAUTHENTICATED (401)
   * when a credential is needed and missing, or a token does not verify;
   * FORBIDDEN (403) for a key nobody has.
   */
  async authenticate(credentials: Credentials): Promise<Client> {
    if (!this.enabled) return this.anonymousClient;
    const given = credentials.bearer || credentials.apiKey;
    if (given === undefined || given === '') {
      throw new ProxyError(
        'UNAUTHENTICATED',
        'missing API key (Authorization: Bearer <key> or X-API-Key)',
      );
    }
    const client = this.byKeyHash.get(sha256Hex(given));
    if (client !== undefined) return client;
    if (
      this.jwt !== undefined &&
      credentials.bearer !== undefined &&
      looksLikeJwt(credentials.bearer)
    ) {
      return this.jwt.verify(credentials.bearer);
    }
    throw new ProxyError('FORBIDDEN', 'API key not accepted');
  }

  /** FORBIDDEN (403) unless the client holds `scope` and, when given, may use `model`. */
  authorize(client: Client, scope: Scope, model?: string): void {
    if (!client.scopes.has(scope)) {
      if (client.anonymous && scope === 'admin') {
        throw new ProxyError(
          'FORBIDDEN',
          'repository control and settings need an API key with the admin scope (or ALLOW_UNAUTHENTICATED_ADMIN=true when no key is configured)',
        );
      }
      throw new ProxyError('FORBIDDEN', `client '${client.name}' lacks the '${scope}' scope`);
    }
    if (model !== undefined && !mayUseModel(client, model)) {
      throw new ProxyError('FORBIDDEN', `client '${client.name}' may not use model '${model}'`);
    }
  }

  /**
   * A model load: `admin` for the model, and `file:` parameters (model files
   * written onto every chosen Triton server) only when switched on.
   */
  authorizeLoad(client: Client, model: string, parameterNames: Iterable<string>): void {
    this.authorize(client, 'admin', model);
    for (const name of parameterNames) {
      if (name.startsWith('file:') && !this.options.modelFileOverrides) {
        throw new ProxyError(
          'FORBIDDEN',
          `load parameter '${name}' would write model files onto Triton servers; refused unless MODEL_FILE_OVERRIDES=true`,
        );
      }
    }
  }

  /**
   * Reads and merges every keys file. A client name or a key in two files is
   * an error, like in one file: the files are one list split for mounting.
   */
  private readKeysFile(): ReturnType<typeof parseKeysFile> {
    const merged: ReturnType<typeof parseKeysFile> = [];
    const names = new Map<string, string>();
    const hashes = new Map<string, string>();
    for (const file of this.keysFiles()) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new KeysFileError(
          `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      let keyed: ReturnType<typeof parseKeysFile>;
      try {
        keyed = parseKeysFile(text);
      } catch (err) {
        throw new KeysFileError(`'${file}': ${(err as Error).message}`);
      }
      for (const entry of keyed) {
        const name = entry.client.name;
        const other = names.get(name);
        if (other !== undefined) {
          throw new KeysFileError(`client '${name}' is listed in both '${other}' and '${file}'`);
        }
        names.set(name, file);
        for (const h of entry.keySha256) {
          const owner = hashes.get(h);
          if (owner !== undefined) {
            throw new KeysFileError(
              `'${file}': client '${name}' and client '${owner}' share a key`,
            );
          }
          hashes.set(h, name);
        }
        merged.push(entry);
      }
    }
    return merged;
  }

  private buildTable(keyed: ReturnType<typeof parseKeysFile>): Map<string, Client> {
    const table = new Map<string, Client>();
    const legacy: Client = {
      name: 'api-keys',
      label: 'api-keys',
      scopes: LEGACY_SCOPES,
      models: undefined,
      quota: {},
      priority: 'normal',
      anonymous: false,
    };
    for (const key of this.options.apiKeys ?? []) table.set(sha256Hex(key), legacy);
    // The file wins over API_KEYS for a key listed in both.
    for (const { client, keySha256 } of keyed) for (const h of keySha256) table.set(h, client);
    return table;
  }
}
