import { ProxyError, isProxyError, type ErrorCode } from '../errors';
import { entryField } from './snapshot';
import type {
  LoadFailure,
  Logger,
  ModelStateLock,
  ModelStateMetrics,
  ModelStateSnapshot,
  ModelStateStore,
} from './types';

export interface LoadContext {
  /** Fencing token of the lock the load runs under. */
  token: number;
  /** Aborted when the load times out or the coordinator closes. */
  signal: AbortSignal;
}

export interface LoadCoordinatorOptions {
  store: ModelStateStore;
  /** Where to load a model that is ready nowhere (e.g. least loaded, allowed by routing rules). */
  chooseServer(model: string, version: string): string | undefined;
  /** Loads the model on the server (Triton RepositoryModelLoad); rejects with the reason. */
  load(server: string, model: string, version: string, context: LoadContext): Promise<void>;
  /**
   * TTL of the load lock, renewed while the load runs. A LOADING entry not
   * refreshed for this long belongs to a dead replica and is taken over.
   */
  lockTtlMs: number;
  /** How long a failed load is remembered; calls for the model fail fast meanwhile. */
  failureBackoffMs: number;
  /** Longest a single load may take before it counts as failed. */
  loadTimeoutMs: number;
  /** How often a waiter re-checks without a change event; default lockTtlMs / 4, at most 1 s. */
  pollIntervalMs?: number;
  /** Retry-After for callers whose deadline passes while the load runs; default 1. */
  retryAfterSeconds?: number;
  logger: Logger;
  metrics?: ModelStateMetrics;
}

export interface EnsureLoadedOptions {
  /** Give up waiting at this time (ms since epoch). The load itself goes on for other callers. */
  deadline: number;
  signal?: AbortSignal;
}

interface Attempt {
  promise: Promise<string>;
  deadline: number;
}

// Codes a failed load keeps when it reports them: they say something about the model.
const KEPT_CODES: ReadonlySet<ErrorCode> = new Set([
  'MODEL_NOT_FOUND',
  'INVALID_REQUEST',
  'UNSUPPORTED',
]);

/** This replica's load lock expired or was taken over: its load must stop. */
class LockLostError extends Error {
  constructor(model: string, token: number) {
    super(`lost the load lock of model '${model}' (fencing token ${token} is no longer current)`);
    this.name = 'LockLostError';
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Load on demand: one load per model across every replica. In this process,
 * callers share one attempt; across replicas, a Redis lock (with fencing
 * token) picks the loader and everyone else watches the published
 * LOADING/READY state. A failure is published too, so every replica's callers
 * fail fast until its backoff ends.
 */
export class LoadCoordinator {
  private readonly attempts = new Map<string, Attempt>();
  private readonly loads = new Set<AbortController>();
  private readonly pollIntervalMs: number;
  private readonly retryAfterSeconds: number;
  private readonly metrics: ModelStateMetrics;
  private closed = false;

  constructor(private readonly options: LoadCoordinatorOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? Math.min(1000, options.lockTtlMs / 4);
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
    this.metrics = options.metrics ?? {};
  }

  /** Resolves with a server where the model is READY, loading it first if needed. */
  async ensureLoaded(
    model: string,
    version: string,
    options: EnsureLoadedOptions,
  ): Promise<string> {
    const snapshot = this.options.store.snapshot();
    const ready = snapshot.readyServers(model, version);
    if (ready.length > 0) return ready[0]!;
    const failure = this.activeFailure(snapshot, model, version);
    if (failure !== undefined) throw this.failureError(failure);
    if (this.closed) throw new ProxyError('UPSTREAM_UNAVAILABLE', 'the proxy is shutting down');
    if (options.signal?.aborted) throw this.cancelledError(model, options.signal);
    if (options.deadline <= Date.now()) throw this.notReadyError(model);

    const key = entryField(model, version);
    let attempt = this.attempts.get(key);
    if (attempt !== undefined) {
      attempt.deadline = Math.max(attempt.deadline, options.deadline);
      this.metrics.onLoad?.('coalesced');
    } else {
      const created: Attempt = { deadline: options.deadline, promise: Promise.resolve('') };
      created.promise = this.drive(model, version, created).finally(() => {
        this.attempts.delete(key);
      });
      // Waiters may all have given up by the time it settles.
      created.promise.catch(() => undefined);
      this.attempts.set(key, created);
      attempt = created;
    }
    return this.wait(attempt.promise, model, options);
  }

  /** Stops waiting and aborts loads run by this coordinator (shutdown). */
  close(): void {
    this.closed = true;
    for (const controller of this.loads) controller.abort(new Error('load coordinator closed'));
  }

  private async drive(model: string, version: string, attempt: Attempt): Promise<string> {
    const { store } = this.options;
    let waiting = false;
    for (;;) {
      const snapshot = store.snapshot();
      const ready = snapshot.readyServers(model, version);
      if (ready.length > 0) return ready[0]!;
      const failure = this.activeFailure(snapshot, model, version);
      if (failure !== undefined) throw this.failureError(failure);
      if (this.closed) throw new ProxyError('UPSTREAM_UNAVAILABLE', 'the proxy is shutting down');
      if (Date.now() >= attempt.deadline) throw this.notReadyError(model);
      if (!this.loadingElsewhere(snapshot, model)) {
        const lock = await store.acquireLock(`load:${model}`, this.options.lockTtlMs);
        if (lock !== null) return this.loadUnderLock(model, version, lock);
      }
      if (!waiting) {
        waiting = true;
        this.metrics.onLoad?.('coalesced');
      }
      await this.nextChange(attempt.deadline);
    }
  }

  private async loadUnderLock(
    model: string,
    version: string,
    lock: ModelStateLock,
  ): Promise<string> {
    const { store } = this.options;
    try {
      // Another replica may have finished just before releasing the lock to us,
      // faster than its message reached us: look at the shared copy first.
      await store.resync();
      const snapshot = store.snapshot();
      const ready = snapshot.readyServers(model, version);
      if (ready.length > 0) return ready[0]!;
      const failure = this.activeFailure(snapshot, model, version);
      if (failure !== undefined) throw this.failureError(failure);
      const server = this.options.chooseServer(model, version);
      if (server === undefined) {
        throw new ProxyError(
          'UPSTREAM_UNAVAILABLE',
          `no server available to load model '${model}'`,
          {
            retryAfterSeconds: this.retryAfterSeconds,
          },
        );
      }
      return await this.runLoad(server, model, version, lock);
    } finally {
      await lock.release();
    }
  }

  private async runLoad(
    server: string,
    model: string,
    version: string,
    lock: ModelStateLock,
  ): Promise<string> {
    const { store, logger, lockTtlMs } = this.options;
    const reason = `loading on demand by ${store.replicaId} (lock token ${lock.token})`;
    this.metrics.onLoad?.('started');
    logger.info('loading model on demand', { model, version, server, token: lock.token });
    const controller = new AbortController();
    // The fencing token is checked (extend succeeds only while this holder's
    // token is the lock's) before every shared write of the load: a holder
    // that lost its lock (paused past the TTL, Redis failover) stops at once
    // and never publishes LOADING or READY over the new holder's load.
    const stillHolder = async (): Promise<void> => {
      if (!(await lock.extend(lockTtlMs))) {
        controller.abort(new LockLostError(model, lock.token));
      }
      if (controller.signal.aborted) throw controller.signal.reason;
    };
    await stillHolder();
    await store.markStatus(server, model, version, 'LOADING', reason);
    // The renewed lock and LOADING entry tell other replicas this loader is
    // alive; a renewal that fails means the lock is someone else's now.
    // Set when the load settles: a renewal still in flight then must not
    // write LOADING over the outcome.
    let settled = false;
    const heartbeat = setInterval(() => {
      void lock.extend(lockTtlMs).then((held) => {
        if (settled) return;
        if (!held) {
          controller.abort(new LockLostError(model, lock.token));
          return;
        }
        void store.markStatus(server, model, version, 'LOADING', reason);
      });
    }, lockTtlMs / 3);
    heartbeat.unref();
    this.loads.add(controller);
    const timeout = setTimeout(
      () =>
        controller.abort(new Error(`load did not finish within ${this.options.loadTimeoutMs} ms`)),
      this.options.loadTimeoutMs,
    );
    try {
      await this.untilAborted(
        this.options.load(server, model, version, { token: lock.token, signal: controller.signal }),
        controller.signal,
      );
      settled = true;
      clearInterval(heartbeat);
      await stillHolder();
    } catch (error) {
      settled = true;
      clearInterval(heartbeat);
      if (error instanceof LockLostError) {
        // Not a failure of the model: whoever holds the lock now decides.
        this.metrics.onLoad?.('failed');
        logger.warn('on-demand load stopped: the load lock was lost', {
          model,
          version,
          server,
          token: lock.token,
        });
        throw new ProxyError('MODEL_NOT_READY', `model '${model}' is loading; retry shortly`, {
          retryAfterSeconds: this.retryAfterSeconds,
          cause: error,
        });
      }
      const why = describe(error);
      const code: ErrorCode =
        isProxyError(error) && KEPT_CODES.has(error.code) ? error.code : 'UPSTREAM_UNAVAILABLE';
      await store.markStatus(server, model, version, 'UNAVAILABLE', `load failed: ${why}`);
      await store.recordLoadFailure({
        model,
        version,
        server,
        reason: why,
        code,
        backoffMs: this.options.failureBackoffMs,
      });
      this.metrics.onLoad?.('failed');
      logger.warn('on-demand model load failed', { model, version, server, error: why });
      const failure = store.snapshot().loadFailure(model, version);
      throw failure !== undefined
        ? this.failureError(failure)
        : new ProxyError(code, `loading model '${model}' on server '${server}' failed: ${why}`);
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timeout);
      this.loads.delete(controller);
    }
    await store.markStatus(
      server,
      model,
      version,
      'READY',
      `loaded on demand by ${store.replicaId}`,
    );
    await store.clearLoadFailure(model, version);
    this.metrics.onLoad?.('succeeded');
    logger.info('model loaded on demand', { model, version, server });
    return server;
  }

  private untilAborted(work: Promise<void>, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  /** A fresh LOADING entry means a live replica is loading it; stale ones are taken over. */
  private loadingElsewhere(snapshot: ModelStateSnapshot, model: string): boolean {
    const freshAfter = Date.now() - this.options.lockTtlMs;
    return snapshot
      .entriesForModel(model)
      .some((entry) => entry.status === 'LOADING' && entry.updatedAt > freshAfter);
  }

  private activeFailure(
    snapshot: ModelStateSnapshot,
    model: string,
    version: string,
  ): LoadFailure | undefined {
    const failure = snapshot.loadFailure(model, version);
    return failure !== undefined && failure.until > Date.now() ? failure : undefined;
  }

  private nextChange(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(
        done,
        Math.max(0, Math.min(this.pollIntervalMs, deadline - Date.now())),
      );
      const unsubscribe = this.options.store.onChange(done);
    });
  }

  private wait(
    promise: Promise<string>,
    model: string,
    options: EnsureLoadedOptions,
  ): Promise<string> {
    const { signal } = options;
    return new Promise<string>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        finish();
        reject(this.cancelledError(model, signal!));
      };
      const timer = setTimeout(
        () => {
          finish();
          reject(this.notReadyError(model));
        },
        Math.max(0, options.deadline - Date.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (server) => {
          finish();
          resolve(server);
        },
        (error: unknown) => {
          finish();
          reject(error);
        },
      );
    });
  }

  private failureError(failure: LoadFailure): ProxyError {
    const left = Math.max(1, Math.ceil((failure.until - Date.now()) / 1000));
    const version = failure.version === '' ? '' : ` version ${failure.version}`;
    return new ProxyError(
      failure.code,
      `loading model '${failure.model}'${version} on server '${failure.server}' failed: ${failure.reason}`,
      { retryAfterSeconds: left, server: failure.server },
    );
  }

  private notReadyError(model: string): ProxyError {
    return new ProxyError('MODEL_NOT_READY', `model '${model}' is loading; retry shortly`, {
      retryAfterSeconds: this.retryAfterSeconds,
    });
  }

  private cancelledError(model: string, signal: AbortSignal): ProxyError {
    return new ProxyError('MODEL_NOT_READY', `stopped waiting for model '${model}' to load`, {
      cause: signal.reason,
      retryAfterSeconds: this.retryAfterSeconds,
    });
  }
}
