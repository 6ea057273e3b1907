import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { TritonServerConfig } from '../config';
import { CircuitBreaker } from '../resilience';
import { TritonClient, type ChannelSettings } from '../triton';
import type { Logger, Metrics } from '../observability';
import { Upstream, type UpstreamSnapshot } from './upstream';

export interface FleetOptions {
  packageDefinition: PackageDefinition;
  channel: ChannelSettings;
  breaker: {
    errorThresholdPercent: number;
    volumeThreshold: number;
    resetTimeoutMs: number;
    rollingWindowMs: number;
  };
  healthIntervalMs: number;
  controlTimeoutMs: number;
  /** How long an HTTP/2 PING on an inference connection may go unanswered. */
  pingTimeoutMs: number;
  /** How long a removed server may finish its in-flight calls before it is closed. */
  drainTimeoutMs: number;
  retryAfterSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

export type FleetListener = () => void;

const REPROBE_FIRST_MS = 100;
// A failed probe of a down server is one refused connect: cheap enough every second.
const REPROBE_MAX_MS = 1000;

/**
 * The set of Triton servers. `servers` is an immutable array replaced on every
 * change, so a request that read it keeps a consistent view; servers join and
 * leave at run time (DNS discovery) and leaving ones drain before closing.
 */
export class Fleet {
  private list: readonly Upstream[] = [];
  private readonly byName = new Map<string, Upstream>();
  private readonly listeners: FleetListener[] = [];
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly draining = new Set<Promise<void>>();
  /** Servers not ready, re-probed sooner than the health interval: 100 ms, doubling. */
  private readonly reprobes = new Map<Upstream, { timer?: NodeJS.Timeout; delayMs: number }>();

  constructor(private readonly options: FleetOptions) {}

  get servers(): readonly Upstream[] {
    return this.list;
  }

  /** Every server as the status page shows it. */
  snapshot(): UpstreamSnapshot[] {
    return this.list.map((s) => s.snapshot());
  }

  get(name: string): Upstream | undefined {
    return this.byName.get(name);
  }

  readyCount(): number {
    let n = 0;
    for (const s of this.list) if (s.ready && !s.draining) n++;
    return n;
  }

  onChange(listener: FleetListener): void {
    this.listeners.push(listener);
  }

  add(config: TritonServerConfig): Upstream {
    const existing = this.byName.get(config.name);
    if (existing) return existing;
    const o = this.options;
    const client = new TritonClient(
      config.name,
      config.address,
      o.packageDefinition,
      o.channel,
      config.tls,
    );
    const breaker = new CircuitBreaker({
      server: config.name,
      errorThresholdPercentage: o.breaker.errorThresholdPercent,
      volumeThreshold: o.breaker.volumeThreshold,
      resetTimeout: o.breaker.resetTimeoutMs,
      rollingCountTimeout: o.breaker.rollingWindowMs,
    });
    breaker.onStateChange((server, from, to) => {
      const log = to === 'open' ? o.logger.warn : o.logger.info;
      log.call(o.logger, 'circuit breaker state changed', { server, from, to });
    });
    const upstream = new Upstream(config, {
      client,
      breaker,
      metrics: o.metrics,
      retryAfterSeconds: o.retryAfterSeconds,
    });
    this.byName.set(config.name, upstream);
    this.list = [...this.list, upstream];
    o.logger.info('Triton server added', {
      server: config.name,
      address: config.address,
      group: config.group,
    });
    this.changed();
    void this.checkHealth(upstream);
    return upstream;
  }

  /** Stops routing to the server at once; closes it after its in-flight calls finish. */
  remove(name: string): Promise<void> {
    const upstream = this.byName.get(name);
    if (!upstream) return Promise.resolve();
    upstream.draining = true;
    this.byName.delete(name);
    clearTimeout(this.reprobes.get(upstream)?.timer);
    this.reprobes.delete(upstream);
    this.list = this.list.filter((s) => s !== upstream);
    this.options.logger.info('Triton server removed; draining', {
      server: name,
      inflight: upstream.outstanding,
    });
    this.changed();
    const done = Promise.race([
      upstream.idle(),
      new Promise<void>((r) => setTimeout(r, this.options.drainTimeoutMs).unref()),
    ]).then(() => {
      upstream.close();
      // The address may have come back while this entry drained (DNS flap);
      // the successor shares its name and so its metric series.
      const successor = this.byName.get(name);
      if (successor) successor.publishBreakerState();
      else void this.options.metrics.forgetServer(name);
    });
    this.draining.add(done);
    void done.finally(() => this.draining.delete(done));
    return done;
  }

  startHealthChecks(): void {
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => void this.checkAll(), this.options.healthIntervalMs);
    this.healthTimer.unref();
  }

  checkAll(): Promise<void> {
    return Promise.all(this.list.map((s) => this.checkHealth(s))).then(() => undefined);
  }

  private async checkHealth(upstream: Upstream): Promise<void> {
    let ready: boolean;
    const startedAt = performance.now();
    try {
      const res = await upstream.client.serverReady(Date.now() + this.options.controlTimeoutMs);
      // Triton's strict readiness is false while any model is loading,
      // unloading or failed, though its other models serve normally; the
      // proxy routes per model, so a server that still has READY models
      // stays usable.
      ready = res || (await this.servesSomeModel(upstream));
    } catch (err) {
      ready = false;
      if (
        (err as ServiceError).code === GrpcStatus.DEADLINE_EXCEEDED &&
        this.byName.get(upstream.name) === upstream
      ) {
        await this.takeBackStuckCalls(upstream, startedAt);
      }
    }
    if (this.byName.get(upstream.name) !== upstream) return;
    if (ready !== upstream.ready) {
      upstream.ready = ready;
      const log = ready ? this.options.logger.info : this.options.logger.warn;
      log.call(this.options.logger, ready ? 'Triton server ready' : 'Triton server not ready', {
        server: upstream.name,
      });
      this.changed();
    }
    if (ready) this.reprobes.delete(upstream);
    else this.scheduleReprobe(upstream);
  }

  /**
   * A server that is down is probed again after 100 ms, then 200, 400...
   * up to a second (or the health interval when that is shorter): a
   * restarted server takes traffic within about a second instead of waiting
   * for the next health interval.
   */
  private scheduleReprobe(upstream: Upstream): void {
    if (this.healthTimer === undefined) return;
    const entry = this.reprobes.get(upstream) ?? { delayMs: REPROBE_FIRST_MS / 2 };
    if (entry.timer !== undefined) return;
    entry.delayMs = Math.min(entry.delayMs * 2, REPROBE_MAX_MS);
    if (entry.delayMs >= this.options.healthIntervalMs) return;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.byName.get(upstream.name) === upstream) void this.checkHealth(upstream);
    }, entry.delayMs);
    entry.timer.unref();
    this.reprobes.set(upstream, entry);
  }

  /**
   * The health check got no answer at all, not even "not ready". Calls
   * waiting on the server would only end at their deadlines; taking them back
   * lets them retry elsewhere in time. But a busy server answers health
   * checks late too, and its work must not be thrown away (it would only move
   * the overload and redo the work): so calls are taken back only when the
   * inference connection itself is dead (its HTTP/2 PING goes unanswered:
   * the connection is closed and every call on it fails over), or when the
   * server answered nothing at all during the check (hung), and then only
   * the calls that were already waiting when the check began.
   */
  private async takeBackStuckCalls(upstream: Upstream, checkStartedAt: number): Promise<void> {
    // A check whose timer fired far too late timed out because this process
    // was stalled (event-loop lag), not the server: it judges nothing.
    const late = performance.now() - checkStartedAt - this.options.controlTimeoutMs;
    if (late > Math.max(100, this.options.controlTimeoutMs / 2)) return;
    const alive = await upstream.client.pingInference(this.options.pingTimeoutMs);
    if (alive) {
      // Answers that arrived with the PING's acknowledgement are handled a
      // turn or two of the event loop later: look again after them.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (upstream.lastAnswerAt >= checkStartedAt) return;
    }
    const abandoned = upstream.abandonInflight(alive ? checkStartedAt : Infinity);
    if (abandoned > 0 || !alive) {
      this.options.logger.warn('Triton server stopped answering; moving its in-flight calls', {
        server: upstream.name,
        calls: abandoned,
        connection: alive ? 'alive (server hung)' : 'dead (PING unanswered)',
      });
    }
  }

  private async servesSomeModel(upstream: Upstream): Promise<boolean> {
    try {
      const index = await upstream.client.call<{ models?: unknown[] }>(
        'RepositoryIndex',
        { repository_name: '', ready: true },
        { deadline: Date.now() + this.options.controlTimeoutMs },
      );
      return (index.models?.length ?? 0) > 0;
    } catch {
      return false;
    }
  }

  private changed(): void {
    this.options.metrics.serversKnown.set(this.list.length);
    this.options.metrics.serversReady.set(this.readyCount());
    for (const l of this.listeners) l();
  }

  async close(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = undefined;
    for (const entry of this.reprobes.values()) clearTimeout(entry.timer);
    this.reprobes.clear();
    for (const s of this.list) s.close();
    this.list = [];
    this.byName.clear();
    await Promise.all(this.draining);
  }
}
