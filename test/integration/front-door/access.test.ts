import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { sha256Hex } from '../../../src/access';
import { ConfigError } from '../../../src/config';
import {
  httpRequest,
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  waitFor,
  type HttpAnswer,
  type TestProxy,
} from '../../helpers/proxy-harness';
import type { FakeTriton } from '../../../src/fake-triton';
import { bearer, KeysFile } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);
const INFER_BODY = JSON.stringify(simpleRequest(A, A));

interface RouteCase {
  family: string;
  scope: 'infer' | 'read' | 'admin';
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

/** One request of every route family of the API, with the scope it needs. */
const ROUTES: readonly RouteCase[] = [
  {
    family: 'infer',
    scope: 'infer',
    method: 'POST',
    path: '/v2/models/simple/infer',
    body: INFER_BODY,
  },
  {
    family: 'infer (versioned)',
    scope: 'infer',
    method: 'POST',
    path: '/v2/models/simple/versions/1/infer',
    body: INFER_BODY,
  },
  { family: 'server metadata', scope: 'read', method: 'GET', path: '/v2' },
  { family: 'server live', scope: 'read', method: 'GET', path: '/v2/health/live' },
  { family: 'server ready', scope: 'read', method: 'GET', path: '/v2/health/ready' },
  { family: 'model metadata', scope: 'read', method: 'GET', path: '/v2/models/simple' },
  { family: 'model ready', scope: 'read', method: 'GET', path: '/v2/models/simple/ready' },
  { family: 'model config', scope: 'read', method: 'GET', path: '/v2/models/simple/config' },
  { family: 'model stats', scope: 'read', method: 'GET', path: '/v2/models/simple/stats' },
  { family: 'all stats', scope: 'read', method: 'GET', path: '/v2/models/stats' },
  {
    family: 'repository index',
    scope: 'read',
    method: 'POST',
    path: '/v2/repository/index',
    body: '{}',
  },
  {
    family: 'model load',
    scope: 'admin',
    method: 'POST',
    path: '/v2/repository/models/simple/load',
    body: '{}',
  },
  {
    family: 'model unload',
    scope: 'admin',
    method: 'POST',
    path: '/v2/repository/models/identity_int8/unload',
    body: '{}',
  },
  { family: 'log settings', scope: 'admin', method: 'GET', path: '/v2/logging' },
  {
    family: 'log settings update',
    scope: 'admin',
    method: 'POST',
    path: '/v2/logging',
    body: '{"log_verbose_level":0}',
  },
  { family: 'trace settings', scope: 'admin', method: 'GET', path: '/v2/trace/setting' },
  {
    family: 'model trace settings update',
    scope: 'admin',
    method: 'POST',
    path: '/v2/models/simple/trace/setting',
    body: '{"trace_rate":"1000"}',
  },
  {
    family: 'shared memory status',
    scope: 'read',
    method: 'GET',
    path: '/v2/systemsharedmemory/status',
  },
];

function call(
  url: string,
  route: RouteCase,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return httpRequest(`${url}${route.path}`, {
    method: route.method,
    headers:
      route.body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: route.body,
  });
}

describe('front door: clients, scopes and secure defaults', function () {
  let fakes: FakeTriton[];

  before(async () => {
    fakes = await startFakes(2);
  });
  after(async () => {
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
  });

  describe('with a keys file', () => {
    let keys: KeysFile;
    let proxy: TestProxy;

    before(async () => {
      keys = new KeysFile([
        { name: 'inferer', keySha256: sha256Hex('k-infer'), scopes: ['infer'] },
        { name: 'reader', keySha256: sha256Hex('k-read'), scopes: ['read'] },
        { name: 'operator', keySha256: sha256Hex('k-admin'), scopes: ['admin'] },
        { name: 'everything', key: 'k-all', scopes: ['infer', 'read', 'admin'] },
        { name: 'team-simple', key: 'k-simple', scopes: ['infer', 'read'], models: ['simp*'] },
      ]);
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        AUTH_KEYS_FILE: keys.path,
        AUTH_KEYS_RELOAD_INTERVAL_MS: '50',
        API_KEYS: 'legacy-key',
      });
    });
    after(async () => {
      await proxy.close();
      keys.remove();
      // The matrix unloads it through the proxy.
      for (const f of fakes) f.loadModel('identity_int8');
    });

    it('answers every route family 403 FORBIDDEN to a key without its scope, and serves it with the scope', async () => {
      const clients: Array<[string, ReadonlySet<string>]> = [
        ['k-infer', new Set(['infer'])],
        ['k-read', new Set(['read'])],
        ['k-admin', new Set(['admin'])],
        ['k-all', new Set(['infer', 'read', 'admin'])],
        ['legacy-key', new Set(['infer', 'read'])],
      ];
      for (const route of ROUTES) {
        for (const [key, scopes] of clients) {
          const answer = await call(proxy.url, route, bearer(key));
          const what = `${route.family} with ${key}: ${answer.status} ${answer.text}`;
          if (scopes.has(route.scope)) {
            assert.ok(answer.status !== 401 && answer.status !== 403, what);
            assert.ok(answer.status < 500, what);
          } else {
            assert.equal(answer.status, 403, what);
            assert.equal(answer.json.code, 'FORBIDDEN', what);
            assert.match(
              String(answer.json.error),
              new RegExp(`lacks the '${route.scope}' scope`),
              what,
            );
          }
        }
      }
    });

    it('answers 401 UNAUTHENTICATED without a key on every route family, before Triton is asked', async () => {
      for (const f of fakes) f.resetCounters();
      for (const route of ROUTES) {
        const answer = await call(proxy.url, route, { 'x-request-id': 'anon-1' });
        assert.equal(answer.status, 401, route.family);
        assert.equal(answer.json.code, 'UNAUTHENTICATED');
        assert.equal(answer.json.request_id, 'anon-1');
      }
      assert.equal(fakes[0]!.callCount('ModelInfer') + fakes[1]!.callCount('ModelInfer'), 0);
    });

    it('accepts the key as X-API-Key too, and refuses an unknown key with 403', async () => {
      const ok = await call(proxy.url, ROUTES[0]!, { 'x-api-key': 'k-infer' });
      assert.equal(ok.status, 200, ok.text);
      const unknown = await call(proxy.url, ROUTES[0]!, { 'x-api-key': 'k-inferX' });
      assert.equal(unknown.status, 403);
      assert.equal(unknown.json.error, 'API key not accepted');
    });

    it('limits a client to the models its globs name, in inference, metadata, index and statistics', async () => {
      const key = bearer('k-simple');
      assert.equal((await call(proxy.url, ROUTES[0]!, key)).status, 200);
      const other = await httpRequest(`${proxy.url}/v2/models/identity_int8/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...key },
        body: JSON.stringify({
          inputs: [{ name: 'INPUT0', datatype: 'INT8', shape: [1, 1], data: [1] }],
        }),
      });
      assert.equal(other.status, 403);
      assert.match(String(other.json.error), /may not use model 'identity_int8'/);
      const meta = await httpRequest(`${proxy.url}/v2/models/identity_int8`, { headers: key });
      assert.equal(meta.status, 403);

      const index = await httpRequest(`${proxy.url}/v2/repository/index`, {
        method: 'POST',
        headers: key,
        body: '{}',
      });
      assert.equal(index.status, 200);
      const names = new Set((JSON.parse(index.text) as Array<{ name: string }>).map((e) => e.name));
      assert.deepEqual([...names], ['simple']);
      const fullIndex = JSON.parse(
        (
          await httpRequest(`${proxy.url}/v2/repository/index`, {
            method: 'POST',
            headers: bearer('k-read'),
            body: '{}',
          })
        ).text,
      ) as unknown[];
      assert.ok(fullIndex.length > 1, 'an unrestricted reader sees every model');

      const stats = await httpRequest(`${proxy.url}/v2/models/stats`, { headers: key });
      const statNames = (stats.json.model_stats as Array<{ name: string }>).map((s) => s.name);
      assert.ok(
        statNames.length > 0 && statNames.every((n) => n.startsWith('simp')),
        statNames.join(),
      );
    });

    it('labels request metrics with the client name from the file, never with what a request sent', async () => {
      await call(proxy.url, ROUTES[0]!, bearer('k-infer'));
      await call(proxy.url, ROUTES[0]!, bearer('not-a-key-but-a-label-attempt'));
      const text = await (await fetch(`${proxy.url}/metrics`)).text();
      assert.match(text, /triton_proxy_http_request_duration_seconds_count\{[^}]*client="inferer"/);
      assert.match(text, /client="none"/);
      assert.doesNotMatch(text, /label-attempt/);
    });

    it('takes a rewritten keys file without restart: the new key works and the old one stops', async () => {
      const rotated = [
        { name: 'inferer', keySha256: sha256Hex('k-infer-2'), scopes: ['infer'] },
        { name: 'everything', key: 'k-all', scopes: ['infer', 'read', 'admin'] },
      ];
      keys.write(rotated);
      await waitFor(
        async () => (await call(proxy.url, ROUTES[0]!, bearer('k-infer-2'))).status === 200,
        5000,
        'the rotated key to be accepted',
      );
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer('k-infer'))).status, 403);
      assert.equal(
        (await call(proxy.url, ROUTES[2]!, bearer('k-read'))).status,
        403,
        'removed client',
      );

      // A half-written file keeps the clients in force, and says so in a metric.
      keys.writeText('clients: [ {name: broken');
      await waitFor(
        async () =>
          /triton_proxy_auth_keys_reloads_total\{result="error"\} 1/.test(
            await (await fetch(`${proxy.url}/metrics`)).text(),
          ),
        5000,
        'the failed reload to be counted',
      );
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer('k-infer-2'))).status, 200);
    });
  });

  describe('without any key configured', () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes) });
    });
    after(async () => {
      await proxy.close();
    });

    it('keeps inference and read routes open, as Triton does', async () => {
      for (const route of ROUTES.filter((r) => r.scope !== 'admin')) {
        const answer = await call(proxy.url, route);
        assert.equal(answer.status, 200, `${route.family}: ${answer.text}`);
      }
    });

    it('closes repository load and unload with 403 and says how to open them', async () => {
      for (const f of fakes) f.resetCounters();
      for (const route of ROUTES.filter((r) => r.scope === 'admin')) {
        const answer = await call(proxy.url, route);
        assert.equal(answer.status, 403, route.family);
        assert.equal(answer.json.code, 'FORBIDDEN');
        assert.match(String(answer.json.error), /ALLOW_UNAUTHENTICATED_ADMIN=true/);
      }
      for (const f of fakes) {
        assert.equal(f.callCount('RepositoryModelLoad') + f.callCount('RepositoryModelUnload'), 0);
      }
    });
  });

  describe('model file overrides and unload targets', () => {
    const fileLoad = JSON.stringify({
      parameters: {
        config: '{}',
        'file:1/model.onnx': Buffer.from('not a model').toString('base64'),
      },
    });
    const loadFile = (url: string, headers: Record<string, string> = {}) =>
      httpRequest(`${url}/v2/repository/models/simple/load`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: fileLoad,
      });

    it('refuses file: load parameters while MODEL_FILE_OVERRIDES is off, even to an open admin', async () => {
      const proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        ALLOW_UNAUTHENTICATED_ADMIN: 'true',
      });
      try {
        for (const f of fakes) f.resetCounters();
        const answer = await loadFile(proxy.url);
        assert.equal(answer.status, 403);
        assert.match(String(answer.json.error), /'file:1\/model.onnx'.*MODEL_FILE_OVERRIDES=true/);
        assert.equal(
          fakes[0]!.callCount('RepositoryModelLoad') + fakes[1]!.callCount('RepositoryModelLoad'),
          0,
        );
        const plain = await httpRequest(`${proxy.url}/v2/repository/models/simple/load`, {
          method: 'POST',
          body: '{}',
        });
        assert.equal(plain.status, 200, 'the open switch lets a plain load through');
      } finally {
        await proxy.close();
      }
    });

    it('lets file: load parameters through only with MODEL_FILE_OVERRIDES and the admin scope', async () => {
      const keys = new KeysFile([
        { name: 'ops', key: 'k-ops', scopes: ['admin'] },
        { name: 'app', key: 'k-app', scopes: ['infer', 'read'] },
      ]);
      const proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        AUTH_KEYS_FILE: keys.path,
        MODEL_FILE_OVERRIDES: 'true',
      });
      try {
        assert.equal((await loadFile(proxy.url, bearer('k-app'))).status, 403);
        const ok = await loadFile(proxy.url, bearer('k-ops'));
        assert.equal(ok.status, 200, ok.text);
      } finally {
        await proxy.close();
        keys.remove();
      }
    });

    it('unloads only from servers that have the model, and answers 200 touching none for an unknown one', async () => {
      fakes[1]!.unloadModel('identity_int16');
      const proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        ALLOW_UNAUTHENTICATED_ADMIN: 'true',
      });
      try {
        await waitFor(
          () => proxy.proxy.state.snapshot().readyServers('identity_int16').length === 1,
          5000,
          'the state to show identity_int16 on one server',
        );
        for (const f of fakes) f.resetCounters();
        const answer = await httpRequest(
          `${proxy.url}/v2/repository/models/identity_int16/unload`,
          {
            method: 'POST',
            body: '{}',
          },
        );
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.headers.get('x-triton-server'), 't0');
        assert.equal(fakes[0]!.callCount('RepositoryModelUnload'), 1);
        assert.equal(fakes[1]!.callCount('RepositoryModelUnload'), 0);

        const unknown = await httpRequest(
          `${proxy.url}/v2/repository/models/no_such_model/unload`,
          {
            method: 'POST',
            body: '{}',
          },
        );
        assert.equal(unknown.status, 200);
        assert.equal(
          fakes[0]!.callCount('RepositoryModelUnload') +
            fakes[1]!.callCount('RepositoryModelUnload'),
          1,
        );
      } finally {
        await proxy.close();
        fakes[0]!.loadModel('identity_int16');
        fakes[1]!.loadModel('identity_int16');
      }
    });
  });

  describe('JWT bearer tokens', () => {
    let proxy: TestProxy;
    let sign: (claims: Record<string, unknown>, expiresIn?: string) => Promise<string>;
    let keys: KeysFile;
    let signingKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

    before(async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      signingKey = privateKey;
      keys = new KeysFile([]);
      const jwksFile = join(keys.dir, 'jwks.json');
      writeFileSync(
        jwksFile,
        JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
      );
      sign = (claims, expiresIn = '5m') =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer('https://issuer.test')
          .setAudience('triton-proxy')
          .setSubject('svc-a')
          .setIssuedAt()
          .setExpirationTime(expiresIn)
          .sign(privateKey);
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        JWT_JWKS_FILE: jwksFile,
        JWT_ISSUER: 'https://issuer.test',
        JWT_AUDIENCE: 'triton-proxy',
        JWT_MODELS_CLAIM: 'models',
      });
    });
    after(async () => {
      await proxy.close();
      keys.remove();
    });

    it('takes scopes and model globs from the token claims', async () => {
      const token = await sign({ scope: 'infer read', models: ['simple'] });
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer(token))).status, 200);
      const load = await call(
        proxy.url,
        ROUTES.find((r) => r.scope === 'admin')!,
        bearer(token),
      );
      assert.equal(load.status, 403);
      const other = await httpRequest(`${proxy.url}/v2/models/identity_int8`, {
        headers: bearer(token),
      });
      assert.equal(other.status, 403);
    });

    it('answers 401 for an expired token, a wrong audience, or a forged signature', async () => {
      const expired = await sign({ scope: 'infer' }, '-1m');
      const answer = await call(proxy.url, ROUTES[0]!, bearer(expired));
      assert.equal(answer.status, 401);
      assert.match(String(answer.json.error), /expired/);
      const wrongAudience = await new SignJWT({ scope: 'infer' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://issuer.test')
        .setAudience('another-service')
        .setExpirationTime('5m')
        .sign(signingKey);
      const audience = await call(proxy.url, ROUTES[0]!, bearer(wrongAudience));
      assert.equal(audience.status, 401);
      assert.match(String(audience.json.error), /'aud'/);
      const { privateKey: otherKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT({ scope: 'infer admin' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://issuer.test')
        .setAudience('triton-proxy')
        .setExpirationTime('5m')
        .sign(otherKey);
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer(forged))).status, 401);
    });
  });

  describe('with inference and admin keys in two files', () => {
    let inference: KeysFile;
    let admin: KeysFile;
    let proxy: TestProxy;

    before(async () => {
      inference = new KeysFile([{ name: 'inferer', key: 'k-infer', scopes: ['infer', 'read'] }]);
      admin = new KeysFile([{ name: 'operator', key: 'k-admin', scopes: ['admin'] }]);
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        AUTH_KEYS_FILE: `${inference.path}, ${admin.path}`,
        AUTH_KEYS_RELOAD_INTERVAL_MS: '50',
      });
    });
    after(async () => {
      await proxy.close();
      inference.remove();
      admin.remove();
    });

    it('merges the clients of every file and reloads each file on its own', async () => {
      const load = ROUTES.find((r) => r.family === 'model load')!;
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer('k-infer'))).status, 200);
      assert.equal((await call(proxy.url, load, bearer('k-infer'))).status, 403);
      assert.equal((await call(proxy.url, load, bearer('k-admin'))).status, 200);
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer('k-admin'))).status, 403);

      admin.write([{ name: 'operator', key: 'k-admin-2', scopes: ['admin'] }]);
      await waitFor(
        async () => (await call(proxy.url, load, bearer('k-admin-2'))).status === 200,
        5000,
        'the rotated admin key to be accepted',
      );
      assert.equal((await call(proxy.url, load, bearer('k-admin'))).status, 403);
      assert.equal((await call(proxy.url, ROUTES[0]!, bearer('k-infer'))).status, 200);
    });
  });

  it('refuses to start when two keys files name the same client, naming both files', async () => {
    const a = new KeysFile([{ name: 'twice', key: 'k-1', scopes: ['infer'] }]);
    const b = new KeysFile([{ name: 'twice', key: 'k-2', scopes: ['admin'] }]);
    try {
      await assert.rejects(
        startTestProxy({
          TRITON_SERVERS: serversEnv(fakes),
          AUTH_KEYS_FILE: `${a.path},${b.path}`,
        }),
        (err: Error) =>
          err instanceof ConfigError &&
          err.message.includes(a.path) &&
          err.message.includes(b.path),
      );
    } finally {
      a.remove();
      b.remove();
    }
  });

  it('refuses to start with a keys file it cannot read, naming the setting', async () => {
    await assert.rejects(
      startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        AUTH_KEYS_FILE: '/nonexistent/keys.yaml',
      }),
      (err: Error) => err instanceof ConfigError && /AUTH_KEYS_FILE/.test(err.message),
    );
  });
});
