/** What a client may do. `read`: metadata, config, readiness, statistics, repository index. */
export const SCOPES = ['infer', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Under overload `high` is admitted first and `low` is shed first. */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** A client's budget; each limit is off when absent. */
export interface Quota {
  /** Sustained requests per second. */
  requestsPerSecond?: number;
  /** Requests allowed at once above the sustained rate (defaults to one second's worth). */
  burst?: number;
  /** Sustained request body (tensor) bytes per second. */
  bytesPerSecond?: number;
}

/**
 * Who is calling, as the front door established it. The same value is used
 * by every protocol (REST and gRPC) for authorization, quotas and priority.
 */
export interface Client {
  /** Identity for logs and quota keys. */
  readonly name: string;
  /**
   * Metric label value: a client name from the keys file or one of a few
   * fixed values (`anonymous`, `api-keys`, `jwt`), never text from a request.
   */
  readonly label: string;
  readonly scopes: ReadonlySet<Scope>;
  /** Models this client may use; undefined means every model. */
  readonly models: ModelGlobs | undefined;
  readonly quota: Quota;
  readonly priority: Priority;
  /** True when no credential was needed because none is configured. */
  readonly anonymous: boolean;
}

/** A compiled list of model-name globs (`*` any run, `?` one character). */
export class ModelGlobs {
  private readonly exact = new Set<string>();
  private readonly patterns: RegExp[] = [];

  constructor(readonly globs: readonly string[]) {
    for (const glob of globs) {
      if (!/[*?]/.test(glob)) this.exact.add(glob);
      else this.patterns.push(globToRegExp(glob));
    }
  }

  matches(model: string): boolean {
    return this.exact.has(model) || this.patterns.some((p) => p.test(model));
  }
}

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** True when the client may name this model (no list means all models). */
export function mayUseModel(client: Client, model: string): boolean {
  return client.models === undefined || client.models.matches(model);
}
