import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { AccessControl, Client, Credentials } from '../access';
import { toProxyError } from '../errors';
import { requestIdOf } from './context';
import { sendError } from './send';

/** Credentials as HTTP carries them: `Authorization: Bearer <key>` or `X-API-Key`. */
export function credentialsOf(req: IncomingMessage): Credentials {
  const header = req.headers.authorization;
  const apiKey = req.headers['x-api-key'];
  return {
    bearer: header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined,
    apiKey: Array.isArray(apiKey) ? apiKey[0] : apiKey,
  };
}

/** The client the authentication step established; only set on authenticated requests. */
export function clientOf(res: Response): Client {
  const client = (res.locals as { client?: Client }).client;
  if (client === undefined) throw new Error('route reached without authentication');
  return client;
}

/** Metric label of the request's client, or `none` when it was refused before knowing one. */
export function clientLabelOf(res: Response): string {
  return (res.locals as { client?: Client }).client?.label ?? 'none';
}

/**
 * The authentication step of the chain: before any route reads a body, the
 * request gets its Client or is answered 401/403 here.
 */
export function authenticateRequests(access: AccessControl) {
  return (req: Request, res: Response, next: NextFunction): void => {
    access.authenticate(credentialsOf(req)).then(
      (client) => {
        (res.locals as { client?: Client }).client = client;
        next();
      },
      (err: unknown) => sendError(res, toProxyError(err), requestIdOf(req)),
    );
  };
}
