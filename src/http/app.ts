import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { ProxyError, toProxyError } from '../errors';
import type { HttpMetrics } from '../observability';
import { kserveRoutes, type KserveRoutesDeps } from './routes/kserve';
import { settingsRoutes, type SettingsRoutesDeps } from './routes/settings';
import { sharedMemoryRoutes } from './routes/shared-memory';
import { ServedExtensions } from '../protocol';
import { probeRoutes, type ProbeDeps } from './routes/probes';
import { statusRoutes, type StatusRouteDeps } from './routes/status';
import { authenticateRequests, clientLabelOf } from './auth';
import { requestIdOf } from './context';
import { sendError } from './send';

export interface AppDeps extends KserveRoutesDeps, SettingsRoutesDeps, ProbeDeps, StatusRouteDeps {
  registry: Registry;
  httpMetrics: HttpMetrics;
}

/** Model names and versions in paths become placeholders, keeping HTTP metric labels bounded. */
export const NORMALIZED_PATHS: Array<[string, string]> = [
  ['^/v2/models/stats$', '/v2/models/stats'],
  ['^/v2/models/[^/]+/versions/[^/]+', '/v2/models/#model/versions/#version'],
  ['^/v2/models/[^/]+', '/v2/models/#model'],
  ['^/v2/repository/models/[^/]+', '/v2/repository/models/#model'],
  ['^/v2/(system|cuda)sharedmemory/region/[^/]+', '/v2/$1sharedmemory/region/#region'],
];

/** The proxy's own GET-only paths (probes, the scrape and the status page). */
const PROBE_PATHS: ReadonlySet<string> = new Set([
  '/health/live',
  '/health/ready',
  '/metrics',
  '/status',
  '/status.json',
]);

/** The `path` label of requests no route serves. */
export const UNMATCHED_PATH = '#unmatched';

const NORMALIZERS = NORMALIZED_PATHS.map(([pattern, replacement]) => ({
  pattern: new RegExp(pattern),
  replacement,
}));

/**
 * The `path` label of the HTTP metrics: the API path with placeholders, or
 * one shared value when no route matched, since scanners and typos would
 * otherwise add a series per distinct URL.
 */
export function pathLabel(req: Request): string {
  // The catch-all that answers 404/405 for the rest of /v2 is a pattern, not a route template.
  const route = req.route as { path?: unknown } | undefined;
  if (route === undefined || typeof route.path !== 'string') return UNMATCHED_PATH;
  let path = req.originalUrl.split('?', 1)[0] ?? '';
  for (const { pattern, replacement } of NORMALIZERS) path = path.replace(pattern, replacement);
  return path;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  // Every request but scrapes and probes is timed, labelled once it is over
  // (answered, or its connection gone) with the route template that served it.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.path === '/metrics' || req.path.startsWith('/health/')) {
      next();
      return;
    }
    const started = performance.now();
    res.once('close', () =>
      deps.httpMetrics.observe(
        req.method,
        pathLabel(req),
        res.statusCode,
        clientLabelOf(res),
        (performance.now() - started) / 1000,
      ),
    );
    next();
  });
  app.use(probeRoutes(deps));
  app.use(statusRoutes(deps));
  app.use('/v2', authenticateRequests(deps.access));
  // Each router claims the extensions it serves; GET /v2 (in kserveRoutes) lists them.
  const served = new ServedExtensions();
  app.use(settingsRoutes(deps, served));
  app.use(sharedMemoryRoutes(deps));
  app.use(kserveRoutes(deps, served));
  // Outside /v2 (whose own catch-all is in kserveRoutes): no model is involved.
  app.use((req: Request, res: Response) => {
    const err = PROBE_PATHS.has(req.path)
      ? new ProxyError('METHOD_NOT_ALLOWED', 'Method Not Allowed', {
          headers: { allow: 'GET, HEAD' },
        })
      : new ProxyError('NOT_FOUND', `Not Found: ${req.method} ${req.path}`);
    sendError(res, err, requestIdOf(req));
  });
  // Last resort: nothing a request does may take the process down or leak a stack.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toProxyError(err);
    deps.errors.report(e, { requestId: requestIdOf(req), path: req.path });
    sendError(res, e, requestIdOf(req));
  });
  return app;
}
