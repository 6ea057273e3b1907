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
  // Both views read one fresh snapshot; only the rendering and headers differ.
  const serve = (
    path: string,
    render: (snapshot: Awaited<ReturnType<StatusRouteDeps['status']>>) => string,
    headers: Record<string, string>,
  ): void => {
    router.get(path, authenticate, (req, res) => {
      runRoute(
        deps,
        'read',
        '',
        req,
        res,
        () => clientOf(res),
        async () => {
          const body = render(await deps.status());
          res.writeHead(200, {
            ...headers,
            'content-length': Buffer.byteLength(body),
            'cache-control': 'no-store',
          });
          res.end(body);
        },
      );
    });
  };
  serve('/status.json', (snapshot) => JSON.stringify(snapshot), {
    'content-type': 'application/json',
  });
  serve(
    '/status',
    (snapshot) => renderStatusPage(snapshot, { refreshSeconds: deps.statusRefreshSeconds }),
    {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': PAGE_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
  );
  return router;
}
