import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Client } from '../access';
import { toProxyError } from '../errors';
import type { HttpMetrics } from '../observability';
import { credentialsOf } from './auth';
import { requestIdOf } from './context';
import { inferHandler, runRoute, type KserveRoutesDeps, type RouteParams } from './routes/kserve';
import { sendError } from './send';

const MODELS = '/v2/models/';
const INFER = '/infer';
const VERSIONS = '/versions/';
const UNVERSIONED_TEMPLATE = '/v2/models/#model/infer';
const VERSIONED_TEMPLATE = '/v2/models/#model/versions/#version/infer';
// The express templates of the same routes (the http.route of their spans).
const ROUTES: Record<string, string> = {
  [UNVERSIONED_TEMPLATE]: '/v2/models/:model/infer',
  [VERSIONED_TEMPLATE]: '/v2/models/:model/versions/:version/infer',
};

export interface InferRoute extends RouteParams {
  /** The `path` label: the route template, as the express routes' label. */
  template: string;
}

/** A path segment as express decodes route parameters; undefined when it cannot be. */
function segment(text: string): string | undefined {
  if (text === '' || text.includes('/')) return undefined;
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * POST /v2/models/{model}/infer and /v2/models/{model}/versions/{version}/infer
 * in their canonical spelling, matched with string operations instead of a
 * router. Anything else (other case, trailing slash, undecodable escapes)
 * is left to express, which serves it exactly as before.
 */
export function matchInferRoute(url: string): InferRoute | undefined {
  if (!url.startsWith(MODELS)) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!path.endsWith(INFER)) return undefined;
  const inner = path.slice(MODELS.length, path.length - INFER.length);
  const v = inner.indexOf(VERSIONS);
  if (v < 0) {
    const model = segment(inner);
    return model === undefined ? undefined : { model, version: '', template: UNVERSIONED_TEMPLATE };
  }
  const model = segment(inner.slice(0, v));
  const version = segment(inner.slice(v + VERSIONS.length));
  if (model === undefined || version === undefined) return undefined;
  return { model, version, template: VERSIONED_TEMPLATE };
}

export interface InferListenerDeps extends KserveRoutesDeps {
  httpMetrics: HttpMetrics;
}

/**
 * The server's request listener: POST .../infer goes straight to the same
 * steps the express app would run for it (timing for the HTTP histogram,
 * authentication, the route's authorization, the infer handler), without
 * express's per-request router walk, middleware chain and request/response
 * decoration; every other request goes to `app` unchanged.
 */
export function inferListener(app: RequestListener, deps: InferListenerDeps): RequestListener {
  const serveInfer = inferHandler(deps);
  return (req: IncomingMessage, res: ServerResponse) => {
    const route = req.method === 'POST' ? matchInferRoute(req.url ?? '') : undefined;
    if (route === undefined) {
      app(req, res);
      return;
    }
    const started = performance.now();
    let clientLabel = 'none';
    res.once('close', () =>
      deps.httpMetrics.observe(
        'POST',
        route.template,
        res.statusCode,
        clientLabel,
        (performance.now() - started) / 1000,
      ),
    );
    deps.access.authenticate(credentialsOf(req)).then(
      (client: Client) => {
        clientLabel = client.label;
        runRoute(
          deps,
          'infer',
          route.model,
          req,
          res,
          () => client,
          (meta) => serveInfer(req, res, meta, route),
          ROUTES[route.template],
        );
      },
      (err: unknown) => sendError(res, toProxyError(err), requestIdOf(req)),
    );
  };
}
