import { Router as ExpressRouter, type Request, type Response } from 'express';
import { ProxyError } from '../../errors';
import type { Scope } from '../../access';
import { clientOf } from '../auth';
import { sendJson } from '../send';
import { runRoute, type KserveRoutesDeps } from './kserve';

export type SharedMemoryRoutesDeps = Pick<
  KserveRoutesDeps,
  'access' | 'quota' | 'tracing' | 'tracer' | 'errors'
>;

/** Triton's two shared-memory extensions: path segment and the word its messages use. */
const KINDS = [
  { segment: 'systemsharedmemory', label: 'system' },
  { segment: 'cudasharedmemory', label: 'cuda' },
] as const;

/**
 * Why registration is refused: a region lives in the memory of the host
 * (or GPU) that created it, and the Triton servers behind the proxy run
 * elsewhere, so no server could read a region registered here.
 */
export function sharedMemoryUnsupported(label: string): ProxyError {
  return new ProxyError(
    'UNSUPPORTED',
    `${label} shared memory is not supported through triton-proxy: a region lives on the client's host ` +
      'and the Triton servers behind the proxy run on other hosts, so they cannot map it; send tensors ' +
      'in the request body with the binary tensor data extension instead (tritonclient.http does by default)',
  );
}

/**
 * Shared-memory status and registration, answered by the proxy itself and
 * never forwarded: no region can be registered through it, so the status is
 * always an empty list (a named region is unknown, 404, as Triton answers),
 * and register/unregister are refused with 501 UNSUPPORTED saying why.
 * The extensions are not listed in GET /v2.
 */
export function sharedMemoryRoutes(deps: SharedMemoryRoutesDeps): ExpressRouter {
  const router = ExpressRouter();
  const handle =
    (scope: Scope, fn: (req: Request, res: Response, requestId: string) => void) =>
    (req: Request, res: Response): void =>
      runRoute(
        deps,
        scope,
        '',
        req,
        res,
        () => clientOf(res),
        (meta) => Promise.resolve(fn(req, res, meta.requestId)),
      );

  for (const { segment, label } of KINDS) {
    const base = `/v2/${segment}`;
    router.get(
      `${base}/status`,
      handle('read', (_req, res, requestId) => sendJson(res, 200, [], requestId)),
    );
    router.get(
      `${base}/region/:region/status`,
      handle('read', (req) => {
        const region = (req.params as { region: string }).region;
        throw new ProxyError(
          'NOT_FOUND',
          `Unable to find ${label} shared memory region: '${region}'`,
        );
      }),
    );
    const refuse = handle('infer', () => {
      throw sharedMemoryUnsupported(label);
    });
    router.post(`${base}/region/:region/register`, refuse);
    router.post(`${base}/region/:region/unregister`, refuse);
    router.post(`${base}/unregister`, refuse);
    // Other methods on these paths: 405 from the /v2 catch-all (kserve.ts API_PATHS), as Triton answers.
  }
  return router;
}
