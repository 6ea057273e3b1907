import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startFakeTriton, type DecoupledModel, type FakeTriton } from '../../../src/fake-triton';
import {
  TritonClient,
  decodeModelStreamInferResponse,
  loadInferenceService,
  type ChannelSettings,
  type ModelStream,
} from '../../../src/triton';
import { Upstream } from '../../../src/fleet';
import { CircuitBreaker } from '../../../src/resilience';
import { Metrics } from '../../../src/observability';
import { isProxyError, type ProxyError } from '../../../src/errors';
import type { ModelInferRequest } from '../../../src/protocol';
import { encodeModelInferRequest } from '../../../src/triton/wire';

const SETTINGS: ChannelSettings = {
  maxMessageBytes: 64 * 1024 * 1024,
  keepaliveTimeMs: 300_000,
  keepaliveTimeoutMs: 20_000,
  flowControlWindowBytes: 64 * 1024,
  connectTimeoutMs: 5000,
  channelsPerServer: 1,
};

/** A decoupled model: COUNT (INT32 [1]) responses, each OUT = SIZE bytes of its index (UINT8 [SIZE]). */
function chunksModel(intervalMs: number): DecoupledModel {
  return {
    name: 'chunks',
    backend: 'python',
    maxBatchSize: 0,
    decoupled: true,
    intervalMs,
    inputs: [
      { name: 'COUNT', datatype: 'INT32', dims: [1] },
      { name: 'SIZE', datatype: 'INT32', dims: [1] },
    ],
    outputs: [{ name: 'OUT', datatype: 'UINT8', dims: [-1] }],
    respond: (inputs) => {
      const count = inputs.get('COUNT')!.data.readInt32LE(0);
      const size = inputs.get('SIZE')!.data.readInt32LE(0);
      return Array.from(
        { length: count },
        (_, i) =>
          new Map([
            ['OUT', { datatype: 'UINT8' as const, shape: [size], data: Buffer.alloc(size, i) }],
          ]),
      );
    },
  };
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

function chunksRequest(count: number, size = 4): ModelInferRequest {
  return {
    modelName: 'chunks',
    modelVersion: '',
    id: 'req-1',
    parameters: {},
    inputs: [
      { name: 'COUNT', datatype: 'INT32', shape: [1], parameters: {} },
      { name: 'SIZE', datatype: 'INT32', shape: [1], parameters: {} },
    ],
    outputs: [],
    rawInputContents: [int32(count), int32(size)],
  };
}

/** Which response a message is: the byte OUT is filled with. */
function indexOf(message: Buffer): number {
  const decoded = decodeModelStreamInferResponse(message);
  assert.equal(decoded.errorMessage, '');
  return decoded.response!.rawOutputContents[0]![0]!;
}

async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readAll(stream: ModelStream): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

describe('ModelStreamInfer client over real gRPC', () => {
  let fake: FakeTriton;
  let client: TritonClient;

  beforeEach(async () => {
    fake = await startFakeTriton({ models: [chunksModel(0)] });
    client = new TritonClient('t1', fake.address, loadInferenceService(), SETTINGS);
  });

  afterEach(async () => {
    client.close();
    await fake.stop({ graceMs: 100 });
  });

  it('delivers every response of a decoupled model in order, then ends', async () => {
    const stream = client.openStream();
    stream.write(chunksRequest(5));
    stream.end();
    const messages = await readAll(stream);
    assert.deepEqual(messages.map(indexOf), [0, 1, 2, 3, 4]);
    assert.equal(stream.done, true);
    assert.equal(await stream.next(), null);
  });

  it('forwards request bytes given already encoded, and the request id as metadata', async () => {
    const stream = client.openStream({ requestId: 'rid-42' });
    stream.write(encodeModelInferRequest(chunksRequest(2)));
    stream.end();
    assert.equal((await readAll(stream)).length, 2);
    assert.deepEqual(fake.lastRequest!.metadata.get('x-request-id'), ['rid-42']);
  });

  it('hands each response over as it arrives, not when the stream ends', async () => {
    fake.removeModel('chunks');
    fake.addModel(chunksModel(300));
    const stream = client.openStream();
    stream.write(chunksRequest(3));
    stream.end();
    assert.equal(indexOf((await stream.next())!), 0);
    // The fake spaces its responses 300 ms apart: the first is read while
    // the last is still 600 ms from being written.
    assert.ok(fake.streamCounts.responsesWritten < 3, 'read before the server finished');
    assert.deepEqual((await readAll(stream)).map(indexOf), [1, 2]);
  });

  it('reports a failure after some responses once those responses are read', async () => {
    fake.failStreamAfter({ afterResponses: 2, code: status.UNAVAILABLE, details: 'going away' });
    const stream = client.openStream();
    stream.write(chunksRequest(5));
    stream.end();
    assert.equal(indexOf((await stream.next())!), 0);
    assert.equal(indexOf((await stream.next())!), 1);
    await assert.rejects(stream.next(), (e: { code: number; details: string }) => {
      assert.equal(e.code, status.UNAVAILABLE);
      assert.equal(e.details, 'going away');
      return true;
    });
  });

  it('passes an in-stream error message through as a message', async () => {
    fake.failStreamAfter({ afterResponses: 1, inStream: true, details: 'model failed' });
    const stream = client.openStream();
    stream.write(chunksRequest(3));
    stream.end();
    const messages = await readAll(stream);
    assert.equal(messages.length, 2);
    assert.equal(decodeModelStreamInferResponse(messages[1]!).errorMessage, 'model failed');
  });

  it('cancels the stream on the wire when cancelled, and the server sees it', async () => {
    fake.removeModel('chunks');
    fake.addModel(chunksModel(200));
    const stream = client.openStream();
    stream.write(chunksRequest(50));
    stream.end();
    await stream.next();
    stream.cancel();
    await assert.rejects(stream.next(), (e: { code: number }) => e.code === status.CANCELLED);
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
    const written = fake.streamCounts.responsesWritten;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(fake.streamCounts.responsesWritten, written, 'no response after the cancel');
  });

  it('cancels when its abort signal fires', async () => {
    fake.removeModel('chunks');
    fake.addModel(chunksModel(200));
    const controller = new AbortController();
    const stream = client.openStream({ signal: controller.signal });
    stream.write(chunksRequest(50));
    await stream.next();
    controller.abort();
    await assert.rejects(stream.next(), (e: { code: number }) => e.code === status.CANCELLED);
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
  });

  it('times out and cancels when the first message misses its deadline', async () => {
    fake.setLatency(3000);
    const stream = client.openStream({ firstMessageDeadline: Date.now() + 200 });
    stream.write(chunksRequest(1));
    stream.end();
    await assert.rejects(stream.next(), (e: { code: number }) => {
      assert.equal(e.code, status.DEADLINE_EXCEEDED);
      return true;
    });
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
  });

  it('times out between messages only while the reader waits', async () => {
    fake.removeModel('chunks');
    fake.addModel(chunksModel(1500));
    const stream = client.openStream({ idleTimeoutMs: 300 });
    stream.write(chunksRequest(3));
    stream.end();
    await stream.next();
    await assert.rejects(stream.next(), (e: { code: number; details: string }) => {
      assert.equal(e.code, status.DEADLINE_EXCEEDED);
      assert.match(e.details, /300 ms/);
      return true;
    });
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
  });

  it('holds the server back while the reader reads nothing: memory stays bounded', async () => {
    // 200 responses of 64 KiB (12.5 MiB): with a reader that stops after one,
    // the flow-control windows and a few buffered messages are all that may
    // be written.
    const stream = client.openStream({ highWaterMark: 4 });
    stream.write(chunksRequest(200, 64 * 1024));
    stream.end();
    assert.equal(indexOf((await stream.next())!), 0);
    await new Promise((r) => setTimeout(r, 700));
    const heldAt = fake.streamCounts.responsesWritten;
    assert.ok(heldAt < 60, `the server wrote ${heldAt} of 200 responses while nobody read`);
    const rest = await readAll(stream);
    assert.deepEqual(
      rest.map(indexOf),
      Array.from({ length: 199 }, (_, i) => (i + 1) & 0xff),
    );
  });
});

describe('Upstream streams: breaker, accounting, abandonment', () => {
  let fake: FakeTriton;
  let upstream: Upstream;
  let metrics: Metrics;

  beforeEach(async () => {
    fake = await startFakeTriton({ models: [chunksModel(0)] });
    metrics = new Metrics({ modelLabelLimit: 10, defaultMetrics: false });
    upstream = new Upstream(
      { name: 't1', address: fake.address, group: '', weight: 1, labels: {} } as never,
      {
        client: new TritonClient('t1', fake.address, loadInferenceService(), SETTINGS),
        breaker: new CircuitBreaker({ server: 't1', volumeThreshold: 2, resetTimeout: 60_000 }),
        metrics,
        retryAfterSeconds: 1,
      },
    );
  });

  afterEach(async () => {
    upstream.close();
    await fake.stop({ graceMs: 100 });
  });

  const send = (count: number) => (stream: ModelStream) => {
    stream.write(chunksRequest(count));
    stream.end();
  };

  it('resolves with the first message and counts the stream outstanding until it is over', async () => {
    const { stream, first } = await upstream.startStream(send(3));
    assert.equal(indexOf(first!), 0);
    assert.equal(upstream.outstanding, 1);
    assert.equal((await readAll(stream)).length, 2);
    assert.equal(upstream.outstanding, 0);
    await upstream.idle();
  });

  it('maps a failure before the first message to a retryable server fault that feeds the breaker', async () => {
    fake.failAlways({ code: status.UNAVAILABLE, rpc: 'ModelStreamInfer', details: 'down' });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(upstream.startStream(send(1)), (e: ProxyError) => {
        assert.ok(isProxyError(e));
        assert.equal(e.code, 'UPSTREAM_UNAVAILABLE');
        assert.equal(e.serverFault, true);
        return true;
      });
    }
    assert.equal(upstream.breaker.state, 'open');
    const opened = fake.streamCounts.opened;
    await assert.rejects(upstream.startStream(send(1)), /circuit open/);
    assert.equal(fake.streamCounts.opened, opened, 'an open breaker sends nothing');
    assert.equal(upstream.outstanding, 0);
  });

  it('maps a failure after the first message for the reader, without touching the breaker', async () => {
    fake.failStreamAfter({ afterResponses: 1, code: status.INTERNAL, details: 'boom' });
    const { stream } = await upstream.startStream(send(3));
    await assert.rejects(stream.next(), (e: ProxyError) => e.code === 'INTERNAL');
    assert.equal(upstream.breaker.state, 'closed');
    assert.equal(upstream.outstanding, 0);
  });

  it('reports a caller that left before the first message as CLIENT_CLOSED, not a server error', async () => {
    fake.setLatency(2000);
    const controller = new AbortController();
    const started = upstream.startStream(send(1), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(started, (e: ProxyError) => e.code === 'CLIENT_CLOSED');
    assert.equal(upstream.breaker.state, 'closed');
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
  });

  it('cancels open streams when the server is abandoned as hung', async () => {
    fake.removeModel('chunks');
    fake.addModel(chunksModel(5000));
    const { stream } = await upstream.startStream(send(3));
    assert.equal(upstream.abandonInflight(), 1);
    await assert.rejects(stream.next(), (e: ProxyError) => e.code === 'UPSTREAM_UNAVAILABLE');
    await eventually(() => fake.streamCounts.cancelled === 1, 'the fake saw the cancel');
    assert.equal(upstream.outstanding, 0);
  });
});
