import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { ModelInferRequest, ModelInferResponse } from '../../../src/protocol';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import {
  TritonClient,
  loadInferenceService,
  mapGrpcError,
  type CallContext,
  type ChannelSettings,
  type InferTransport,
} from '../../../src/triton';
import { encodeModelInferRequest } from '../../../src/triton/wire';

const MiB = 1024 * 1024;
const TRANSPORTS: InferTransport[] = ['grpc-js', 'http2'];

function settings(transport: InferTransport, maxMessageBytes = 32 * MiB): ChannelSettings {
  return {
    maxMessageBytes,
    keepaliveTimeMs: 300_000,
    keepaliveTimeoutMs: 20_000,
    flowControlWindowBytes: 4 * MiB,
    connectTimeoutMs: 2000,
    channelsPerServer: 1,
    inferTransport: transport,
  };
}

function int32(values: number[]): Buffer {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeInt32LE(v, i * 4));
  return buf;
}

function simple(a: number[], b: number[]): ModelInferRequest {
  return {
    modelName: 'simple',
    modelVersion: '',
    id: 'call-1',
    parameters: {},
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], parameters: {} },
      { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], parameters: {} },
    ],
    outputs: [],
    rawInputContents: [int32(a), int32(b)],
  };
}

const ZEROS = Array.from({ length: 16 }, () => 0);

/** A request Triton accepts as it is. */
function valid(): ModelInferRequest {
  return simple(ZEROS, ZEROS);
}

function identity(bytes: number): { request: ModelInferRequest; tensor: Buffer } {
  const tensor = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) tensor.writeFloatLE(i / 4, i);
  return {
    tensor,
    request: {
      modelName: 'identity_fp32',
      modelVersion: '',
      id: '',
      parameters: {},
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, bytes / 4], parameters: {} }],
      outputs: [],
      rawInputContents: [tensor],
    },
  };
}

function ctx(overrides: Partial<CallContext> = {}): CallContext {
  return { deadline: Date.now() + 5000, ...overrides };
}

interface Failure {
  code: number;
  details: string;
}

async function failureOf(promise: Promise<ModelInferResponse>): Promise<Failure> {
  try {
    await promise;
  } catch (err) {
    const e = err as Failure;
    return { code: e.code, details: e.details };
  }
  assert.fail('the call succeeded');
}

/** Runs `scenario` with a client of each transport and returns the outcomes by transport. */
async function onBoth<T>(
  fake: FakeTriton,
  scenario: (client: TritonClient) => Promise<T>,
  maxMessageBytes?: number,
): Promise<Record<InferTransport, T>> {
  const out = {} as Record<InferTransport, T>;
  for (const transport of TRANSPORTS) {
    const client = new TritonClient(
      't0',
      fake.address,
      loadInferenceService(),
      settings(transport, maxMessageBytes),
    );
    try {
      out[transport] = await scenario(client);
    } finally {
      client.close();
    }
  }
  return out;
}

describe('ModelInfer transports: the lean node:http2 path behaves as grpc-js does', () => {
  let fake: FakeTriton;

  beforeEach(async () => {
    fake = await startFakeTriton();
  });

  afterEach(async () => {
    fake.kill();
  });

  it('uses the lean path when asked and grpc-js otherwise', () => {
    for (const transport of TRANSPORTS) {
      const client = new TritonClient(
        't0',
        fake.address,
        loadInferenceService(),
        settings(transport),
      );
      assert.equal(client.inferTransport, transport);
      client.close();
    }
  });

  it('answers simple with the sum and difference, and passes the request id to Triton', async () => {
    const a = Array.from({ length: 16 }, (_, i) => i);
    const b = Array.from({ length: 16 }, () => 3);
    const results = await onBoth(fake, async (client) => {
      const res = await client.modelInfer(
        simple(a, b),
        ctx({
          requestId: 'req-42',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        }),
      );
      const md = fake.lastRequest!.metadata;
      return { res, requestId: md.get('x-request-id')[0], traceparent: md.get('traceparent')[0] };
    });
    for (const transport of TRANSPORTS) {
      const { res, requestId, traceparent } = results[transport];
      const out0 = res.rawOutputContents[res.outputs.findIndex((o) => o.name === 'OUTPUT0')]!;
      const out1 = res.rawOutputContents[res.outputs.findIndex((o) => o.name === 'OUTPUT1')]!;
      assert.deepEqual(out0, int32(a.map((x, i) => x + b[i]!)), transport);
      assert.deepEqual(out1, int32(a.map((x, i) => x - b[i]!)), transport);
      assert.equal(res.id, 'call-1');
      assert.equal(requestId, 'req-42', transport);
      assert.equal(
        traceparent,
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        transport,
      );
    }
  });

  it('moves an 8 MiB tensor there and back unchanged', async () => {
    const { request, tensor } = identity(8 * MiB);
    const results = await onBoth(fake, (client) =>
      client.modelInfer(request, ctx({ deadline: Date.now() + 15_000 })),
    );
    for (const transport of TRANSPORTS)
      assert.ok(results[transport].rawOutputContents[0]!.equals(tensor), transport);
  });

  it('reports a status Triton sends with the same code and message on both', async () => {
    const codes = [
      status.INVALID_ARGUMENT,
      status.UNAVAILABLE,
      status.INTERNAL,
      status.RESOURCE_EXHAUSTED,
      status.UNIMPLEMENTED,
    ];
    const results = await onBoth(fake, async (client) => {
      const seen: Failure[] = [];
      for (const code of codes) {
        fake.failNext({
          code,
          details: `injected ${code}: input 'IN' has é and 100%`,
          rpc: 'ModelInfer',
        });
        seen.push(await failureOf(client.modelInfer(valid(), ctx())));
      }
      seen.push(
        await failureOf(client.modelInfer({ ...valid(), modelName: 'no_such_model' }, ctx())),
      );
      return seen;
    });
    assert.deepEqual(results.http2, results['grpc-js']);
    assert.equal(results.http2[0]!.code, status.INVALID_ARGUMENT);
    assert.equal(
      results.http2[0]!.details,
      `injected ${status.INVALID_ARGUMENT}: input 'IN' has é and 100%`,
    );
    assert.equal(results.http2.at(-1)!.code, status.NOT_FOUND);
  });

  it('ends a call Triton does not answer at its deadline, as DEADLINE_EXCEEDED on both', async () => {
    fake.hang(true);
    const results = await onBoth(fake, async (client) => {
      const start = Date.now();
      const failure = await failureOf(
        client.modelInfer(valid(), ctx({ deadline: Date.now() + 300 })),
      );
      return { ...failure, elapsed: Date.now() - start };
    });
    for (const transport of TRANSPORTS) {
      assert.equal(results[transport].code, status.DEADLINE_EXCEEDED, transport);
      assert.ok(
        results[transport].elapsed < 1500,
        `${transport} ended after ${results[transport].elapsed} ms`,
      );
    }
    // grpc-js appends timing diagnostics to the same text.
    assert.match(results.http2.details, /^Deadline exceeded/);
    assert.match(results['grpc-js'].details, /^Deadline exceeded/);
  });

  it('cancels on the abort signal and through the open-call set, as CANCELLED on both', async () => {
    fake.hang(true);
    const results = await onBoth(fake, async (client) => {
      const controller = new AbortController();
      const bySignal = failureOf(client.modelInfer(valid(), ctx({ signal: controller.signal })));
      const open = new Set<{ cancel(): void }>();
      const bySet = failureOf(client.modelInfer(valid(), ctx({ open })));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(open.size, 1, 'the call is in the open set while in flight');
      controller.abort();
      for (const c of open) c.cancel();
      const outcome = [await bySignal, await bySet];
      assert.equal(open.size, 0, 'a finished call leaves the open set');
      return outcome.map((f) => f.code);
    });
    assert.deepEqual(results.http2, [status.CANCELLED, status.CANCELLED]);
    assert.deepEqual(results['grpc-js'], [status.CANCELLED, status.CANCELLED]);
  });

  it('fails calls of a Triton that died as UNAVAILABLE, and works again once it restarted', async () => {
    for (const transport of TRANSPORTS) {
      const client = new TritonClient(
        't0',
        fake.address,
        loadInferenceService(),
        settings(transport),
      );
      try {
        await client.modelInfer(valid(), ctx());
        fake.hang(true);
        const inFlight = failureOf(client.modelInfer(valid(), ctx()));
        await new Promise((r) => setTimeout(r, 100));
        fake.kill();
        const dropped = await inFlight;
        assert.equal(dropped.code, status.UNAVAILABLE, `${transport}: ${dropped.details}`);
        const down = await failureOf(client.modelInfer(valid(), ctx()));
        assert.equal(down.code, status.UNAVAILABLE, `${transport}: ${down.details}`);
        assert.equal(mapGrpcError(down as unknown as Error, 't0', 1).code, 'UPSTREAM_UNAVAILABLE');
        await fake.restart();
        const until = Date.now() + 8000;
        for (;;) {
          try {
            await client.modelInfer(valid(), ctx());
            break;
          } catch (err) {
            assert.equal((err as Failure).code, status.UNAVAILABLE, transport);
            if (Date.now() > until) throw err;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      } finally {
        client.close();
      }
    }
  });

  it('refuses a reply over the receive limit with the same RESOURCE_EXHAUSTED message, which maps to 413', async () => {
    const { request } = identity(2 * MiB);
    // The request fits the limit exactly; identity's reply is a few bytes longer.
    const limit = encodeModelInferRequest(request).length;
    const results = await onBoth(
      fake,
      async (client) => {
        const failure = await failureOf(client.modelInfer(request, ctx()));
        // The connection stays usable after the refused reply.
        await client.modelInfer(valid(), ctx());
        return failure;
      },
      limit,
    );
    assert.match(
      results.http2.details,
      new RegExp(`^Received message larger than max \\(\\d+ vs ${limit}\\)$`),
    );
    assert.equal(results.http2.code, status.RESOURCE_EXHAUSTED);
    assert.equal(results.http2.details, results['grpc-js'].details);
    assert.equal(
      mapGrpcError(results.http2 as unknown as Error, 't0', 1).code,
      'PAYLOAD_TOO_LARGE',
    );
  });

  it('refuses to send a request over the limit on the lean path before anything reaches Triton', async () => {
    const { request } = identity(2 * MiB);
    const client = new TritonClient(
      't0',
      fake.address,
      loadInferenceService(),
      settings('http2', MiB),
    );
    try {
      const before = fake.callCount('ModelInfer');
      const failure = await failureOf(client.modelInfer(request, ctx()));
      assert.equal(failure.code, status.RESOURCE_EXHAUSTED);
      assert.match(failure.details, /^Sent message larger than max/);
      assert.equal(mapGrpcError(failure as unknown as Error, 't0', 1).code, 'PAYLOAD_TOO_LARGE');
      assert.equal(fake.callCount('ModelInfer'), before);
    } finally {
      client.close();
    }
  });
});
