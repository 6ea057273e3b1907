import { Router as ExpressRouter } from 'express';
import type { StatusSnapshot } from '../../status';
import { renderStatusPage } from '../../status';
import { authenticateRequests, clientOf } from '../auth';
import { runRoute, type KserveRoutesDeps } from './kserve';

export interface StatusRouteDeps extends Pick<
  KserveRoutesDeps,
  'access' | 'quota' | 'tracing' | 'errors'
> {
  /** One fresh snapshot per call (the page is read by people, not on the request path). */
  status: () => Promise<StatusSnapshot>;
  /** The HTML page reloads itself this often; 0: never. */
  statusRefreshSeconds: number;
}

/**
 * The page blocks everything but its own inline style: it has no script and
 * loads nothing, and the text in it comes from configuration and requests.
 */
const PAGE_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/**
 * GET /status (HTML for people) and GET /status.json (the same snapshot for
 * tools). Both need the `read` scope when authentication is on.
 */
export function statusRoutes(deps: StatusRouteDeps): ExpressRouter {
  const router = ExpressRouter();
  const authenticate = authenticateRequests(deps.access);
  router.get('/status.json', authenticate, (req, res) => {
    runRoute(
      deps,
      'read',
      '',
      req,
      res,
      () => clientOf(res),
      async () => {
        const body = JSON.stringify(await deps.status());
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
        });
        res.end(body);
      },
    );
  });
  router.get('/status', authenticate, (req, res) => {
    runRoute(
      deps,
      'read',
      '',
      req,
      res,
      () => clientOf(res),
      async () => {
        const body = renderStatusPage(await deps.status(), {
          refreshSeconds: deps.statusRefreshSeconds,
        });
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
          'content-security-policy': PAGE_POLICY,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
        });
        res.end(body);
      },
    );
  });
  return router;
}
