import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { ProxyError } from '../errors';
import { ModelGlobs, SCOPES, type Client, type Scope } from './client';

export interface JwtOptions {
  /** JWKS endpoint (fetched and cached by jose, refreshed on unknown key ids). */
  jwksUrl?: string;
  /** JWKS as a local file (read at start). */
  jwksFile?: string;
  issuer?: string;
  audience?: string;
  /** Claim holding the scopes: a space-separated string (RFC 8693 `scope`) or a list. */
  scopesClaim: string;
  /** Claim holding model globs; empty means tokens are not limited by model. */
  modelsClaim: string;
}

/** Three base64url segments: only such bearer values are tried as tokens. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(value: string): boolean {
  return JWT_SHAPE.test(value);
}

function claimList(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (typeof value === 'string') return value.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}

/** Verifies bearer JWTs against a JWKS; the scopes (and optional models) come from claims. */
export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly options: JwtOptions) {
    if (options.jwksUrl) {
      this.keys = createRemoteJWKSet(new URL(options.jwksUrl));
    } else if (options.jwksFile) {
      const jwks = JSON.parse(readFileSync(options.jwksFile, 'utf8')) as JSONWebKeySet;
      this.keys = createLocalJWKSet(jwks);
    } else {
      throw new Error('JWT verification needs JWT_JWKS_URL or JWT_JWKS_FILE');
    }
  }

  async verify(token: string): Promise<Client> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.options.issuer || undefined,
        audience: this.options.audience || undefined,
      }));
    } catch (err) {
      const reason =
        err instanceof joseErrors.JWTExpired
          ? 'token expired'
          : err instanceof joseErrors.JWTClaimValidationFailed
            ? `token claim '${err.claim}' not accepted`
            : 'token not accepted';
      throw new ProxyError('UNAUTHENTICATED', `bearer ${reason}`);
    }
    const scopes = claimList(payload, this.options.scopesClaim).filter((s): s is Scope =>
      (SCOPES as readonly string[]).includes(s),
    );
    const models = this.options.modelsClaim
      ? claimList(payload, this.options.modelsClaim)
      : undefined;
    return {
      name: `jwt:${payload.sub ?? 'unknown'}`,
      // Subjects are unbounded: one label for every token.
      label: 'jwt',
      scopes: new Set(scopes),
      models: models === undefined ? undefined : new ModelGlobs(models),
      quota: {},
      priority: 'normal',
      anonymous: false,
    };
  }
}
