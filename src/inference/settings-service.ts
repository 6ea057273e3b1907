import { ProxyError, toProxyError } from '../errors';
import type { Fleet, Upstream } from '../fleet';
import { namedServer } from './named-server';
import type { ModelStateStore } from '../model-state';
import type { Router } from '../routing';
import type { CallMeta } from './control-service';
import {
  logSettingsJson,
  logSettingsRequest,
  traceSettingsJson,
  traceSettingsRequest,
} from './settings-json';

type Json = Record<string, unknown>;

export interface SettingsServiceDeps {
  fleet: Fleet;
  router: Router;
  state: ModelStateStore;
  controlTimeoutMs: number;
  retryAfterSeconds: number;
}

/** Settings as Triton's HTTP endpoint writes them, and the server(s) they come from or were applied to. */
export interface SettingsAnswer {
  settings: Json;
  servers: string[];
}

/** What one server made of an update. */
type Outcome = { server: string; settings: Json } | { server: string; error: ProxyError };

interface SettingsKind {
  rpc: 'LogSettings' | 'TraceSetting';
  /** For messages: "log settings", "trace settings". */
  label: string;
  /** The RPC's settings as Triton's HTTP endpoint writes them. */
  render: (settings: Json | undefined) => Json;
}

const LOG: SettingsKind = { rpc: 'LogSettings', label: 'log settings', render: logSettingsJson };
const TRACE: SettingsKind = {
  rpc: 'TraceSetting',
  label: 'trace settings',
  render: traceSettingsJson,
};

/**
 * Triton's logging and trace extensions for a fleet. A read asks one server
 * (the one named, else a ready one; for a model's trace settings, one that
 * has the model). An update goes to the server named by the caller, else to
 * every server of the fleet (a model's trace settings: every server that has
 * the model), so they keep one configuration; when some servers refuse or
 * cannot be reached the answer says, per server, what happened.
 */
export class SettingsService {
  constructor(private readonly deps: SettingsServiceDeps) {}

  readLog(target: string | undefined, meta: CallMeta): Promise<SettingsAnswer> {
    return this.read(LOG, { settings: {} }, this.readServer(target, ''), meta, LOG.render);
  }

  updateLog(body: Json, target: string | undefined, meta: CallMeta): Promise<SettingsAnswer> {
    const settings = logSettingsRequest(body);
    return this.update(LOG, { settings }, this.updateServers(target, ''), meta, LOG.render);
  }

  /** The global trace settings (model ''), or a model's. */
  readTrace(model: string, target: string | undefined, meta: CallMeta): Promise<SettingsAnswer> {
    const request = { settings: {}, model_name: model };
    return this.read(TRACE, request, this.readServer(target, model), meta, TRACE.render);
  }

  updateTrace(
    model: string,
    body: Json,
    target: string | undefined,
    meta: CallMeta,
  ): Promise<SettingsAnswer> {
    const request = { settings: traceSettingsRequest(body), model_name: model };
    return this.update(TRACE, request, this.updateServers(target, model), meta, TRACE.render);
  }

  /**
   * The LogSettings or TraceSetting RPC as a gRPC client sends it: no
   * settings reads, some settings update, as Triton's gRPC endpoint does.
   * The answer is the RPC's response message (`settings`).
   */
  rpc(
    method: 'LogSettings' | 'TraceSetting',
    request: Json,
    target: string | undefined,
    meta: CallMeta,
  ): Promise<SettingsAnswer> {
    const kind = method === 'LogSettings' ? LOG : TRACE;
    const model = typeof request.model_name === 'string' ? request.model_name : '';
    const settings = (request.settings as Json | undefined) ?? {};
    const raw = (res: Json | undefined): Json => ({ settings: res ?? {} });
    return Object.keys(settings).length === 0
      ? this.read(kind, request, this.readServer(target, model), meta, raw)
      : this.update(kind, request, this.updateServers(target, model), meta, raw);
  }

  private ctx(meta: CallMeta) {
    return {
      deadline: Date.now() + this.deps.controlTimeoutMs,
      requestId: meta.requestId,
      traceparent: meta.traceparent,
    };
  }

  private noServer(): ProxyError {
    return new ProxyError('UPSTREAM_UNAVAILABLE', 'no Triton server is available', {
      retryAfterSeconds: this.deps.retryAfterSeconds,
    });
  }

  /**
   * The server a read asks. For a model, one where it is READY; when none
   * is, any available server, whose own answer (Triton: 400 "Request for
   * unknown model") is the client's.
   */
  private readServer(target: string | undefined, model: string): Upstream {
    const named = namedServer(this.deps.fleet, target);
    if (named) return named;
    if (model !== '') {
      const pick = this.deps.router.pick({ model, version: '' });
      if (pick.kind === 'server') return pick.upstream;
    }
    const s = this.deps.fleet.servers.find((x) => x.available);
    if (!s) throw this.noServer();
    return s;
  }

  /**
   * The servers an update goes to: the named one, else every server not
   * leaving the fleet (one that is down is reported as failed, not skipped:
   * it would come back with the old settings); for a model, those where it
   * is READY, or one server to give Triton's answer when it is nowhere.
   */
  private updateServers(target: string | undefined, model: string): Upstream[] {
    const named = namedServer(this.deps.fleet, target);
    if (named) return [named];
    const servers = this.deps.fleet.servers.filter((s) => !s.draining);
    if (model !== '') {
      const ready = new Set(this.deps.state.snapshot().readyServers(model, ''));
      const holders = servers.filter((s) => ready.has(s.name));
      if (holders.length > 0) return holders;
      return [this.readServer(undefined, model)];
    }
    if (servers.length === 0) throw this.noServer();
    return servers;
  }

  private async read(
    kind: SettingsKind,
    request: Json,
    server: Upstream,
    meta: CallMeta,
    render: (settings: Json | undefined) => Json,
  ): Promise<SettingsAnswer> {
    const res = await server.call<{ settings?: Json }>(kind.rpc, request, this.ctx(meta));
    return { settings: render(res.settings), servers: [server.name] };
  }

  private async update(
    kind: SettingsKind,
    request: Json,
    servers: Upstream[],
    meta: CallMeta,
    render: (settings: Json | undefined) => Json,
  ): Promise<SettingsAnswer> {
    const ctx = this.ctx(meta);
    const outcomes: Outcome[] = await Promise.all(
      servers.map((s) =>
        s.call<{ settings?: Json }>(kind.rpc, request, ctx).then(
          (res) => ({ server: s.name, settings: render(res.settings) }),
          (err: unknown) => ({ server: s.name, error: toProxyError(err) }),
        ),
      ),
    );
    const failed = outcomes.filter(
      (o): o is Extract<Outcome, { error: ProxyError }> => 'error' in o,
    );
    const applied = outcomes.filter(
      (o): o is Extract<Outcome, { settings: Json }> => 'settings' in o,
    );
    if (failed.length === 0) {
      return { settings: applied[0]!.settings, servers: applied.map((o) => o.server) };
    }
    // Refused everywhere for one reason (a bad value, an unknown model): that is the answer.
    const first = failed[0]!.error;
    if (applied.length === 0 && failed.every((o) => o.error.code === first.code)) throw first;
    throw partialFailure(kind, outcomes, applied.length);
  }
}

function partialFailure(kind: SettingsKind, outcomes: Outcome[], applied: number): ProxyError {
  const perServer: Json = {};
  const problems: string[] = [];
  for (const o of outcomes) {
    if ('error' in o) {
      perServer[o.server] = { error: o.error.message, code: o.error.code };
      problems.push(`'${o.server}' (${o.error.code}: ${o.error.message})`);
    } else {
      perServer[o.server] = { settings: o.settings };
    }
  }
  return new ProxyError(
    'PARTIAL_FAILURE',
    `${kind.label} were applied on ${applied} of ${outcomes.length} Triton servers; failed on ${problems.join(', ')}`,
    { details: { servers: perServer } },
  );
}
