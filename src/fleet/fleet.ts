import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { TritonServerConfig } from '../config';
import { CircuitBreaker } from '../resilience';
import { TritonClient, type ChannelSettings } from '../triton';
import type { Logger, Metrics } from '../observability';
import { Upstream } from './upstream';

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
  /** How long a removed server may finish its in-flight calls before it is closed. */
  drainTimeoutMs: number;
  retryAfterSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

export type FleetListener = () => void;

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

  constructor(private readonly options: FleetOptions) {}

  get servers(): readonly Upstream[] {
    return this.list;
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
    try {
      const res = await upstream.client.call<{ ready: boolean }>(
        'ServerReady',
        {},
        { deadline: Date.now() + this.options.controlTimeoutMs },
      );
      // Triton's strict readiness is false while any model is loading,
      // unloading or failed, though its other models serve normally; the
      // proxy routes per model, so a server that still has READY models
      // stays usable.
      ready = res.ready === true || (await this.servesSomeModel(upstream));
    } catch (err) {
      ready = false;
      // No answer at all, not even "not ready": the server is hung (or the
      // network to it is), and calls waiting on it would only end at their
      // deadlines. Taking them back lets them retry elsewhere in time.
      if (
        (err as ServiceError).code === GrpcStatus.DEADLINE_EXCEEDED &&
        this.byName.get(upstream.name) === upstream
      ) {
        const abandoned = upstream.abandonInflight();
        if (abandoned > 0) {
          this.options.logger.warn('Triton server stopped answering; moving its in-flight calls', {
            server: upstream.name,
            calls: abandoned,
          });
        }
      }
    }
    if (ready !== upstream.ready && this.byName.get(upstream.name) === upstream) {
      upstream.ready = ready;
      const log = ready ? this.options.logger.info : this.options.logger.warn;
      log.call(this.options.logger, ready ? 'Triton server ready' : 'Triton server not ready', {
        server: upstream.name,
      });
      this.changed();
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
    for (const s of this.list) s.close();
    this.list = [];
    this.byName.clear();
    await Promise.all(this.draining);
  }
}
