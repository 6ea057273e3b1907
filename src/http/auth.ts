import type { NextFunction, Request, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { ProxyError } from '../errors';
import { requestIdOf } from './context';
import { sendError } from './send';

/**
 * Optional API-key check for the /v2 API: `Authorization: Bearer <key>` or
 * `X-API-Key: <key>`. Missing -> 401, wrong -> 403. Probes and /metrics stay open.
 */
export function apiKeyAuth(keys: readonly string[]) {
  const accepted = keys.map((k) => Buffer.from(k));
  const matches = (given: string): boolean => {
    const g = Buffer.from(given);
    return accepted.some((k) => k.length === g.length && timingSafeEqual(k, g));
  };
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization');
    const given = header?.startsWith('Bearer ') ? header.slice(7) : req.get('x-api-key');
    if (given === undefined || given === '') {
      sendError(
        res,
        new ProxyError(
          'UNAUTHENTICATED',
          'missing API key (Authorization: Bearer <key> or X-API-Key)',
        ),
        requestIdOf(req),
      );
      return;
    }
    if (!matches(given)) {
      sendError(res, new ProxyError('FORBIDDEN', 'API key not accepted'), requestIdOf(req));
      return;
    }
    next();
  };
}
