import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { STEERING_HEADERS, startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import { TestClient, expectStatus, simpleRequest } from './grpc-client';

const zeros = Array.from({ length: 16 }, () => 0);

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('fake Triton: faults a test can inject', () => {
  let fake: FakeTriton;
  let client: TestClient;

  beforeEach(async () => {
    fake = await startFakeTriton({ name: 'faulty' });
    client = new TestClient(fake.address);
  });

  afterEach(async () => {
    client.close();
    await fake.stop({ graceMs: 200 });
  });

  it('fails the next call with the chosen code, then serves again', async () => {
    fake.failNext({ code: status.UNAVAILABLE, details: 'overloaded backend' });
    const error = await expectStatus(
      client.infer(simpleRequest(zeros, zeros, { id: 'failed-1' })),
      status.UNAVAILABLE,
    );
    assert.equal(error.details, 'overloaded backend');
    assert.equal(fake.lastRequest?.request.id, 'failed-1');
    await client.infer(simpleRequest(zeros, zeros));
  });

  it('fails only the matching RPC and model, `count` times', async () => {
    fake.failNext({
      code: status.RESOURCE_EXHAUSTED,
      rpc: 'ModelInfer',
      model: 'simple',
      count: 2,
    });
    assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
    await client.infer({
      model_name: 'identity_uint8',
      inputs: [
        { name: 'INPUT0', datatype: 'UINT8', shape: ['1', '1'], parameters: {}, contents: null },
      ],
      raw_input_contents: [Buffer.from([1])],
    });
    await expectStatus(client.infer(simpleRequest(zeros, zeros)), status.RESOURCE_EXHAUSTED);
    await expectStatus(client.infer(simpleRequest(zeros, zeros)), status.RESOURCE_EXHAUSTED);
    await client.infer(simpleRequest(zeros, zeros));
  });

  it('keeps failing with failAlways until the failures are cleared', async () => {
    fake.failAlways({ code: status.INTERNAL, rpc: 'ModelInfer' });
    for (let i = 0; i < 3; i++) {
      const error = await expectStatus(client.infer(simpleRequest(zeros, zeros)), status.INTERNAL);
      assert.match(error.details, /injected INTERNAL/);
    }
    fake.clearFailures();
    await client.infer(simpleRequest(zeros, zeros));
  });

  it('delays answers by the configured latency, per RPC when given a function', async () => {
    fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 300 : 0));
    let started = Date.now();
    await client.call('ServerLive', {});
    assert.ok(Date.now() - started < 250, `ServerLive took ${Date.now() - started} ms`);
    started = Date.now();
    await client.infer(simpleRequest(zeros, zeros));
    assert.ok(Date.now() - started >= 295, `ModelInfer took ${Date.now() - started} ms`);
  });

  it('misses the client deadline when slower than it', async () => {
    fake.setLatency(300);
    await expectStatus(
      client.infer(simpleRequest(zeros, zeros), { deadlineMs: 50 }),
      status.DEADLINE_EXCEEDED,
    );
  });

  it('obeys steering metadata for delay and failure code', async () => {
    const started = Date.now();
    await client.infer(simpleRequest(zeros, zeros), {
      metadata: { [STEERING_HEADERS.delayMs]: '80' },
    });
    assert.ok(Date.now() - started >= 75);
    const error = await expectStatus(
      client.infer(simpleRequest(zeros, zeros), {
        metadata: {
          [STEERING_HEADERS.failCode]: 'UNAVAILABLE',
          [STEERING_HEADERS.failDetails]: 'x',
        },
      }),
      status.UNAVAILABLE,
    );
    assert.equal(error.details, 'x');
    await expectStatus(
      client.infer(simpleRequest(zeros, zeros), { metadata: { [STEERING_HEADERS.failCode]: '8' } }),
      status.RESOURCE_EXHAUSTED,
    );
  });

  it('fails a whole stream with a failure aimed at ModelStreamInfer', async () => {
    fake.failNext({ code: status.UNAVAILABLE, rpc: 'ModelStreamInfer' });
    await expectStatus(client.stream([simpleRequest(zeros, zeros)]), status.UNAVAILABLE);
    assert.equal((await client.stream([simpleRequest(zeros, zeros)])).length, 1);
  });

  it('fails a stream request mid-way when steered by metadata, after the responses asked for', async () => {
    const repeat = {
      model_name: 'repeat',
      inputs: [{ name: 'IN', datatype: 'INT32', shape: ['4'], parameters: {}, contents: null }],
      raw_input_contents: [Buffer.alloc(16)],
    };
    const midStream = {
      [STEERING_HEADERS.failAfterResponses]: '2',
      [STEERING_HEADERS.failCode]: 'UNAVAILABLE',
    };
    await expectStatus(client.stream([repeat], { metadata: midStream }), status.UNAVAILABLE);
    assert.equal(fake.streamCounts.responsesWritten, 2);
    const inStream = await client.stream([repeat], {
      metadata: { ...midStream, [STEERING_HEADERS.failInStream]: 'true' },
    });
    assert.equal(inStream.length, 3);
    assert.match(inStream[2]!.error_message, /injected UNAVAILABLE/);
  });

  it("spaces a decoupled model's responses by the steered interval", async () => {
    const started = Date.now();
    const responses = await client.stream(
      [
        {
          model_name: 'repeat',
          inputs: [{ name: 'IN', datatype: 'INT32', shape: ['3'], parameters: {}, contents: null }],
          raw_input_contents: [Buffer.alloc(12)],
        },
      ],
      { metadata: { [STEERING_HEADERS.responseIntervalMs]: '100' } },
    );
    assert.equal(responses.length, 3);
    // Two gaps of 100 ms at least; only a lower bound, which load cannot break.
    assert.ok(Date.now() - started >= 195);
  });

  it('delays each stream message by the latency', async () => {
    fake.setLatency(60);
    const started = Date.now();
    const responses = await client.stream([
      simpleRequest(zeros, zeros),
      simpleRequest(zeros, zeros),
    ]);
    assert.equal(responses.length, 2);
    assert.ok(Date.now() - started >= 55);
  });

  it('hangs: accepts calls and answers none until released', async () => {
    fake.hang(true);
    let settled = false;
    const pending = client.infer(simpleRequest(zeros, zeros)).finally(() => {
      settled = true;
    });
    await waitFor(() => fake.callCount('ModelInfer') === 1);
    await sleep(100);
    assert.equal(settled, false);
    fake.hang(false);
    await pending;
  });

  it('hangs past the client deadline', async () => {
    fake.hang(true);
    await expectStatus(
      client.call('ServerReady', {}, { deadlineMs: 100 }),
      status.DEADLINE_EXCEEDED,
    );
  });

  it('answers held calls UNAVAILABLE when stopped gracefully', async () => {
    fake.hang(true);
    const pending = client.infer(simpleRequest(zeros, zeros));
    await waitFor(() => fake.callCount('ModelInfer') === 1);
    await fake.stop();
    const error = await expectStatus(pending, status.UNAVAILABLE);
    assert.equal(error.details, 'Server exiting');
  });

  it('lets a slow call finish during a graceful stop', async () => {
    fake.setLatency(150);
    const pending = client.infer(simpleRequest(zeros, zeros));
    await waitFor(() => fake.callCount('ModelInfer') === 1);
    await fake.stop();
    await pending;
    assert.equal(fake.running, false);
  });

  it('drops calls in flight when killed', async () => {
    fake.setLatency(5000);
    const pending = client.infer(simpleRequest(zeros, zeros), { deadlineMs: 10000 });
    await waitFor(() => fake.callCount('ModelInfer') === 1);
    const started = Date.now();
    fake.kill();
    const error = await expectStatus(pending, status.UNAVAILABLE);
    assert.match(error.details, /Connection dropped/);
    assert.ok(Date.now() - started < 2500, `failed after ${Date.now() - started} ms`);
  });

  it('restarts on the same port after a kill and serves the same client again', async () => {
    const port = fake.port;
    await client.call('ServerLive', {});
    fake.kill();
    // UNAVAILABLE, or DEADLINE_EXCEEDED when grpc-js is still backing off reconnects.
    await assert.rejects(client.call('ServerLive', {}, { deadlineMs: 300 }));
    await fake.restart();
    assert.equal(fake.port, port);
    assert.equal(fake.address, `127.0.0.1:${port}`);
    await waitFor(() => fake.running);
    const response = await client.infer(simpleRequest(zeros, zeros), { deadlineMs: 5000 });
    assert.equal(response.model_name, 'simple');
  });

  it('restarts after a graceful stop, optionally with models back in their starting state', async () => {
    fake.unloadModel('simple');
    await fake.stop();
    await fake.restart();
    await expectStatus(client.call('ModelReady', { name: 'simple' }), status.NOT_FOUND);
    await fake.restart({ resetModels: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'simple' }), { ready: true });
  });
});
