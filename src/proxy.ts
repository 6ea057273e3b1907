import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config, type TritonServerConfig } from './config';
import Redis from 'ioredis';
import { AccessControl, QuotaEnforcer } from './access';
import {
  createLogger,
  ErrorReporter,
  Metrics,
  ExportFailureReporter,
  startTracing,
  tracingSettings,
  type Logger,
  type Tracer,
} from './observability';
import { loadInferenceService } from './triton';
import { DnsDiscovery, Fleet, type Resolver } from './fleet';
import {
  LoadCoordinator,
  MemoryModelStateStore,
  Reconciler,
  RedisModelStateStore,
  redisConnectionFromSettings,
  buildRedisOptions,
  type ModelStateMetrics,
  type ModelStateStore,
} from './model-state';
import {
  Router,
  RoutingRules,
  SequenceAffinity,
  createBalancer,
  parseRoutingRules,
} from './routing';
import { AdmissionController } from './admission';
import { ExponentialBackoff, RetryBudget } from './resilience';
import { JsonWorkerPool, ReusableBuffers } from './codec';
import { ControlService, GenerateService, InferService, SettingsService } from './inference';
import { MemoryTier, ModelPolicies, RedisTier, ResponseCache, type CacheHooks } from './cache';
import {
  answerClientError,
  createApp,
  inferListener,
  readListenerTls,
  reloadListenerTls,
  type ListenerSecrets,
  type ListenerTls,
} from './http';
import { GrpcFront } from './grpc';
import { collectStatus } from './status';

export const PROXY_VERSION = '0.1.0';

export interface ProxyOptions {
  logger?: Logger;
  /** Replaces DNS lookups for discovery (tests). */
  resolver?: Resolver;
  /** Adds prom-client's process metrics (off in tests that build many proxies). */
  defaultMetrics?: boolean;
}

export interface Proxy {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly fleet: Fleet;
  readonly state: ModelStateStore;
  readonly admission: AdmissionController;
  readonly server: Server;
  /** Port actually bound (useful with PORT=0). */
  port(): number;
  /** Port of the gRPC front end; 0 when it is off (GRPC_PORT=0). */
  grpcPort(): number;
  isReady(): { ready: boolean; reasons: string[] };
  /** Readiness false at once, then the shutdown sequence; resolves when everything is closed. */
  shutdown(): Promise<void>;
  /** Closes everything at once (tests, forced exit). */
  close(): Promise<void>;
}

function stateMetrics(metrics: Metrics): ModelStateMetrics {
  return {
    onRedisOp: (op, seconds, ok) => {
      metrics.redisOpDuration.labels(op).observe(seconds);
      if (!ok) metrics.redisErrors.labels(op).inc();
    },
    onLookup: (hit) => metrics.stateLookups.labels(hit ? 'hit' : 'miss').inc(),
    onRedisUp: (up) => metrics.redisUp.set(up ? 1 : 0),
    onReconcile: (outcome, changes) => {
      if (outcome === 'skipped') return;
      metrics.reconcileRuns.inc();
      metrics.reconcileChanges.inc(changes);
    },
    onIndexStale: (server, stale) => {
      if (stale) metrics.reconcileFailures.labels(server).inc();
      metrics.modelStateStale.labels(server).set(stale ? 1 : 0);
    },
    onLoad: (result) => metrics.modelLoads.labels(result).inc(),
  };
}

function cacheHooks(metrics: Metrics): CacheHooks {
  // Models reach the cache only after the fleet knew them or they matched a glob: keep labels bounded.
  const label = (model: string) => metrics.models.forUntrusted(model);
  return {
    onRequest: (model, result) => metrics.cacheRequests.labels(label(model), result).inc(),
    onCoalesced: (model) => metrics.cacheCoalesced.labels(label(model)).inc(),
    onInvalidation: () => metrics.cacheInvalidations.inc(),
  };
}

function createCache(
  config: Config,
  state: ModelStateStore,
  metrics: Metrics,
  logger: Logger,
): { cache: ResponseCache; close: () => Promise<void> } {
  const c = config.cache;
  const memory = new MemoryTier({
    maxBytes: c.maxBytes,
    maxEntryBytes: c.maxEntryBytes,
    onEvict: () => metrics.cacheEvictions.inc(),
  });
  metrics.setCacheBytesSource('memory', () => memory.bytes);
  let shared: RedisTier | undefined;
  if (c.shared && c.models.length > 0) {
    const connection = redisConnectionFromSettings(config.state);
    shared = new RedisTier({
      // CACHE_REDIS_URL puts the answers on a Redis of their own (sized and evicted apart from the state).
      connection:
        c.redisUrl === '' ? connection : { ...connection, url: c.redisUrl, sentinels: undefined },
      keyPrefix: config.state.keyPrefix,
      timeoutMs: c.redisTimeoutMs,
      maxEntryBytes: c.maxEntryBytes,
      replicaId: config.replicaId,
      logger,
      onRedisOp: stateMetrics(metrics).onRedisOp,
    });
    shared.start();
    const tier = shared;
    metrics.setCacheBytesSource('redis', () => tier.bytes());
  }
  const cache = new ResponseCache({
    policies: new ModelPolicies(c.models, c.coalesceModels),
    memory,
    shared,
    state,
    hooks: cacheHooks(metrics),
  });
  return {
    cache,
    close: async () => {
      cache.close();
      await shared?.close();
    },
  };
}

function createStore(config: Config, logger: Logger, metrics: Metrics): ModelStateStore {
  const s = config.state;
  const common = {
    entryTtlMs: s.entryTtlMs,
    replicaId: config.replicaId,
    logger,
    metrics: stateMetrics(metrics),
  };
  if (s.redisUrl === '' && s.redisSentinels === '') return new MemoryModelStateStore(common);
  metrics.exportRedisUp();
  return new RedisModelStateStore({
    ...common,
    connection: redisConnectionFromSettings(config.state),
    keyPrefix: s.keyPrefix,
    resyncIntervalMs: s.resyncIntervalMs,
  });
}

function createAccessControl(config: Config, logger: Logger, metrics: Metrics): AccessControl {
  const a = config.auth;
  try {
    return new AccessControl({
      keysFile: a.keysFile,
      keysReloadIntervalMs: a.keysReloadIntervalMs,
      apiKeys: config.http.apiKeys
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== ''),
      jwt:
        a.jwtJwksUrl !== '' || a.jwtJwksFile !== ''
          ? {
              jwksUrl: a.jwtJwksUrl,
              jwksFile: a.jwtJwksFile,
              issuer: a.jwtIssuer,
              audience: a.jwtAudience,
              scopesClaim: a.jwtScopesClaim,
              modelsClaim: a.jwtModelsClaim,
            }
          : undefined,
      allowUnauthenticatedAdmin: a.allowUnauthenticatedAdmin,
      modelFileOverrides: a.modelFileOverrides,
      logger,
      onReload: (ok) => metrics.authReloads.labels(ok ? 'ok' : 'error').inc(),
    });
  } catch (err) {
    throw new ConfigError(`auth (AUTH_KEYS_FILE / JWT_JWKS_*): ${(err as Error).message}`);
  }
}

/** Client quotas: in Redis (shared by the replicas) when Redis is configured, else per replica. */
function createQuota(
  config: Config,
  metrics: Metrics,
  closers: Array<() => Promise<void> | void>,
): QuotaEnforcer {
  const s = config.state;
  let redis: Redis | undefined;
  if (s.redisUrl !== '' || s.redisSentinels !== '') {
    redis = new Redis(
      buildRedisOptions(redisConnectionFromSettings(s), `${config.replicaId}:quota`),
    );
    // Errors are the insurance limiter's business; ioredis keeps reconnecting.
    redis.on('error', () => undefined);
    redis.connect().catch(() => undefined);
    const client = redis;
    closers.push(() => client.disconnect());
  }
  return new QuotaEnforcer({
    redis,
    keyPrefix: s.keyPrefix,
    onLimited: (client, policy) => metrics.rateLimited.labels(client.label, policy).inc(),
    onInsurance: () => metrics.quotaFallbacks.inc(),
  });
}

/**
 * OpenTelemetry tracing when an OTLP endpoint is configured (the SDK is
 * loaded only then); its last spans are exported when the proxy closes.
 */
function createTracer(
  config: Config,
  closers: Array<() => Promise<void> | void>,
  logger: Logger,
  metrics: Metrics,
): Tracer | undefined {
  let settings;
  try {
    settings = tracingSettings(config.tracing);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const failures = new ExportFailureReporter(logger, (spans) =>
    metrics.traceSpansDropped.inc(spans),
  );
  const tracer = startTracing(settings, PROXY_VERSION, failures.report);
  if (tracer !== undefined) closers.push(() => tracer.shutdown());
  return tracer;
}

/**
 * Builds and starts the whole proxy from a validated configuration: every
 * module is constructed here and handed its dependencies (no singletons).
 */
export async function startProxy(config: Config, options: ProxyOptions = {}): Promise<Proxy> {
  const startedAt = Date.now();
  const logger =
    options.logger ?? createLogger({ level: config.log.level, format: config.log.format });
  const metrics = new Metrics({
    modelLabelLimit: config.metrics.modelLabelLimit,
    defaultMetrics: options.defaultMetrics,
  });
  const t = config.triton;
  // First: a bad keys file stops the start before anything listens.
  const access = createAccessControl(config, logger, metrics);

  const closers: Array<() => Promise<void> | void> = [];
  const tracer = createTracer(config, closers, logger, metrics);
  let servers: TritonServerConfig[] = t.servers;
  if (config.demo.backend) {
    // Kept out of the production import graph: only demo mode loads the fake.
    const { defaultModels, startFakeTriton, textStreamModel } = await import('./fake-triton');
    const fake = await startFakeTriton({
      host: '127.0.0.1',
      port: 0,
      name: 'demo',
      models: [...defaultModels(), textStreamModel()],
    });
    closers.push(() => fake.stop());
    servers = [
      ...servers,
      {
        name: 'demo',
        address: fake.address,
        group: 'default',
        labels: {},
        weight: 1,
        tls: undefined,
      },
    ];
    logger.info('demo backend started (built-in fake Triton)', { address: fake.address });
  }

  // Large bodies and Triton's large answers are assembled in reused buffers,
  // handed back by the JSON workers (see ReusableBuffers).
  const largeBuffers = new ReusableBuffers();
  closers.push(() => largeBuffers.clear());
  const packageDefinition = loadInferenceService();
  const fleet = new Fleet({
    packageDefinition,
    channel: {
      maxMessageBytes: t.maxMessageBytes,
      keepaliveTimeMs: t.keepaliveTimeMs,
      keepaliveTimeoutMs: t.keepaliveTimeoutMs,
      flowControlWindowBytes: t.flowControlWindowBytes,
      connectTimeoutMs: t.connectTimeoutMs,
      channelsPerServer: t.channelsPerServer,
      inferTransport: t.inferTransport,
      inferPingAfterMs: t.inferPingAfterMs,
      inferPingTimeoutMs: t.inferPingTimeoutMs,
      allocateMessage: (bytes) => largeBuffers.take(bytes),
    },
    breaker: config.breaker,
    healthIntervalMs: t.healthIntervalMs,
    controlTimeoutMs: t.controlTimeoutMs,
    pingTimeoutMs: t.inferPingTimeoutMs,
    drainTimeoutMs: config.lifecycle.shutdownGraceMs,
    retryAfterSeconds: config.admission.retryAfterSeconds,
    logger,
    metrics,
  });
  for (const s of servers) fleet.add(s);

  const state = createStore(config, logger, metrics);
  const quota = createQuota(config, metrics, closers);
  await state.start();

  // Servers whose repository this replica has read; with the shared snapshot
  // this says when "unknown model" can be answered without asking Triton.
  const reconciled = new Set<string>();
  const reconciler = new Reconciler({
    store: state,
    source: {
      servers: () => fleet.servers.filter((s) => s.ready && !s.draining).map((s) => s.name),
      repositoryIndex: async (server) => {
        const upstream = fleet.get(server);
        if (!upstream) return [];
        const res = await upstream.client.call<{
          models: Array<{ name: string; version: string; state: string; reason: string }>;
        }>(
          'RepositoryIndex',
          { repository_name: '', ready: false },
          { deadline: Date.now() + t.controlTimeoutMs },
        );
        reconciled.add(server);
        return res.models ?? [];
      },
    },
    intervalMs: config.state.reconcileIntervalMs,
    // The index call carries the control deadline; a short interval must not cut it shorter.
    fetchTimeoutMs: t.controlTimeoutMs,
    logger,
    metrics: stateMetrics(metrics),
  });
  const stateIsComplete = (): boolean => {
    const snapshot = state.snapshot();
    return fleet.servers.every(
      (s) => !s.available || reconciled.has(s.name) || snapshot.entriesForServer(s.name).length > 0,
    );
  };
  // A server that became ready (for the first time, or again after being
  // down: it may have restarted with other models) gets its repository read
  // at once rather than at the next reconcile interval.
  const wasReady = new Set<string>();
  const readUnreadServers = (): Promise<unknown> => {
    const back = fleet.servers.filter(
      (s) => s.ready && (!reconciled.has(s.name) || !wasReady.has(s.name)),
    );
    wasReady.clear();
    for (const s of fleet.servers) if (s.ready) wasReady.add(s.name);
    return Promise.all(back.map((s) => reconciler.reconcileServer(s.name)));
  };
  fleet.onChange(() => void readUnreadServers());

  const router = new Router({
    servers: () => fleet.servers,
    snapshot: () => state.snapshot(),
    rules: new RoutingRules(parseRoutingRules(t.routes)),
    balancer: createBalancer(),
    stateIsComplete,
    onLookup: (hit) => metrics.stateLookups.labels(hit ? 'hit' : 'miss').inc(),
  });

  const a = config.admission;
  const admission = new AdmissionController({
    maxInflight: a.maxInflight,
    maxQueue: a.maxQueue,
    queueTimeoutMs: a.queueTimeoutMs,
    modelMaxInflight: a.modelMaxInflight,
    modelMaxQueue: a.modelMaxQueue,
    modelOverrides: a.modelLimits,
    maxInflightBytes: a.maxInflightBytes,
    retryAfterSeconds: a.retryAfterSeconds,
    hooks: {
      onQueueChange: (model, depth, total) => metrics.setQueueDepth(model, depth, total),
      onInflightChange: (model, inflight, total, bytes) =>
        metrics.setInflight(model, inflight, total, bytes),
      onReject: (reason) => metrics.rejections.labels(reason).inc(),
      onBytesChange: (bytes) => metrics.inflightBytes.set(bytes),
    },
  });

  const loader = config.state.loadOnDemand
    ? new LoadCoordinator({
        store: state,
        lockTtlMs: config.state.loadLockTtlMs,
        failureBackoffMs: config.state.loadFailureBackoffMs,
        loadTimeoutMs: config.state.loadTimeoutMs,
        retryAfterSeconds: a.retryAfterSeconds,
        logger,
        metrics: stateMetrics(metrics),
        chooseServer: (model) => {
          const candidates = router.candidatesForLoad(model);
          candidates.sort((x, y) => x.outstanding / x.weight - y.outstanding / y.weight);
          return candidates[0]?.name;
        },
        load: async (server, model, _version, context) => {
          const upstream = fleet.get(server);
          if (!upstream) throw new Error(`server '${server}' is gone`);
          await upstream.repositoryCall(
            'RepositoryModelLoad',
            { repository_name: '', model_name: model, parameters: {} },
            { deadline: Date.now() + config.state.loadTimeoutMs, signal: context.signal },
          );
        },
      })
    : undefined;

  const { cache, close: closeCache } = createCache(config, state, metrics, logger);
  closers.push(closeCache);
  const retryAfterSeconds = a.retryAfterSeconds;
  const json = new JsonWorkerPool({
    workerThresholdBytes: config.http.jsonWorkerThresholdBytes,
    niceIncrement: config.http.jsonWorkerNiceIncrement,
    largeBuffers,
  });
  closers.push(() => json.close());
  const infer = new InferService({
    json,
    cache,
    router,
    servers: fleet,
    admission,
    state,
    affinity: new SequenceAffinity(t.sequenceIdleTimeoutMs),
    loader,
    metrics,
    retry: {
      maxAttempts: config.retry.maxAttempts,
      backoff: new ExponentialBackoff({
        baseMs: config.retry.baseDelayMs,
        capMs: config.retry.maxDelayMs,
      }),
      budget: new RetryBudget({
        ratio: config.retry.budgetRatio,
        minRetriesPerSecond: config.retry.budgetMinPerSecond,
      }),
    },
    defaultTimeoutMs: t.requestTimeoutMs,
    attemptTimeoutMs: t.attemptTimeoutMs,
    retryAfterSeconds,
  });
  const control = new ControlService({
    fleet,
    router,
    state,
    controlTimeoutMs: t.controlTimeoutMs,
    loadTimeoutMs: config.state.loadTimeoutMs,
    retryAfterSeconds,
    refreshServer: async (server) => {
      await reconciler.reconcileServer(server);
    },
    proxyVersion: PROXY_VERSION,
  });

  // Logging and trace settings (Triton's extensions), read from one server, changed on the fleet.
  const settings = new SettingsService({
    fleet,
    router,
    state,
    controlTimeoutMs: t.controlTimeoutMs,
    retryAfterSeconds,
  });

  const generate = new GenerateService({
    infer,
    control,
    admission,
    state,
    metrics,
    streamIdleTimeoutMs: t.streamIdleTimeoutMs,
    metadataTtlMs: t.generateMetadataTtlMs,
  });

  let draining = false;
  const isReady = (): { ready: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    if (draining) reasons.push('shutting down');
    if (fleet.readyCount() === 0) reasons.push('no Triton server is ready');
    if (config.state.readinessRequiresRedis && !state.health().up)
      reasons.push('Redis is unreachable');
    return { ready: reasons.length === 0, reasons };
  };
  metrics.setReadinessSource(() => isReady().ready);

  access.start();
  closers.push(() => access.stop());
  const errors = new ErrorReporter(logger, undefined, undefined, config.status.recentErrors);
  // The status page: read-only views of what the modules already track.
  const status = () =>
    collectStatus({
      version: PROXY_VERSION,
      replicaId: state.replicaId,
      startedAt,
      isReady,
      stateHealth: () => state.health(),
      replicas: () => state.replicas(),
      servers: () => fleet.snapshot(),
      staleServers: () => reconciler.staleServers(),
      modelState: () => state.snapshot(),
      admission: () => admission.stats(),
      cacheResults: cache.enabled ? () => metrics.cacheResultsByModel() : undefined,
      errors: () => errors.summary(),
    });
  const httpDeps = {
    infer,
    generate,
    control,
    settings,
    maxBodyBytes: config.http.maxBodyBytes,
    bodyTimeoutMs: config.http.bodyTimeoutMs,
    tracing: config.tracing.enabled,
    tracer,
    errors,
    isReady,
    registry: metrics.registry,
    httpMetrics: metrics.http,
    access,
    quota,
    admission,
    bodyBuffers: largeBuffers,
    // Response compression on Accept-Encoding (src/http/compression.ts).
    responseCompression: config.compression.responses
      ? {
          minBytes: config.compression.minBytes,
          level: config.compression.level,
          onCompressed: (coding: string, before: number, after: number) =>
            metrics.countCompressedResponse(coding, before, after),
        }
      : undefined,
    status,
    statusRefreshSeconds: config.status.refreshSeconds,
  };
  const app = createApp(httpDeps);
  // headersTimeout must exceed keepAliveTimeout or idle sockets race a 408.
  const headersTimeoutMs = config.http.headersTimeoutMs || config.http.keepAliveTimeoutMs + 5000;
  const serverOptions = {
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    // Node checks header deadlines on this period (30 s by default): check often enough
    // that a slow client is cut close to its deadline.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeoutMs / 4)),
  };
  const tls: ListenerTls | undefined =
    config.http.tlsCertFile !== ''
      ? {
          certFile: config.http.tlsCertFile,
          keyFile: config.http.tlsKeyFile,
          clientCaFile: config.http.tlsClientCaFile,
        }
      : undefined;
  const listener = inferListener(app, httpDeps);
  let server: Server;
  // The gRPC front end (started below, once HTTP listens) serves the same certificate.
  let grpcFront: GrpcFront | undefined;
  let listenerTls: ListenerSecrets | undefined;
  if (tls) {
    let secure;
    try {
      secure = readListenerTls(tls);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    listenerTls = secure;
    const https = createHttpsServer({ ...serverOptions, ...secure }, listener);
    const apply = (renewed: ListenerSecrets): void => {
      https.setSecureContext(renewed);
      grpcFront?.setSecureContext(renewed);
    };
    closers.push(reloadListenerTls(apply, tls, config.auth.keysReloadIntervalMs, logger));
    server = https;
  } else {
    server = createServer(serverOptions, listener);
  }
  server.headersTimeout = headersTimeoutMs;
  // Bodies are bounded by HTTP_BODY_TIMEOUT_MS where they are read, with a JSON answer.
  server.requestTimeout = 0;
  server.on('clientError', answerClientError);
  // Keep-alive connections outlive the endpoint removal, so clients would keep
  // sending here over them, and an idle one holds server.close() open until
  // the grace period ends. While draining, every answer closes its connection:
  // clients reconnect through the Service, and closing finishes with the last
  // in-flight answer. Prepended so it runs before express writes anything.
  server.prependListener('request', (_req, res) => {
    if (draining) res.setHeader('connection', 'close');
  });

  let discovery: DnsDiscovery | undefined;
  if (t.discoveryDns !== '') {
    discovery = new DnsDiscovery(fleet, {
      target: t.discoveryDns,
      intervalMs: t.discoveryIntervalMs,
      group: t.discoveryGroup,
      tls: t.tls.enabled ? { ...t.tls } : undefined,
      resolver: options.resolver,
      logger,
    });
    discovery.start();
  }
  fleet.startHealthChecks();
  await fleet.checkAll();
  // Servers may have turned ready before the listener above existed (health
  // checks start as they are added): read them now, before taking traffic, so
  // that no request is routed on an empty state for a whole reconcile interval.
  await readUnreadServers();
  reconciler.start();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (): number => (server.address() as AddressInfo).port;
  if (config.http.grpcPort !== 0) {
    grpcFront = new GrpcFront(
      {
        host: config.http.host,
        port: config.http.grpcPort,
        maxReceiveMessageBytes: config.http.maxBodyBytes,
        maxSendMessageBytes: t.maxMessageBytes,
        flowControlWindowBytes: t.flowControlWindowBytes,
        tracing: config.tracing.enabled,
        tls: listenerTls,
      },
      { infer, control, settings, access, quota, packageDefinition, metrics, errors, tracer },
    );
    try {
      await grpcFront.start();
    } catch (err) {
      server.close();
      throw err;
    }
  }
  const grpcPort = (): number => grpcFront?.port() ?? 0;
  logger.info('triton-proxy listening', {
    port: port(),
    grpcPort: grpcPort(),
    servers: fleet.servers.map((s) => `${s.name}=${s.address}`),
    state: state.health().backend,
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      draining = true;
      discovery?.stop();
      reconciler.stop();
      server.closeAllConnections();
      grpcFront?.close();
      await new Promise<void>((r) => server.close(() => r()));
      await fleet.close();
      await state.close();
      for (const c of closers) await c();
    })();
    return closed;
  };

  const shutdown = async (): Promise<void> => {
    if (draining) return close();
    draining = true;
    const l = config.lifecycle;
    // The delay lets Kubernetes take the pod out of its Service; the embedded
    // demo has no Service, and Ctrl-C should stop it at once.
    const delayMs = config.demo.backend ? 0 : l.shutdownDelayMs;
    logger.info('shutdown: readiness off, still serving', { delayMs });
    await new Promise((r) => setTimeout(r, delayMs));
    logger.info('shutdown: no longer accepting; draining in-flight requests', {
      graceMs: l.shutdownGraceMs,
    });
    // The listener closes and idle keep-alive connections with it; every
    // answer since the signal said `Connection: close`. So a request that
    // still reaches admission was sent before the stop (its body may still be
    // arriving): it is served, not refused with 503. The grace period bounds
    // the wait.
    const stopped = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    const drained = Promise.all([admission.drain(), stopped, grpcFront?.drain()]);
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), l.shutdownGraceMs).unref()),
    ]);
    if (timedOut) logger.warn('shutdown: grace period over with requests still in flight');
    await close();
    logger.info('shutdown complete');
  };

  return {
    config,
    metrics,
    fleet,
    state,
    admission,
    server,
    port,
    grpcPort,
    isReady,
    shutdown,
    close,
  };
}
