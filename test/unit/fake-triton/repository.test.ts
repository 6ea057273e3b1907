import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import {
  identityModel,
  simpleModel,
  startFakeTriton,
  type FakeTriton,
} from '../../../src/fake-triton';
import { TestClient, expectStatus, simpleRequest } from './grpc-client';

interface IndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

const zeros = Array.from({ length: 16 }, () => 0);

describe('fake Triton: model repository and load/unload', () => {
  let fake: FakeTriton;
  let client: TestClient;

  const index = async (ready = false) =>
    (await client.call<{ models: IndexEntry[] }>('RepositoryIndex', { ready })).models;

  beforeEach(async () => {
    fake = await startFakeTriton({
      models: [
        simpleModel(),
        identityModel('FP32', { name: 'lazy', loaded: false, loadDelayMs: 100 }),
        identityModel('INT8', {
          name: 'broken',
          loaded: false,
          loadFailure: 'Internal: no model.onnx',
        }),
      ],
    });
    client = new TestClient(fake.address);
  });

  afterEach(async () => {
    client.close();
    await fake.stop();
  });

  it('lists a model never loaded by name only, and leaves it out of the ready index', async () => {
    assert.deepEqual(await index(), [
      { name: 'broken', version: '', state: '', reason: '' },
      { name: 'lazy', version: '', state: '', reason: '' },
      { name: 'simple', version: '1', state: 'READY', reason: '' },
    ]);
    assert.deepEqual(
      (await index(true)).map((m) => m.name),
      ['simple'],
    );
  });

  it('answers NOT_FOUND for a model present but never loaded', async () => {
    const error = await expectStatus(client.call('ModelReady', { name: 'lazy' }), status.NOT_FOUND);
    assert.equal(error.details, "Request for unknown model: 'lazy' is not found");
  });

  it('loads through RepositoryModelLoad after the load delay, LOADING meanwhile', async () => {
    fake.configureLoad('lazy', { delayMs: 300 });
    const started = Date.now();
    const load = client.call('RepositoryModelLoad', { model_name: 'lazy' });
    while (fake.callCount('RepositoryModelLoad') === 0) await sleep(5);
    assert.deepEqual(fake.modelStates('lazy'), { '1': { state: 'LOADING', reason: '' } });
    assert.deepEqual(await load, {});
    assert.ok(Date.now() - started >= 295);
    assert.deepEqual(await client.call('ModelReady', { name: 'lazy' }), { ready: true });
    assert.deepEqual(
      (await index(true)).map((m) => m.name),
      ['lazy', 'simple'],
    );
  });

  it('joins concurrent loads of one model into one', async () => {
    const loads = await Promise.all(
      Array.from({ length: 5 }, () => client.call('RepositoryModelLoad', { model_name: 'lazy' })),
    );
    assert.equal(loads.length, 5);
    assert.equal(fake.callCount('RepositoryModelLoad', 'lazy'), 5);
    assert.deepEqual(fake.modelStates('lazy'), { '1': { state: 'READY', reason: '' } });
  });

  it('unloads through RepositoryModelUnload: not ready, UNAVAILABLE "unloaded" in the index', async () => {
    assert.deepEqual(await client.call('RepositoryModelUnload', { model_name: 'simple' }), {});
    const error = await expectStatus(
      client.call('ModelReady', { name: 'simple' }),
      status.NOT_FOUND,
    );
    assert.equal(error.details, "Request for unknown model: 'simple' has no available versions");
    const pinned = await expectStatus(
      client.call('ModelReady', { name: 'simple', version: '1' }),
      status.UNAVAILABLE,
    );
    assert.equal(
      pinned.details,
      "Request for unknown model: 'simple' version 1 is not at ready state",
    );
    assert.deepEqual(
      (await index()).find((m) => m.name === 'simple'),
      { name: 'simple', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' },
    );
    await expectStatus(client.infer(simpleRequest(zeros, zeros)), status.NOT_FOUND);
  });

  it('reports a failed load as INVALID_ARGUMENT and keeps the reason in the index', async () => {
    const error = await expectStatus(
      client.call('RepositoryModelLoad', { model_name: 'broken' }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(
      error.details,
      "load failed for model 'broken': version 1 is at UNAVAILABLE state: Internal: no model.onnx;\n",
    );
    assert.deepEqual(
      (await index()).find((m) => m.name === 'broken'),
      { name: 'broken', version: '1', state: 'UNAVAILABLE', reason: 'Internal: no model.onnx' },
    );
    fake.configureLoad('broken', { failure: null });
    await client.call('RepositoryModelLoad', { model_name: 'broken' });
    assert.deepEqual(await client.call('ModelReady', { name: 'broken' }), { ready: true });
  });

  it('answers INTERNAL for loading a model the repository does not have', async () => {
    const error = await expectStatus(
      client.call('RepositoryModelLoad', { model_name: 'ghost' }),
      status.INTERNAL,
    );
    assert.equal(error.details, "failed to load 'ghost', failed to poll from model repository");
  });

  it('refuses load parameters Triton does not know', async () => {
    const error = await expectStatus(
      client.call('RepositoryModelLoad', {
        model_name: 'lazy',
        parameters: { colour: { string_param: 'blue' } },
      }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(error.details, "unrecognized load parameter 'colour'.");
  });

  it('changes state behind the proxy back without counting RPCs', async () => {
    fake.unloadModel('simple');
    await expectStatus(client.call('ModelReady', { name: 'simple' }), status.NOT_FOUND);
    fake.loadModel('lazy');
    assert.deepEqual(await client.call('ModelReady', { name: 'lazy' }), { ready: true });
    fake.loadModel('simple');
    await client.infer(simpleRequest(zeros, zeros));
    assert.equal(fake.callCount('RepositoryModelLoad'), 0);
    assert.equal(fake.callCount('RepositoryModelUnload'), 0);
  });

  it('adds and removes models at run time', async () => {
    fake.addModel(simpleModel({ name: 'late', loaded: false }));
    assert.ok((await index()).some((m) => m.name === 'late' && m.state === ''));
    await client.call('RepositoryModelLoad', { model_name: 'late' });
    await client.infer({ ...simpleRequest(zeros, zeros), model_name: 'late' });
    assert.equal(fake.removeModel('late'), true);
    assert.ok(!(await index()).some((m) => m.name === 'late'));
    await expectStatus(
      client.infer({ ...simpleRequest(zeros, zeros), model_name: 'late' }),
      status.NOT_FOUND,
    );
  });

  it('counts calls per RPC and per model, and resets the counters', async () => {
    await client.call('ServerLive', {});
    await client.infer(simpleRequest(zeros, zeros));
    await client.infer(simpleRequest(zeros, zeros));
    await expectStatus(
      client.infer({ ...simpleRequest(zeros, zeros), model_name: 'x' }),
      status.NOT_FOUND,
    );
    await client.call('RepositoryModelLoad', { model_name: 'lazy' });
    const calls = fake.calls;
    assert.equal(calls.byRpc.ServerLive, 1);
    assert.equal(calls.byRpc.ModelInfer, 3);
    assert.equal(calls.byRpc.ModelStreamInfer, 0);
    assert.deepEqual(calls.byModel.ModelInfer, { simple: 2, x: 1 });
    assert.deepEqual(calls.byModel.RepositoryModelLoad, { lazy: 1 });
    fake.resetCounters();
    assert.equal(fake.callCount('ModelInfer'), 0);
    assert.equal(fake.callCount('ModelInfer', 'simple'), 0);
  });

  it('refuses statistics for a model that is not available, as Triton does', async () => {
    const error = await expectStatus(
      client.call('ModelStatistics', { name: 'lazy' }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(error.details, "requested model 'lazy' is not available");
  });
});
