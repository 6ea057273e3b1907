import { ProxyError, invalidRequest, isProxyError } from '../errors';
import type { Fleet, Upstream } from '../fleet';
import { namedServer } from './named-server';
import type { Router } from '../routing';
import type { ModelStateStore } from '../model-state';
import { mergeIndexes, mergeModelStats, type IndexEntry } from './merge';

export interface ControlServiceDeps {
  fleet: Fleet;
  router: Router;
  state: ModelStateStore;
  controlTimeoutMs: number;
  loadTimeoutMs: number;
  retryAfterSeconds: number;
  /** Re-reads one server's repository index into the shared state. */
  refreshServer: (server: string) => Promise<void>;
  proxyVersion: string;
}

export interface CallMeta {
  requestId: string;
  traceparent?: string;
}

type Json = Record<string, unknown>;

/**
 * Everything but inference: health, metadata, config, statistics and the
 * model repository extension, answered for the fleet as if it were one
 * Triton server.
 */
export class ControlService {
  constructor(private readonly deps: ControlServiceDeps) {}

  private ctx(meta: CallMeta, timeoutMs = this.deps.controlTimeoutMs) {
    return {
      deadline: Date.now() + timeoutMs,
      requestId: meta.requestId,
      traceparent: meta.traceparent,
    };
  }

  private available(): Upstream[] {
    return this.deps.fleet.servers.filter((s) => s.available);
  }

  private noServer(): ProxyError {
    return new ProxyError('UPSTREAM_UNAVAILABLE', 'no Triton server is available', {
      retryAfterSeconds: this.deps.retryAfterSeconds,
    });
  }

  /** Live when any server answers ServerLive (asked only when none is known ready). */
  async serverLive(meta: CallMeta): Promise<boolean> {
    if (this.deps.fleet.readyCount() > 0) return true;
    const answers = await Promise.allSettled(
      this.deps.fleet.servers.map((s) =>
        s.client.call<{ live: boolean }>('ServerLive', {}, this.ctx(meta)),
      ),
    );
    return answers.some((a) => a.status === 'fulfilled' && a.value.live === true);
  }

  serverReady(): boolean {
    return this.deps.fleet.readyCount() > 0;
  }

  async serverMetadata(meta: CallMeta): Promise<Json> {
    const s = this.available()[0];
    if (!s) return { name: 'triton-proxy', version: this.deps.proxyVersion, extensions: [] };
    return s.call('ServerMetadata', {}, this.ctx(meta));
  }

  private serverFor(model: string, version: string): Upstream {
    const pick = this.deps.router.pick({ model, version });
    if (pick.kind === 'server') return pick.upstream;
    if (pick.kind === 'not-found') {
      throw new ProxyError('MODEL_NOT_FOUND', `Request for unknown model: '${model}' is not found`);
    }
    // Known but not ready anywhere: a server that has it in its repository can still describe it.
    const holder = this.deps.state
      .snapshot()
      .entriesForModel(model)
      .map((e) => this.deps.fleet.get(e.server))
      .find((s): s is Upstream => s !== undefined && s.available);
    const s = holder ?? this.available()[0];
    if (!s) throw this.noServer();
    return s;
  }

  modelMetadata(model: string, version: string, meta: CallMeta): Promise<Json> {
    return this.serverFor(model, version).call(
      'ModelMetadata',
      { name: model, version },
      this.ctx(meta),
    );
  }

  async modelReady(model: string, version: string, meta: CallMeta): Promise<boolean> {
    const pick = this.deps.router.pick({ model, version });
    // Triton answers "not ready" (400), not 404, for a model it does not know.
    if (pick.kind !== 'server') return false;
    const res = await pick.upstream.call<{ ready: boolean }>(
      'ModelReady',
      { name: model, version },
      this.ctx(meta),
    );
    return res.ready === true;
  }

  async modelConfig(model: string, version: string, meta: CallMeta): Promise<Json> {
    const res = await this.serverFor(model, version).call<{ config?: Json }>(
      'ModelConfig',
      { name: model, version },
      this.ctx(meta),
    );
    return res.config ?? {};
  }

  async modelStatistics(model: string, version: string, meta: CallMeta): Promise<Json> {
    const servers = this.available();
    if (servers.length === 0) throw this.noServer();
    const results = await Promise.allSettled(
      servers.map((s) =>
        s.call<{ model_stats?: Json[] }>(
          'ModelStatistics',
          { name: model, version },
          this.ctx(meta),
        ),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    if (ok.length === 0) throw (results[0] as PromiseRejectedResult).reason;
    return mergeModelStats(ok);
  }

  async repositoryIndex(body: Json, meta: CallMeta): Promise<IndexEntry[]> {
    let ready = false;
    if (body.ready !== undefined) {
      if (typeof body.ready !== 'boolean')
        throw invalidRequest("Unable to parse 'ready', expected a boolean");
      ready = body.ready;
    }
    const servers = this.available();
    if (servers.length === 0) throw this.noServer();
    const results = await Promise.allSettled(
      servers.map((s) =>
        s.call<{ models: IndexEntry[] }>(
          'RepositoryIndex',
          { repository_name: '', ready },
          this.ctx(meta),
        ),
      ),
    );
    const lists = results.filter((r) => r.status === 'fulfilled').map((r) => r.value.models ?? []);
    if (lists.length === 0) throw (results[0] as PromiseRejectedResult).reason;
    return mergeIndexes(lists);
  }

  private static loadParameters(body: Json): Json {
    const out: Json = {};
    const params = body.parameters;
    if (params === undefined) return out;
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      throw invalidRequest("'parameters' must be a JSON object");
    }
    for (const [key, value] of Object.entries(params as Json)) {
      if (key === 'config') {
        if (typeof value !== 'string')
          throw invalidRequest("load parameter 'config' must be a string of JSON");
        out[key] = { string_param: value };
      } else if (key.startsWith('file:')) {
        if (typeof value !== 'string')
          throw invalidRequest(`load parameter '${key}' must be base64 text`);
        out[key] = { bytes_param: Buffer.from(value, 'base64') };
      } else if (key === 'unload_dependents') {
        if (typeof value !== 'boolean')
          throw invalidRequest("Unable to parse 'unload_dependents': expected a boolean");
        out[key] = { bool_param: value };
      } else if (typeof value === 'boolean') out[key] = { bool_param: value };
      else if (typeof value === 'number' && Number.isInteger(value))
        out[key] = { int64_param: value };
      else if (typeof value === 'string') out[key] = { string_param: value };
      else throw invalidRequest(`load parameter '${key}' has an unsupported type`);
    }
    return out;
  }

  /**
   * Loads on the named server, or on the least loaded server the routing
   * rules allow; returns the server used. Shared state says LOADING while it
   * runs and READY (or UNAVAILABLE) after.
   */
  load(model: string, body: Json, target: string | undefined, meta: CallMeta): Promise<string> {
    return this.loadModel(model, ControlService.loadParameters(body), target, meta);
  }

  /**
   * load() with the parameters already in RepositoryModelLoadRequest form
   * (name -> ModelRepositoryParameter), as a gRPC client sends them.
   */
  async loadModel(
    model: string,
    parameters: Json,
    target: string | undefined,
    meta: CallMeta,
  ): Promise<string> {
    let server = namedServer(this.deps.fleet, target);
    if (!server) {
      const candidates = this.deps.router.candidatesForLoad(model);
      server = candidates.sort((a, b) => a.outstanding / a.weight - b.outstanding / b.weight)[0];
    }
    if (!server) throw this.noServer();
    const { state } = this.deps;
    await state.markStatus(server.name, model, '', 'LOADING', 'load requested through the proxy');
    try {
      await server.repositoryCall(
        'RepositoryModelLoad',
        { repository_name: '', model_name: model, parameters },
        this.ctx(meta, this.deps.loadTimeoutMs),
      );
    } catch (err) {
      await state.markStatus(
        server.name,
        model,
        '',
        'UNAVAILABLE',
        isProxyError(err) ? err.message : 'load failed',
      );
      // Triton's index then replaces the guess: a model missing from the repository must not stay "known".
      void this.deps.refreshServer(server.name);
      throw err;
    }
    await state.markStatus(server.name, model, '', 'READY', 'loaded through the proxy');
    void this.deps.refreshServer(server.name);
    return server.name;
  }

  /**
   * Unloads from the named server, or from the servers that have the model
   * loaded (or loading): a server the model is not on is never touched.
   * When no server has it the answer is success with no server, as Triton
   * ignores unloading a name it does not serve.
   */
  unload(model: string, body: Json, target: string | undefined, meta: CallMeta): Promise<string[]> {
    return this.unloadModel(model, ControlService.loadParameters(body), target, meta);
  }

  /** unload() with the parameters in RepositoryModelUnloadRequest form. */
  async unloadModel(
    model: string,
    parameters: Json,
    target: string | undefined,
    meta: CallMeta,
  ): Promise<string[]> {
    const named = namedServer(this.deps.fleet, target);
    const snapshot = this.deps.state.snapshot();
    const holders = named
      ? [named]
      : this.available().filter((s) => {
          const status = snapshot.status(s.name, model, '');
          return status !== undefined && status !== 'UNAVAILABLE';
        });
    await Promise.all(
      holders.map(async (s) => {
        await this.deps.state.markStatus(
          s.name,
          model,
          '',
          'UNLOADING',
          'unload requested through the proxy',
        );
        await s.repositoryCall(
          'RepositoryModelUnload',
          { repository_name: '', model_name: model, parameters },
          this.ctx(meta, this.deps.loadTimeoutMs),
        );
        // Every version of the model on that server is gone.
        const gone = this.deps.state
          .snapshot()
          .entriesForServer(s.name)
          .filter((e) => e.model === model)
          .map((e) => ({
            server: s.name,
            model,
            version: e.version,
            status: 'UNAVAILABLE' as const,
            reason: 'unloaded through the proxy',
          }));
        await this.deps.state.update(gone);
        void this.deps.refreshServer(s.name);
      }),
    );
    return holders.map((s) => s.name);
  }
}
