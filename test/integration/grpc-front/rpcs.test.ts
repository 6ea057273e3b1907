import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { status } from '@grpc/grpc-js';
import { startFakes, startTestProxy, serversEnv, waitFor } from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  expectGrpcStatus,
  int32Bytes,
  int32sOf,
  simpleInferRequest,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';
import type { FakeTriton } from '../../../src/fake-triton';
import { TRITON_EXTENSIONS } from '../../../src/protocol';

const A = Array.from({ length: 16 }, (_, i) => i);
const B = Array.from({ length: 16 }, () => 1);

describe('gRPC front end: every RPC against a fake Triton', () => {
  let fake: FakeTriton;
  let p: GrpcTestProxy;
  let viaProxy: GrpcTestClient;
  let direct: GrpcTestClient;

  before(async () => {
    [fake] = (await startFakes(1)) as [FakeTriton];
    p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv([fake]),
      ALLOW_UNAUTHENTICATED_ADMIN: 'true',
    });
    viaProxy = new GrpcTestClient(p.grpcAddress);
    direct = new GrpcTestClient(fake.address);
  });
  after(async () => {
    viaProxy.close();
    direct.close();
    await p.close();
    await fake.stop();
  });

  it('listens on GRPC_PORT next to the HTTP port', () => {
    assert.ok(p.proxy.grpcPort() > 0);
    assert.notEqual(p.proxy.grpcPort(), p.proxy.port());
  });

  for (const [method, request] of [
    ['ServerLive', {}],
    ['ServerReady', {}],
    ['ServerMetadata', {}],
    ['ModelReady', { name: 'simple', version: '' }],
    ['ModelMetadata', { name: 'simple', version: '' }],
    ['ModelMetadata', { name: 'simple', version: '1' }],
    ['ModelConfig', { name: 'simple', version: '' }],
    ['RepositoryIndex', { repository_name: '', ready: false }],
    ['RepositoryIndex', { repository_name: '', ready: true }],
  ] as const) {
    it(`${method} ${JSON.stringify(request)} answers what the server answers`, async () => {
      const [ours, theirs] = await Promise.all([
        viaProxy.call(method, request),
        direct.call(method, request),
      ]);
      if (method === 'RepositoryIndex') {
        // The fleet's merged index lists what the server lists (order by name, version).
        const key = (m: Record<string, string>) => `${m.name}/${m.version}/${m.state}`;
        const sort = (r: Record<string, unknown>) =>
          (r.models as Array<Record<string, string>>).map(key).sort();
        assert.deepEqual(sort(ours), sort(theirs));
      } else {
        assert.deepEqual(ours, theirs);
      }
    });
  }

  it('ModelStatistics answers with the server statistics of the model', async () => {
    await viaProxy.call('ModelInfer', simpleInferRequest(A, B));
    const ours = await viaProxy.call<{ model_stats: Array<Record<string, unknown>> }>(
      'ModelStatistics',
      { name: 'simple', version: '' },
    );
    const theirs = await direct.call<{ model_stats: Array<Record<string, unknown>> }>(
      'ModelStatistics',
      { name: 'simple', version: '' },
    );
    assert.deepEqual(ours, theirs);
    assert.ok(Number(ours.model_stats[0]!.inference_count) >= 1);
  });

  it('ModelInfer forwards the client message unchanged and returns the server answer', async () => {
    // Typed contents: a transcoding proxy would turn them into raw bytes.
    const request = {
      model_name: 'simple',
      id: 'typed-1',
      inputs: [
        { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], contents: { int_contents: A } },
        { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], contents: { int_contents: B } },
      ],
    };
    const bytes = viaProxy.encode('ModelInfer', request);
    const ours = await viaProxy.inferBytes(bytes);
    const received = fake.lastRequest!.request;
    assert.deepEqual(
      received.inputs.map((i) => i.contents?.int_contents),
      [A, B],
      'the server received typed contents, as the client sent them',
    );
    assert.deepEqual(received.raw_input_contents, []);
    const theirs = await direct.inferBytes(bytes);
    assert.deepEqual(ours.value, theirs.value, 'byte-identical answer');
    const decoded = viaProxy.decodeResponse<{
      id: string;
      raw_output_contents: Buffer[];
    }>('ModelInfer', ours.value);
    assert.equal(decoded.id, 'typed-1');
    assert.deepEqual(
      int32sOf(decoded.raw_output_contents[0]!),
      A.map((a) => a + 1),
    );
  });

  it('accepts x-request-id, sends it to Triton and returns it in the response metadata', async () => {
    const answer = await viaProxy.inferBytes(
      viaProxy.encode('ModelInfer', simpleInferRequest(A, B)),
      { metadata: { 'x-request-id': 'grpc-req-42' } },
    );
    assert.deepEqual(answer.headers.get('x-request-id'), ['grpc-req-42']);
    assert.deepEqual(fake.lastRequest!.metadata.get('x-request-id'), ['grpc-req-42']);
  });

  it('LogSettings reads one server and changes the fleet, answering as Triton does', async () => {
    type Answer = { settings: Record<string, Record<string, unknown>> };
    const read = await viaProxy.call<Answer>('LogSettings', { settings: {} });
    assert.deepEqual(read, await direct.call<Answer>('LogSettings', { settings: {} }));
    const changed = await viaProxy.callWithHeaders('LogSettings', {
      settings: { log_verbose_level: { uint32_param: 3 } },
    });
    assert.deepEqual(changed.headers.get('x-triton-server'), ['t0']);
    assert.equal(fake.logSettings().log_verbose_level, 3);
    await expectGrpcStatus(
      viaProxy.call('LogSettings', { settings: { log_info: { string_param: 'yes' } } }),
      status.INVALID_ARGUMENT,
    );
    fake.resetSettings();
  });

  it("TraceSetting changes a model's trace settings on the server that has it", async () => {
    type Answer = { settings: Record<string, { value: string[] }> };
    const set = await viaProxy.call<Answer>('TraceSetting', {
      model_name: 'simple',
      settings: { trace_rate: { value: ['9'] } },
    });
    assert.deepEqual(set.settings.trace_rate!.value, ['9']);
    assert.deepEqual(fake.traceSettings('simple').trace_rate, ['9']);
    assert.deepEqual(fake.traceSettings().trace_rate, ['1000']);
    fake.resetSettings();
  });

  it('makes a request id when the client sends none', async () => {
    const answer = await viaProxy.callWithHeaders('ServerMetadata', {});
    assert.match(String(answer.headers.get('x-request-id')[0]), /^[0-9a-f-]{36}$/);
  });

  it('loads and unloads through the proxy and says which server did it', async () => {
    const unload = await viaProxy.callWithHeaders('RepositoryModelUnload', {
      repository_name: '',
      model_name: 'identity',
      parameters: {},
    });
    assert.deepEqual(unload.headers.get('x-triton-server'), ['t0']);
    assert.equal(fake.modelStates('identity')!['1']!.state, 'UNAVAILABLE');
    await expectGrpcStatus(
      viaProxy.call('ModelInfer', {
        model_name: 'identity',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1] }],
        raw_input_contents: [Buffer.alloc(4)],
      }),
      status.NOT_FOUND,
    );
    const load = await viaProxy.callWithHeaders('RepositoryModelLoad', {
      repository_name: '',
      model_name: 'identity',
      parameters: { config: { string_param: '{"max_batch_size": 0}' } },
    });
    assert.deepEqual(load.headers.get('x-triton-server'), ['t0']);
    assert.equal(fake.modelStates('identity')!['1']!.state, 'READY');
    const ok = await viaProxy.call<{ outputs: unknown[] }>('ModelInfer', {
      model_name: 'identity',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1] }],
      raw_input_contents: [Buffer.alloc(4)],
    });
    assert.equal(ok.outputs.length, 1);
  });

  describe('errors carry the status and message the server gives', () => {
    const cases: Array<[string, string, object]> = [
      ['ModelMetadata of an unknown model', 'ModelMetadata', { name: 'nope', version: '' }],
      ['ModelConfig of an unknown model', 'ModelConfig', { name: 'nope', version: '' }],
      [
        'ModelInfer with a wrong shape',
        'ModelInfer',
        {
          model_name: 'simple',
          inputs: [
            { name: 'INPUT0', datatype: 'INT32', shape: [1, 8] },
            { name: 'INPUT1', datatype: 'INT32', shape: [1, 16] },
          ],
          raw_input_contents: [int32Bytes(A.slice(0, 8)), int32Bytes(B)],
        },
      ],
      [
        'ModelInfer with a wrong datatype',
        'ModelInfer',
        simpleInferRequest(A, B, {
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [1, 16] },
            { name: 'INPUT1', datatype: 'INT32', shape: [1, 16] },
          ],
        }),
      ],
      [
        'ModelInfer of an unknown model',
        'ModelInfer',
        simpleInferRequest(A, B, { model_name: 'nope' }),
      ],
      [
        'ModelInfer with a version that is not a number',
        'ModelInfer',
        simpleInferRequest(A, B, { model_version: 'abc' }),
      ],
    ];
    for (const [what, method, request] of cases) {
      it(what, async () => {
        const theirs = await direct.call(method, request).then(
          () => assert.fail('the server accepted it'),
          (e: { code: number; details: string }) => e,
        );
        const ours = await expectGrpcStatus(viaProxy.call(method, request), theirs.code);
        assert.equal(ours.details, theirs.details);
        assert.ok(ours.metadata.get('x-request-id').length === 1);
      });
    }
  });

  it('answers ModelReady false for an unknown model or version, as Triton does', async () => {
    assert.deepEqual(await viaProxy.call('ModelReady', { name: 'nope', version: '' }), {
      ready: false,
    });
    assert.deepEqual(await viaProxy.call('ModelReady', { name: 'simple', version: '9' }), {
      ready: false,
    });
  });

  it('answers INVALID_ARGUMENT naming the problem for bytes that are not a ModelInferRequest', async () => {
    const e = await expectGrpcStatus(
      viaProxy.inferBytes(Buffer.from([0x0a, 0x7f, 0x61])),
      status.INVALID_ARGUMENT,
    );
    assert.match(e.details, /malformed ModelInferRequest: .*runs past the end/);
    assert.deepEqual(e.metadata.get('x-proxy-error-code'), ['INVALID_REQUEST']);
  });

  it('records gRPC calls with a protocol label and per method', async () => {
    await viaProxy.call('ModelInfer', simpleInferRequest(A, B));
    const text = await (await fetch(`${p.url}/metrics`)).text();
    assert.match(
      text,
      /triton_proxy_request_duration_seconds_count\{model="simple",route="infer",outcome="ok",protocol="grpc"\} [1-9]/,
    );
    assert.match(
      text,
      /triton_proxy_grpc_request_duration_seconds_count\{method="ModelInfer",code="OK",client="anonymous"\} [1-9]/,
    );
    assert.match(
      text,
      /triton_proxy_grpc_request_duration_seconds_count\{method="ModelInfer",code="INVALID_ARGUMENT",client="anonymous"\} [1-9]/,
    );
  });

  it('offers clients the large HTTP/2 flow-control window the upstream channels use', async () => {
    const session = connect(`http://${p.grpcAddress}`);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      // The server's second SETTINGS frame carries the window; wait for it.
      await waitFor(
        () => session.remoteSettings.initialWindowSize === 16 * 1024 * 1024,
        2000,
        'the 16 MiB stream window',
      );
    } finally {
      session.destroy();
    }
  });
});

describe('gRPC front end: GRPC_PORT=0', () => {
  it('turns the gRPC front end off', async () => {
    const [fake] = (await startFakes(1)) as [FakeTriton];
    const p = await startTestProxy({ TRITON_SERVERS: serversEnv([fake]), GRPC_PORT: '0' });
    try {
      assert.equal(p.proxy.grpcPort(), 0);
    } finally {
      await p.close();
      await fake.stop();
    }
  });
});

describe('gRPC front end: ServerMetadata extensions', () => {
  it('lists the extensions of the server it serves RPCs for, never shared memory', async () => {
    const all = [...TRITON_EXTENSIONS];
    const [fake] = (await startFakes(1, { extensions: all })) as [FakeTriton];
    const p = await startGrpcTestProxy({ TRITON_SERVERS: serversEnv([fake]) });
    const client = new GrpcTestClient(p.grpcAddress);
    try {
      await waitFor(() => p.proxy.isReady().ready, 5000, 'proxy ready');
      const answer = await client.call<{ extensions: string[] }>('ServerMetadata', {});
      assert.deepEqual(
        answer.extensions,
        all.filter((e) => !e.endsWith('shared_memory')),
      );
    } finally {
      client.close();
      await p.close();
      await fake.stop();
    }
  });
});

describe('gRPC front end: a settings change only some servers take', () => {
  it('answers UNKNOWN with the per-server outcome in the x-proxy-error-details trailer', async () => {
    const fakes = await startFakes(2);
    const p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      ALLOW_UNAUTHENTICATED_ADMIN: 'true',
    });
    const client = new GrpcTestClient(p.grpcAddress);
    try {
      await waitFor(() => p.proxy.fleet.readyCount() === 2, 5000, 'both servers ready');
      fakes[1]!.failNext({ code: status.INTERNAL, details: 'log sink brökén', rpc: 'LogSettings' });
      const e = await expectGrpcStatus(
        client.call('LogSettings', { settings: { log_verbose_level: { uint32_param: 2 } } }),
        status.UNKNOWN,
      );
      assert.match(e.details, /applied on 1 of 2 Triton servers; failed on 't1'/);
      assert.deepEqual(e.metadata.get('x-proxy-error-code'), ['PARTIAL_FAILURE']);
      const details = JSON.parse(String(e.metadata.get('x-proxy-error-details')[0])) as {
        servers: Record<
          string,
          { code?: string; error?: string; settings?: Record<string, unknown> }
        >;
      };
      // A server that took it: its answer, as Triton's LogSettingsResponse (JSON of the message).
      const t0 = details.servers.t0!.settings as { settings: Record<string, unknown> };
      assert.deepEqual(t0.settings.log_verbose_level, { uint32_param: 2 });
      assert.equal(details.servers.t1!.code, 'INTERNAL');
      // Non-ASCII survives as JSON escapes (metadata values are ASCII).
      assert.match(details.servers.t1!.error!, /log sink brökén/);
      assert.equal(fakes[0]!.logSettings().log_verbose_level, 2);
    } finally {
      client.close();
      await p.close();
      await Promise.all(fakes.map((f) => f.stop()));
    }
  });
});
