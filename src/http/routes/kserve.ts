import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router as ExpressRouter, type Request, type Response } from 'express';
import { ProxyError, invalidRequest, toProxyError } from '../../errors';
import { readBinaryHeaderLength, type ReusableBuffers } from '../../codec';
import type { CallMeta, ControlService, GenerateService, InferService } from '../../inference';
import { isClientGoneError, type AdmissionController, type ByteReservation } from '../../admission';
import {
  mayUseModel,
  type AccessControl,
  type Client,
  type QuotaEnforcer,
  type Scope,
} from '../../access';
import { clientOf } from '../auth';
import { parseJsonObject, readBody as readBodyWithin } from '../body';
import { cacheControlOf, requestIdOf, requestTimeoutOf, targetServerOf, traceOf } from '../context';
import type { ServedExtensions } from '../../protocol';
import { sendChunks, sendEmpty, sendError, sendJson } from '../send';
import type { ErrorReporter, RequestTrace, Tracer } from '../../observability';
import { eventStream } from '../event-stream';
import { negotiateEncoding, sendCompressedChunks, type ResponseCompression } from '../compression';

export interface KserveRoutesDeps {
  infer: InferService;
  generate: GenerateService;
  control: ControlService;
  maxBodyBytes: number;
  /** HTTP_BODY_TIMEOUT_MS: the whole body must arrive within it. */
  bodyTimeoutMs: number;
  tracing: boolean;
  /** OpenTelemetry, when an OTLP endpoint is configured: a span per request. */
  tracer?: Tracer;
  errors: ErrorReporter;
  access: AccessControl;
  quota: QuotaEnforcer;
  admission: Pick<AdmissionController, 'reserveBytes'>;
  /** Large bodies are assembled in these (shared with the JSON parse workers, which give them back). */
  bodyBuffers?: ReusableBuffers;
  /** Inference answers compressed on the client's Accept-Encoding; undefined = never. */
  responseCompression?: ResponseCompression;
}

/**
 * Every path of the API with the methods it serves, so a path asked with
 * another method is told which ones it takes (405 + Allow, as Triton answers
 * 405) instead of being called unknown. GET routes answer HEAD too (express).
 */
const API_PATHS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/v2$/, 'GET, HEAD'],
  [/^\/v2\/health\/(live|ready)$/, 'GET, HEAD'],
  [/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?(\/(ready|config|stats))?$/, 'GET, HEAD'],
  [/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/(infer|generate|generate_stream)$/, 'POST'],
  [/^\/v2\/repository\/index$/, 'POST'],
  [/^\/v2\/repository\/models\/[^/]+\/(load|unload)$/, 'POST'],
  // Served by ./settings.ts and ./shared-memory.ts, mounted before these routes.
  [/^\/v2\/logging$/, 'GET, HEAD, POST'],
  [/^\/v2(\/models\/[^/]+)?\/trace\/setting$/, 'GET, HEAD, POST'],
  [/^\/v2\/(system|cuda)sharedmemory(\/region\/[^/]+)?\/status$/, 'GET, HEAD'],
  [/^\/v2\/(system|cuda)sharedmemory(\/region\/[^/]+)?\/unregister$/, 'POST'],
  [/^\/v2\/(system|cuda)sharedmemory\/region\/[^/]+\/register$/, 'POST'],
];

/** The methods a path of the API serves (the Allow header), or undefined when it is not one. */
export function allowedMethods(path: string): string | undefined {
  return API_PATHS.find(([pattern]) => pattern.test(path))?.[1];
}

type Handler = (req: Request, res: Response, meta: RouteMeta) => Promise<void>;

function param(req: Request, name: string): string {
  const v = (req.params as Record<string, string | undefined>)[name];
  return v ?? '';
}

export interface RouteMeta {
  requestId: string;
  traceparent?: string;
  /** The request's span (OpenTelemetry on). */
  trace?: RequestTrace;
  client: Client;
}

/** The model and version a route's path names ('' when it names none). */
export interface RouteParams {
  model: string;
  version: string;
}

/**
 * Runs one route for an authenticated request: every route names the scope
 * it needs, a route naming a model is also checked against the client's
 * model globs, and the client's quota is taken, all before any body is
 * read; failures become the error answer. Works on plain node:http objects,
 * so the infer listener (../infer-listener.ts) runs exactly what the
 * express routes run.
 */
export function runRoute(
  deps: Pick<KserveRoutesDeps, 'access' | 'quota' | 'tracing' | 'tracer' | 'errors'>,
  scope: Scope,
  model: string,
  req: IncomingMessage,
  res: ServerResponse,
  client: () => Client,
  fn: (meta: RouteMeta) => Promise<void>,
  route?: string,
): void {
  const requestId = requestIdOf(req);
  const span =
    deps.tracer === undefined
      ? undefined
      : startHttpSpan(deps.tracer, req, requestId, model, route);
  // With a span, Triton and the logs get its context; otherwise the client's, when propagation is on.
  const trace = span ?? (deps.tracing ? traceOf(req) : undefined);
  const run = async (): Promise<void> => {
    const c = client();
    deps.access.authorize(c, scope, model === '' ? undefined : model);
    // The quota is taken before the body is read; bytes count as declared.
    const declared = Number(req.headers['content-length'] ?? 0);
    const quota = await deps.quota.consume(c, Number.isFinite(declared) ? declared : 0);
    for (const [name, value] of Object.entries(quota.headers)) res.setHeader(name, value);
    await fn({ requestId, traceparent: trace?.traceparent, trace: span, client: c });
  };
  run().then(span === undefined ? undefined : () => span.end(res.statusCode), (err: unknown) => {
    if (isClientGoneError(err) || res.destroyed) {
      span?.end(499, toProxyError(err));
      return;
    }
    const e = toProxyError(err);
    // Nobody is left to read an answer.
    if (e.code === 'CLIENT_CLOSED') {
      span?.end(499, e);
      return;
    }
    deps.errors.report(e, { requestId, path: pathOf(req), traceId: trace?.traceId });
    sendError(res, e, requestId);
    span?.end(res.statusCode, e);
  });
}

function startHttpSpan(
  tracer: Tracer,
  req: IncomingMessage,
  requestId: string,
  model: string,
  route: string | undefined,
): RequestTrace {
  const method = req.method ?? 'GET';
  const path = pathOf(req);
  return tracer.startServerSpan({
    name: `${method} ${route ?? path}`,
    protocol: 'http',
    carrier: (key) => {
      const value = req.headers[key];
      return typeof value === 'string' ? value : undefined;
    },
    requestId,
    method,
    path,
    route,
    model,
  });
}

/** The express route template that matched (`/v2/models/:model/infer`), for span names. */
function routeOf(req: Request): string | undefined {
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? route.path : undefined;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Reserves the body's declared bytes from the in-flight byte cap before
 * reading it (429 at once when they do not fit) and grows the reservation
 * with the bytes that actually arrive.
 */
async function readReservedBody(
  deps: Pick<KserveRoutesDeps, 'admission' | 'maxBodyBytes' | 'bodyTimeoutMs' | 'bodyBuffers'>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<{ body: Buffer; reservation: ByteReservation }> {
  const identity = (req.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity';
  const declared = Number(req.headers['content-length'] ?? 0);
  const upFront = identity && Number.isFinite(declared) ? Math.min(declared, deps.maxBodyBytes) : 0;
  let reservation: ByteReservation;
  try {
    reservation = deps.admission.reserveBytes(upFront);
  } catch (err) {
    // The body was not read: do not read it to keep the connection.
    res.setHeader('connection', 'close');
    throw err;
  }
  res.once('close', () => reservation.release());
  const body = await readBodyWithin(req, {
    limit: deps.maxBodyBytes,
    timeoutMs: deps.bodyTimeoutMs,
    reserved: upFront,
    onBytes: (n) => reservation.grow(n),
    buffers: deps.bodyBuffers,
  });
  return { body, reservation };
}

/** POST .../infer: body in, one call to the inference use case, answer out. */
export function inferHandler(
  deps: Pick<
    KserveRoutesDeps,
    'infer' | 'admission' | 'maxBodyBytes' | 'bodyTimeoutMs' | 'bodyBuffers' | 'responseCompression'
  >,
): (
  req: IncomingMessage,
  res: ServerResponse,
  meta: RouteMeta,
  params: RouteParams,
) => Promise<void> {
  return async (req, res, meta, params) => {
    const headerLength = readBinaryHeaderLength(
      req.headers['inference-header-content-length'] as string | undefined,
    );
    const timeoutMs = requestTimeoutOf(req);
    const { body, reservation } = await readReservedBody(deps, req, res);
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) controller.abort();
    };
    res.once('close', onClose);
    const out = await deps.infer.infer({
      model: params.model,
      version: params.version,
      body,
      headerLength,
      timeoutMs,
      requestId: meta.requestId,
      traceparent: meta.traceparent,
      trace: meta.trace,
      signal: controller.signal,
      cacheControl: cacheControlOf(req),
      priority: meta.client.priority,
      bytesReserved: true,
    });
    // The answer is in memory until the socket has taken it.
    reservation.hold(out.byteLength);
    const headers: Record<string, string | number> = {
      'content-type': out.contentType,
      'x-request-id': meta.requestId,
    };
    if (out.cacheStatus !== undefined) headers['x-cache'] = out.cacheStatus;
    // Of the uncompressed body, also when the answer is compressed (as Triton sends it).
    if (out.headerLength !== undefined)
      headers['inference-header-content-length'] = out.headerLength;
    const compression = deps.responseCompression;
    if (compression !== undefined) {
      headers.vary = 'Accept-Encoding';
      const coding =
        out.byteLength >= compression.minBytes
          ? negotiateEncoding(req.headers['accept-encoding'])
          : undefined;
      if (coding !== undefined) {
        await sendCompressedChunks(res, out.chunks, out.byteLength, headers, coding, compression);
        return;
      }
    }
    sendChunks(res, out.chunks, out.byteLength, headers);
  };
}

/**
 * Triton's HTTP/REST API (KServe v2 + Triton's extensions), same paths,
 * bodies and status codes. Routes are thin: read the request, call one
 * use-case method, write the answer.
 */
export function kserveRoutes(deps: KserveRoutesDeps, served: ServedExtensions): ExpressRouter {
  const router = ExpressRouter();
  const readBody = (req: Request, limit: number): Promise<Buffer> =>
    readBodyWithin(req, { limit, timeoutMs: deps.bodyTimeoutMs });

  /**
   * Reserves the body's bytes before reading it (its Content-Length, or as
   * chunks arrive when there is none or it is compressed) and holds them,
   * with the answer's, until the answer is written or the client is gone.
   */
  const handle =
    (scope: Scope, fn: Handler) =>
    (req: Request, res: Response): void =>
      runRoute(
        deps,
        scope,
        param(req, 'model'),
        req,
        res,
        () => clientOf(res),
        (meta) => fn(req, res, meta),
        routeOf(req),
      );

  const serveInfer = inferHandler(deps);
  const infer: Handler = (req, res, meta) =>
    serveInfer(req, res, meta, { model: param(req, 'model'), version: param(req, 'version') });

  // Aborted when the client goes away before the answer is complete.
  const clientGone = (res: Response): AbortSignal => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    return controller.signal;
  };

  const generateCall = async (req: Request, res: Response, meta: Parameters<Handler>[2]) => {
    const timeoutMs = requestTimeoutOf(req);
    // The body's bytes stay reserved until the answer (or the stream) is over.
    const { body } = await readReservedBody(deps, req, res);
    return {
      bytesReserved: true,
      model: param(req, 'model'),
      version: param(req, 'version'),
      body,
      timeoutMs,
      requestId: meta.requestId,
      traceparent: meta.traceparent,
      trace: meta.trace,
      signal: clientGone(res),
      priority: meta.client.priority,
    };
  };

  const generate: Handler = async (req, res, meta) => {
    const answer = await deps.generate.generate(await generateCall(req, res, meta));
    sendChunks(
      res,
      [answer.body],
      answer.body.length,
      {
        'content-type': 'application/json',
        'x-request-id': meta.requestId,
      },
      answer.status,
    );
  };

  const generateStream: Handler = async (req, res, meta) => {
    const call = await generateCall(req, res, meta);
    await deps.generate.generateStream(call, eventStream(res, meta.requestId));
  };

  router.post('/v2/models/:model/infer', handle('infer', infer));
  router.post('/v2/models/:model/versions/:version/infer', handle('infer', infer));
  // Features of the inference request itself, passed to Triton as the client sent them.
  served.serve('classification', 'sequence', 'schedule_policy', 'binary_tensor_data', 'parameters');
  router.post('/v2/models/:model/generate', handle('infer', generate));
  router.post('/v2/models/:model/versions/:version/generate', handle('infer', generate));
  router.post('/v2/models/:model/generate_stream', handle('infer', generateStream));
  router.post(
    '/v2/models/:model/versions/:version/generate_stream',
    handle('infer', generateStream),
  );

  router.get(
    '/v2',
    handle('read', async (_req, res, meta) => {
      const metadata = await deps.control.serverMetadata(meta);
      // Triton's list names extensions the proxy may not serve (shared memory): list only what is routed here.
      const upstream = Array.isArray(metadata.extensions) ? metadata.extensions : undefined;
      sendJson(res, 200, { ...metadata, extensions: served.list(upstream) }, meta.requestId);
    }),
  );
  router.get(
    '/v2/health/live',
    handle('read', async (_req, res, meta) =>
      sendEmpty(res, (await deps.control.serverLive(meta)) ? 200 : 400, meta.requestId),
    ),
  );
  router.get(
    '/v2/health/ready',
    handle('read', async (_req, res, meta) =>
      sendEmpty(res, deps.control.serverReady() ? 200 : 400, meta.requestId),
    ),
  );

  // GET routes that answer one model's JSON, unversioned and versioned.
  type ModelQuery = (model: string, version: string, meta: CallMeta) => Promise<unknown>;
  const modelJson =
    (query: ModelQuery): Handler =>
    async (req, res, meta) =>
      sendJson(
        res,
        200,
        await query(param(req, 'model'), param(req, 'version'), meta),
        meta.requestId,
      );
  const modelRoutes = (suffix: string, handler: Handler) => {
    router.get(`/v2/models/:model${suffix}`, handle('read', handler));
    router.get(`/v2/models/:model/versions/:version${suffix}`, handle('read', handler));
  };

  // Statistics of every model: a client limited to some models sees only those.
  router.get(
    '/v2/models/stats',
    handle('read', async (_req, res, meta) => {
      const stats = await deps.control.modelStatistics('', '', meta);
      sendJson(res, 200, onlyPermitted(meta.client, stats), meta.requestId);
    }),
  );
  modelRoutes(
    '/stats',
    modelJson((m, v, meta) => deps.control.modelStatistics(m, v, meta)),
  );
  served.serve('statistics');
  modelRoutes(
    '',
    modelJson((m, v, meta) => deps.control.modelMetadata(m, v, meta)),
  );
  modelRoutes(
    '/config',
    modelJson((m, v, meta) => deps.control.modelConfig(m, v, meta)),
  );
  served.serve('model_configuration');
  modelRoutes('/ready', async (req, res, meta) => {
    if (await deps.control.modelReady(param(req, 'model'), param(req, 'version'), meta)) {
      sendEmpty(res, 200, meta.requestId);
    } else {
      sendError(res, invalidRequest('Model version not ready'), meta.requestId);
    }
  });

  router.post(
    '/v2/repository/index',
    handle('read', async (req, res, meta) => {
      const body = parseJsonObject(await readBody(req, 1024 * 1024), 'repository index request');
      const index = await deps.control.repositoryIndex(body, meta);
      sendJson(
        res,
        200,
        index.filter((e) => mayUseModel(meta.client, e.name)),
        meta.requestId,
      );
    }),
  );

  // The target server may be named by `?server=`, the X-Triton-Server header, or left to the proxy.
  const target = targetServerOf;
  router.post(
    '/v2/repository/models/:model/load',
    handle('admin', async (req, res, meta) => {
      const body = parseJsonObject(await readBody(req, deps.maxBodyBytes), 'load model request');
      deps.access.authorizeLoad(meta.client, param(req, 'model'), loadParameterNames(body));
      const server = await deps.control.load(param(req, 'model'), body, target(req), meta);
      res.setHeader('x-triton-server', server);
      sendEmpty(res, 200, meta.requestId);
    }),
  );
  router.post(
    '/v2/repository/models/:model/unload',
    handle('admin', async (req, res, meta) => {
      const body = parseJsonObject(await readBody(req, 1024 * 1024), 'unload model request');
      const servers = await deps.control.unload(param(req, 'model'), body, target(req), meta);
      if (servers.length > 0) res.setHeader('x-triton-server', servers.join(','));
      sendEmpty(res, 200, meta.requestId);
    }),
  );
  // Load parameters (config, files, unload_dependents) are passed to Triton as sent.
  served.serve('model_repository', 'model_repository(unload_dependents)');

  // The rest of /v2: a known path with the wrong method is 405 (as Triton
  // answers) naming the methods it takes; anything else is 404 NOT_FOUND.
  router.all(/^\/v2(\/.*)?$/, (req, res) => {
    const allow = allowedMethods(req.path);
    const err =
      allow === undefined
        ? new ProxyError('NOT_FOUND', `Not Found: ${req.method} ${req.path}`)
        : new ProxyError('METHOD_NOT_ALLOWED', 'Method Not Allowed', { headers: { allow } });
    sendError(res, err, requestIdOf(req));
  });
  return router;
}

function loadParameterNames(body: Record<string, unknown>): string[] {
  const params = body.parameters;
  return typeof params === 'object' && params !== null ? Object.keys(params) : [];
}

/** Statistics limited to the models a client may use. */
function onlyPermitted(client: Client, stats: Record<string, unknown>): Record<string, unknown> {
  if (client.models === undefined || !Array.isArray(stats.model_stats)) return stats;
  return {
    ...stats,
    model_stats: (stats.model_stats as Array<{ name?: unknown }>).filter(
      (s) => typeof s.name === 'string' && mayUseModel(client, s.name),
    ),
  };
}
