import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { DATATYPES } from '../../../src/protocol';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import { TestClient, expectStatus, simpleRequest } from './grpc-client';

interface TensorMetadata {
  name: string;
  datatype: string;
  shape: string[];
}

describe('fake Triton: every RPC answers like Triton', () => {
  let fake: FakeTriton;
  let client: TestClient;

  before(async () => {
    fake = await startFakeTriton();
    client = new TestClient(fake.address);
  });

  after(async () => {
    client.close();
    await fake.stop();
  });

  it('listens on 127.0.0.1 on the port it reports', () => {
    assert.match(fake.address, /^127\.0\.0\.1:\d+$/);
    assert.ok(fake.port > 0);
    assert.equal(fake.address, `127.0.0.1:${fake.port}`);
  });

  it('is live and ready', async () => {
    assert.deepEqual(await client.call('ServerLive', {}), { live: true });
    assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
  });

  it('reports itself as triton with its extensions', async () => {
    const metadata = await client.call<{ name: string; version: string; extensions: string[] }>(
      'ServerMetadata',
      {},
    );
    assert.equal(metadata.name, 'triton');
    assert.match(metadata.version, /^\d+\.\d+\.\d+/);
    assert.ok(metadata.extensions.includes('model_repository'));
    assert.ok(metadata.extensions.includes('statistics'));
  });

  it('answers ModelReady true for a loaded model', async () => {
    assert.deepEqual(await client.call('ModelReady', { name: 'simple' }), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'simple', version: '1' }), {
      ready: true,
    });
  });

  it('describes simple with a batch dimension in its metadata', async () => {
    const metadata = await client.call<{
      name: string;
      versions: string[];
      platform: string;
      inputs: TensorMetadata[];
      outputs: TensorMetadata[];
    }>('ModelMetadata', { name: 'simple' });
    assert.equal(metadata.name, 'simple');
    assert.deepEqual(metadata.versions, ['1']);
    assert.equal(metadata.platform, 'onnxruntime_onnx');
    assert.deepEqual(metadata.inputs, [
      { name: 'INPUT0', datatype: 'INT32', shape: ['-1', '16'] },
      { name: 'INPUT1', datatype: 'INT32', shape: ['-1', '16'] },
    ]);
    assert.deepEqual(
      metadata.outputs.map((o) => o.name),
      ['OUTPUT0', 'OUTPUT1'],
    );
  });

  it('serves an identity model for every datatype, named in lower case', async () => {
    for (const datatype of DATATYPES) {
      const metadata = await client.call<{ inputs: TensorMetadata[] }>('ModelMetadata', {
        name: `identity_${datatype.toLowerCase()}`,
      });
      assert.deepEqual(metadata.inputs, [{ name: 'INPUT0', datatype, shape: ['-1', '-1'] }]);
    }
  });

  it('returns a realistic model config with proto datatypes', async () => {
    const { config } = await client.call<{
      config: {
        name: string;
        backend: string;
        max_batch_size: number;
        input: Array<{ name: string; data_type: string; dims: string[] }>;
        output: Array<{ name: string; data_type: string; dims: string[] }>;
        model_transaction_policy: { decoupled: boolean } | null;
      };
    }>('ModelConfig', { name: 'simple' });
    assert.equal(config.name, 'simple');
    assert.equal(config.backend, 'onnxruntime');
    assert.equal(config.max_batch_size, 8);
    assert.equal(config.input[0]!.data_type, 'TYPE_INT32');
    assert.deepEqual(config.input[0]!.dims, ['16']);

    const bytes = await client.call<{ config: { input: Array<{ data_type: string }> } }>(
      'ModelConfig',
      { name: 'identity_bytes' },
    );
    assert.equal(bytes.config.input[0]!.data_type, 'TYPE_STRING');

    const repeat = await client.call<{
      config: { model_transaction_policy: { decoupled: boolean } };
    }>('ModelConfig', { name: 'repeat' });
    assert.equal(repeat.config.model_transaction_policy.decoupled, true);
  });

  it('counts successes and failures in ModelStatistics per model and version', async () => {
    await client.infer(simpleRequest(new Array(16).fill(1), new Array(16).fill(2)));
    await client.infer(simpleRequest(new Array(16).fill(1), new Array(16).fill(2)));
    await expectStatus(client.infer({ ...simpleRequest([1], [2]) }), status.INVALID_ARGUMENT);
    const { model_stats } = await client.call<{
      model_stats: Array<{
        name: string;
        version: string;
        inference_count: string;
        execution_count: string;
        inference_stats: { success: { count: string; ns: string }; fail: { count: string } };
      }>;
    }>('ModelStatistics', { name: 'simple' });
    assert.equal(model_stats.length, 1);
    const stats = model_stats[0]!;
    assert.equal(stats.name, 'simple');
    assert.equal(stats.version, '1');
    assert.equal(stats.inference_stats.success.count, '2');
    assert.ok(Number(stats.inference_stats.success.ns) > 0);
    assert.equal(stats.inference_stats.fail.count, '1');
    assert.equal(stats.inference_count, '2');
    assert.equal(stats.execution_count, '2');

    const all = await client.call<{ model_stats: Array<{ name: string }> }>('ModelStatistics', {});
    assert.ok(all.model_stats.some((s) => s.name === 'identity_bf16'));
  });

  it('lists the repository with READY states', async () => {
    const { models } = await client.call<{
      models: Array<{ name: string; version: string; state: string; reason: string }>;
    }>('RepositoryIndex', {});
    assert.deepEqual(
      models.find((m) => m.name === 'simple'),
      { name: 'simple', version: '1', state: 'READY', reason: '' },
    );
    assert.equal(models.length, 17);
  });

  it('refuses a repository name as Triton does', async () => {
    const error = await expectStatus(
      client.call('RepositoryIndex', { repository_name: 'models' }),
      status.UNIMPLEMENTED,
    );
    assert.equal(error.details, "'repository_name' specification is not supported");
  });

  it('answers UNIMPLEMENTED for shared memory RPCs (the proxy never forwards them)', async () => {
    for (const rpc of [
      'SystemSharedMemoryStatus',
      'SystemSharedMemoryRegister',
      'CudaSharedMemoryStatus',
    ]) {
      await expectStatus(client.call(rpc, {}), status.UNIMPLEMENTED);
    }
  });

  it("keeps log settings as Triton's LogSettings does: typed values, checked types, log_file fixed", async () => {
    const read = (await client.call('LogSettings', { settings: {} })) as {
      settings: Record<string, Record<string, unknown>>;
    };
    assert.equal(read.settings.log_verbose_level!.uint32_param, 0);
    assert.equal(read.settings.log_info!.bool_param, true);
    const changed = (await client.call('LogSettings', {
      settings: { log_verbose_level: { uint32_param: 2 } },
    })) as { settings: Record<string, Record<string, unknown>> };
    assert.equal(changed.settings.log_verbose_level!.uint32_param, 2);
    const wrongType = await expectStatus(
      client.call('LogSettings', { settings: { log_info: { string_param: 'yes' } } }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(wrongType.details, "expect boolean for 'log_info'");
    await expectStatus(
      client.call('LogSettings', { settings: { log_file: { string_param: 'x' } } }),
      status.UNIMPLEMENTED,
    );
    await client.call('LogSettings', { settings: { log_verbose_level: { uint32_param: 0 } } });
  });

  it("keeps trace settings as Triton's TraceSetting does: per model over global, empty clears", async () => {
    type Answer = { settings: Record<string, { value: string[] }> };
    const set = (await client.call('TraceSetting', {
      model_name: 'simple',
      settings: { trace_rate: { value: ['9'] } },
    })) as Answer;
    assert.deepEqual(set.settings.trace_rate!.value, ['9']);
    const global = (await client.call('TraceSetting', { model_name: '', settings: {} })) as Answer;
    assert.deepEqual(global.settings.trace_rate!.value, ['1000']);
    assert.deepEqual(global.settings.trace_level!.value, ['OFF']);
    const cleared = (await client.call('TraceSetting', {
      model_name: 'simple',
      settings: { trace_rate: { value: [] } },
    })) as Answer;
    assert.deepEqual(cleared.settings.trace_rate!.value, ['1000']);
    const unknown = await expectStatus(
      client.call('TraceSetting', { model_name: 'nope', settings: {} }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(unknown.details, 'Request for unknown model : nope');
  });

  it('says "Server not ready" for model RPCs while not ready', async () => {
    fake.setReady(false);
    try {
      assert.deepEqual(await client.call('ServerReady', {}), { ready: false });
      const error = await expectStatus(
        client.call('ModelReady', { name: 'simple' }),
        status.UNAVAILABLE,
      );
      assert.equal(error.details, 'Server not ready');
      await expectStatus(
        client.infer(simpleRequest(new Array(16).fill(0), new Array(16).fill(0))),
        status.UNAVAILABLE,
      );
    } finally {
      fake.setReady(true);
    }
  });
});
