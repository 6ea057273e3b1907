import { Router as ExpressRouter, type Request, type Response } from 'express';
import type { SettingsAnswer, SettingsService } from '../../inference';
import type { Scope } from '../../access';
import { clientOf } from '../auth';
import { parseJsonObject, readBody } from '../body';
import { targetServerOf } from '../context';
import { sendJson } from '../send';
import type { ServedExtensions } from '../../protocol';
import { runRoute, type KserveRoutesDeps, type RouteMeta } from './kserve';

export interface SettingsRoutesDeps extends Pick<
  KserveRoutesDeps,
  'access' | 'quota' | 'tracing' | 'tracer' | 'errors' | 'bodyTimeoutMs'
> {
  settings: SettingsService;
}

/** Settings bodies are a handful of keys. */
const SETTINGS_BODY_LIMIT = 64 * 1024;

/**
 * Triton's logging and trace extensions: GET reads, POST changes, both need
 * the `admin` scope (settings change what every server logs and traces).
 * A server may be named by `?server=` or `X-Triton-Server`. The answer is
 * Triton's settings JSON; its X-Triton-Server header names the server(s)
 * read or changed.
 */
export function settingsRoutes(deps: SettingsRoutesDeps, served: ServedExtensions): ExpressRouter {
  const router = ExpressRouter();
  type Handler = (req: Request, meta: RouteMeta) => Promise<SettingsAnswer>;
  const model = (req: Request): string => (req.params as { model?: string }).model ?? '';
  const handle =
    (scope: Scope, fn: Handler) =>
    (req: Request, res: Response): void =>
      runRoute(
        deps,
        scope,
        // A model's trace settings are also checked against the client's model globs.
        model(req),
        req,
        res,
        () => clientOf(res),
        async (meta) => {
          const answer = await fn(req, meta);
          res.setHeader('x-triton-server', answer.servers.join(','));
          sendJson(res, 200, answer.settings, meta.requestId);
        },
      );
  const body = async (req: Request, what: string) =>
    parseJsonObject(
      await readBody(req, { limit: SETTINGS_BODY_LIMIT, timeoutMs: deps.bodyTimeoutMs }),
      what,
    );
  const { settings } = deps;

  router.get(
    '/v2/logging',
    handle('admin', (req, meta) => settings.readLog(targetServerOf(req), meta)),
  );
  router.post(
    '/v2/logging',
    handle('admin', async (req, meta) =>
      settings.updateLog(await body(req, 'log settings'), targetServerOf(req), meta),
    ),
  );
  served.serve('logging');

  for (const path of ['/v2/trace/setting', '/v2/models/:model/trace/setting']) {
    router.get(
      path,
      handle('admin', (req, meta) => settings.readTrace(model(req), targetServerOf(req), meta)),
    );
    router.post(
      path,
      handle('admin', async (req, meta) =>
        settings.updateTrace(
          model(req),
          await body(req, 'trace settings'),
          targetServerOf(req),
          meta,
        ),
      ),
    );
  }
  served.serve('trace');

  return router;
}
