import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { sha256Hex } from '../../../src/access';
import type { FakeTriton } from '../../../src/fake-triton';
import { serversEnv, startFakes } from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  expectGrpcStatus,
  simpleInferRequest,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';
import { KeysFile } from '../front-door/support';

const A = Array.from({ length: 16 }, (_, i) => i);

/** One call of every RPC the front end serves, with the scope it needs. */
const RPCS: ReadonlyArray<[method: string, scope: 'infer' | 'read' | 'admin', request: object]> = [
  ['ModelInfer', 'infer', simpleInferRequest(A, A)],
  ['ServerLive', 'read', {}],
  ['ServerReady', 'read', {}],
  ['ServerMetadata', 'read', {}],
  ['ModelReady', 'read', { name: 'simple', version: '' }],
  ['ModelMetadata', 'read', { name: 'simple', version: '' }],
  ['ModelConfig', 'read', { name: 'simple', version: '' }],
  ['ModelStatistics', 'read', { name: 'simple', version: '' }],
  ['RepositoryIndex', 'read', { repository_name: '', ready: false }],
  ['RepositoryModelLoad', 'admin', { repository_name: '', model_name: 'simple', parameters: {} }],
  [
    'RepositoryModelUnload',
    'admin',
    { repository_name: '', model_name: 'identity_int8', parameters: {} },
  ],
  ['LogSettings', 'admin', { settings: {} }],
  ['TraceSetting', 'admin', { settings: {}, model_name: '' }],
];

describe('gRPC front end: authentication, scopes and model globs from metadata', () => {
  let fake: FakeTriton;
  let keys: KeysFile;
  let p: GrpcTestProxy;
  let client: GrpcTestClient;

  before(async () => {
    [fake] = (await startFakes(1)) as [FakeTriton];
    keys = new KeysFile([
      { name: 'inferer', keySha256: sha256Hex('k-infer'), scopes: ['infer'] },
      { name: 'reader', keySha256: sha256Hex('k-read'), scopes: ['read'] },
      { name: 'operator', key: 'k-admin', scopes: ['admin'] },
      { name: 'team-simple', key: 'k-simple', scopes: ['infer', 'read'], models: ['simp*'] },
      // 3 requests per 3 s window.
      { name: 'metered', key: 'k-metered', scopes: ['infer'], requestsPerSecond: 1, burst: 3 },
      { name: 'bytes', key: 'k-bytes', scopes: ['infer'], bytesPerSecond: 400 },
    ]);
    p = await startGrpcTestProxy({ TRITON_SERVERS: serversEnv([fake]), AUTH_KEYS_FILE: keys.path });
    client = new GrpcTestClient(p.grpcAddress);
  });
  after(async () => {
    client.close();
    await p.close();
    await fake.stop();
    keys.remove();
  });

  it('answers UNAUTHENTICATED without a key, for every RPC', async () => {
    for (const [method, , request] of RPCS) {
      const e = await expectGrpcStatus(client.call(method, request), status.UNAUTHENTICATED);
      assert.match(e.details, /missing API key/, method);
    }
    assert.equal(fake.callCount('ModelInfer'), 0);
  });

  it('answers PERMISSION_DENIED for a key nobody has', async () => {
    await expectGrpcStatus(
      client.call('ModelInfer', simpleInferRequest(A, A), {
        metadata: { authorization: 'Bearer nope' },
      }),
      status.PERMISSION_DENIED,
    );
  });

  for (const [key, scope] of [
    ['k-infer', 'infer'],
    ['k-read', 'read'],
    ['k-admin', 'admin'],
  ] as const) {
    it(`lets a client with only '${scope}' call exactly the RPCs that need it`, async () => {
      for (const [method, needs, request] of RPCS) {
        // Both ways of sending a key: authorization: Bearer and x-api-key.
        const metadata: Record<string, string> =
          method.length % 2 === 0 ? { authorization: `Bearer ${key}` } : { 'x-api-key': key };
        if (needs === scope) {
          await client.call(method, request, { metadata });
        } else {
          const e = await expectGrpcStatus(
            client.call(method, request, { metadata }),
            status.PERMISSION_DENIED,
          );
          assert.match(e.details, new RegExp(`lacks the '${needs}' scope`), method);
        }
      }
    });
  }

  it('keeps a client to its model globs, in inference, metadata and the index', async () => {
    const metadata = { 'x-api-key': 'k-simple' };
    await client.call('ModelInfer', simpleInferRequest(A, A), { metadata });
    const e = await expectGrpcStatus(
      client.call(
        'ModelInfer',
        {
          model_name: 'identity',
          inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1] }],
          raw_input_contents: [Buffer.alloc(4)],
        },
        { metadata },
      ),
      status.PERMISSION_DENIED,
    );
    assert.match(e.details, /may not use model 'identity'/);
    await expectGrpcStatus(
      client.call('ModelMetadata', { name: 'identity', version: '' }, { metadata }),
      status.PERMISSION_DENIED,
    );
    const index = await client.call<{ models: Array<{ name: string }> }>(
      'RepositoryIndex',
      { repository_name: '', ready: false },
      { metadata },
    );
    assert.ok(index.models.length > 0);
    assert.ok(index.models.every((m) => m.name.startsWith('simp')));
    const stats = await client.call<{ model_stats: Array<{ name: string }> }>(
      'ModelStatistics',
      { name: '', version: '' },
      { metadata },
    );
    assert.ok(stats.model_stats.every((m) => m.name.startsWith('simp')));
  });

  it('refuses file: load parameters unless model file overrides are on', async () => {
    const e = await expectGrpcStatus(
      client.call(
        'RepositoryModelLoad',
        {
          repository_name: '',
          model_name: 'simple',
          parameters: { 'file:1/model.py': { bytes_param: Buffer.from('x') } },
        },
        { metadata: { 'x-api-key': 'k-admin' } },
      ),
      status.PERMISSION_DENIED,
    );
    assert.match(e.details, /MODEL_FILE_OVERRIDES/);
  });

  it('spends the client quota per call and answers RESOURCE_EXHAUSTED with a pushback beyond it', async () => {
    const metadata = { 'x-api-key': 'k-metered' };
    const ok = await client.inferBytes(client.encode('ModelInfer', simpleInferRequest(A, A)), {
      metadata,
    });
    assert.deepEqual(ok.headers.get('ratelimit-policy'), ['"requests";q=3;w=3']);
    await client.call('ModelInfer', simpleInferRequest(A, A), { metadata });
    await client.call('ModelInfer', simpleInferRequest(A, A), { metadata });
    const e = await expectGrpcStatus(
      client.call('ModelInfer', simpleInferRequest(A, A), { metadata }),
      status.RESOURCE_EXHAUSTED,
    );
    assert.deepEqual(e.metadata.get('x-proxy-error-code'), ['RATE_LIMITED']);
    assert.ok(Number(e.metadata.get('grpc-retry-pushback-ms')[0]) >= 1000);
  });

  it('counts ModelInfer message bytes against a byte quota', async () => {
    const message = client.encode('ModelInfer', simpleInferRequest(A, A));
    const metadata = { 'x-api-key': 'k-bytes' };
    // Messages of about 190 bytes against 400 bytes a second: the third within a second passes it.
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) {
      codes.push(
        await client.inferBytes(message, { metadata }).then(
          () => 0,
          (e: { code: number }) => e.code,
        ),
      );
    }
    assert.ok(message.length > 134 && message.length <= 200, `message of ${message.length} bytes`);
    assert.deepEqual(codes, [0, 0, status.RESOURCE_EXHAUSTED]);
  });

  it('labels gRPC calls with the client', async () => {
    await client.call('ServerMetadata', {}, { metadata: { 'x-api-key': 'k-read' } });
    const text = await (await fetch(`${p.url}/metrics`)).text();
    assert.match(
      text,
      /triton_proxy_grpc_request_duration_seconds_count\{method="ServerMetadata",code="OK",client="reader"\} [1-9]/,
    );
    assert.match(
      text,
      /triton_proxy_grpc_request_duration_seconds_count\{method="ModelInfer",code="UNAUTHENTICATED",client="none"\} [1-9]/,
    );
  });
});

describe('gRPC front end without any key configured', () => {
  it('closes repository control to anonymous callers, as REST does', async () => {
    const [fake] = (await startFakes(1)) as [FakeTriton];
    const p = await startGrpcTestProxy({ TRITON_SERVERS: serversEnv([fake]) });
    const client = new GrpcTestClient(p.grpcAddress);
    try {
      await client.call('ModelInfer', simpleInferRequest(A, A));
      const e = await expectGrpcStatus(
        client.call('RepositoryModelUnload', {
          repository_name: '',
          model_name: 'simple',
          parameters: {},
        }),
        status.PERMISSION_DENIED,
      );
      assert.match(e.details, /ALLOW_UNAUTHENTICATED_ADMIN/);
    } finally {
      client.close();
      await p.close();
      await fake.stop();
    }
  });
});
