import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startFakes, serversEnv, waitFor } from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  expectGrpcStatus,
  int32sOf,
  simpleInferRequest,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';
import type { FakeTriton } from '../../../src/fake-triton';
import { decodeModelInferResponse, encodeModelInferRequest } from '../../../src/triton/wire';

const A = Array.from({ length: 16 }, (_, i) => i);
const B = Array.from({ length: 16 }, () => 1);
const MiB = 1024 * 1024;

function identityRequest(bytes: number): Record<string, unknown> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4096) data.writeFloatLE(i, i);
  return {
    model_name: 'identity',
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, bytes / 4] }],
    raw_input_contents: [data],
  };
}

describe('gRPC front end: the same policies as REST', () => {
  const open: Array<{ close(): unknown }> = [];
  let fakes: FakeTriton[] = [];

  async function start(
    env: Record<string, string>,
    count = 1,
  ): Promise<{ p: GrpcTestProxy; client: GrpcTestClient }> {
    fakes = await startFakes(count);
    const p = await startGrpcTestProxy({ TRITON_SERVERS: serversEnv(fakes), ...env });
    const client = new GrpcTestClient(p.grpcAddress);
    open.push(client, p);
    return { p, client };
  }

  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  it("sends the client's grpc-timeout to Triton: a deadline that passes cancels the upstream call", async () => {
    const { p, client } = await start({});
    fakes[0]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 3000 : 0));
    const started = performance.now();
    await expectGrpcStatus(
      client.call('ModelInfer', simpleInferRequest(A, B), { deadlineMs: 400 }),
      status.DEADLINE_EXCEEDED,
    );
    // Generous bounds on a loaded 2-core box: far below the fake's 3 s either way.
    await waitFor(
      () => fakes[0]!.cancelledCount('ModelInfer') === 1,
      2000,
      'Triton saw the cancel',
    );
    await waitFor(() => p.proxy.admission.stats().inflight === 0, 2000, 'slot released');
    assert.ok(performance.now() - started < 2500);
  });

  it('cancels the upstream call when the client cancels', async () => {
    const { p, client } = await start({});
    fakes[0]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 5000 : 0));
    const leaving = new AbortController();
    const call = client
      .call('ModelInfer', simpleInferRequest(A, B), { signal: leaving.signal })
      .catch((e: { code: number }) => e);
    await waitFor(() => p.proxy.admission.stats().inflight === 1, 3000, 'request in flight');
    leaving.abort();
    assert.equal(((await call) as { code: number }).code, status.CANCELLED);
    await waitFor(
      () => fakes[0]!.cancelledCount('ModelInfer') === 1,
      2000,
      'Triton saw the cancel',
    );
    await waitFor(() => p.proxy.admission.stats().inflight === 0, 2000, 'slot released');
  });

  it('refuses beyond the admission limits with RESOURCE_EXHAUSTED and a retry pushback', async () => {
    const { client } = await start({ MODEL_MAX_INFLIGHT: '1', MODEL_MAX_QUEUE: '0' });
    fakes[0]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 500 : 0));
    const first = client.call('ModelInfer', simpleInferRequest(A, B));
    await new Promise((r) => setTimeout(r, 100));
    const e = await expectGrpcStatus(
      client.call('ModelInfer', simpleInferRequest(A, B)),
      status.RESOURCE_EXHAUSTED,
    );
    assert.deepEqual(e.metadata.get('x-proxy-error-code'), ['OVERLOADED']);
    assert.deepEqual(e.metadata.get('grpc-retry-pushback-ms'), ['1000']);
    await first;
  });

  it('holds messages to the in-flight byte bound', async () => {
    const { client } = await start({ MAX_INFLIGHT_BYTES: String(64 * 1024) });
    const e = await expectGrpcStatus(
      client.call('ModelInfer', identityRequest(128 * 1024)),
      status.RESOURCE_EXHAUSTED,
    );
    assert.deepEqual(e.metadata.get('x-proxy-error-code'), ['PAYLOAD_TOO_LARGE']);
    assert.equal(fakes[0]!.callCount('ModelInfer'), 0);
  });

  it('refuses a message over MAX_BODY_BYTES before reading it', async () => {
    const { client } = await start({ MAX_BODY_BYTES: String(MiB) });
    const e = await expectGrpcStatus(
      client.call('ModelInfer', identityRequest(2 * MiB)),
      status.RESOURCE_EXHAUSTED,
    );
    assert.match(e.details, /larger than max/);
    assert.equal(fakes[0]!.callCount('ModelInfer'), 0);
  });

  it('passes 64 MiB tensors both ways at the default limits', async function () {
    // Seconds alone; a generous bound for a loaded 2-core box.
    this.timeout(150_000);
    const { client } = await start({});
    const data = (identityRequest(64 * MiB).raw_input_contents as Buffer[])[0]!;
    const bytes = encodeModelInferRequest({
      modelName: 'identity',
      modelVersion: '',
      id: '',
      parameters: {},
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, data.length / 4], parameters: {} }],
      outputs: [],
      rawInputContents: [data],
    });
    const answer = await client.inferBytes(bytes, { deadlineMs: 120_000 });
    const out = decodeModelInferResponse(answer.value).rawOutputContents[0]!;
    assert.equal(out.length, 64 * MiB);
    assert.ok(out.equals(data), 'same bytes back');
  });

  it('retries a failed attempt on another server', async () => {
    const { client } = await start({}, 2);
    fakes[0]!.failAlways({ code: status.UNAVAILABLE, details: 'going away', rpc: 'ModelInfer' });
    for (let i = 0; i < 6; i++) {
      const r = await client.call<{ raw_output_contents: Buffer[] }>(
        'ModelInfer',
        simpleInferRequest(A, B),
      );
      assert.deepEqual(
        int32sOf(r.raw_output_contents[0]!),
        A.map((a) => a + 1),
      );
    }
    assert.ok(fakes[1]!.callCount('ModelInfer') >= 6);
  });

  it('keeps a sequence on the server that took its first request', async () => {
    const { client } = await start({}, 2);
    const seq = (start: boolean, end: boolean) =>
      simpleInferRequest(A, B, {
        parameters: {
          sequence_id: { int64_param: 77 },
          sequence_start: { bool_param: start },
          sequence_end: { bool_param: end },
        },
      });
    await client.call('ModelInfer', seq(true, false));
    for (let i = 0; i < 5; i++) await client.call('ModelInfer', seq(false, i === 4));
    const counts = fakes.map((f) => f.callCount('ModelInfer'));
    assert.ok(counts.includes(6) && counts.includes(0), `all on one server: ${counts.join(',')}`);
  });

  it('a server killed under gRPC load costs no errors', async function () {
    this.timeout(30_000);
    const { client } = await start({ TRITON_HEALTH_INTERVAL_MS: '200' }, 2);
    for (const f of fakes) f.setLatency((rpc) => (rpc === 'ModelInfer' ? 2 : 0));
    const total = 300;
    let sent = 0;
    let done = 0;
    const errors: string[] = [];
    const worker = async () => {
      while (sent < total) {
        sent++;
        try {
          await client.call('ModelInfer', simpleInferRequest(A, B));
        } catch (e) {
          errors.push(String((e as Error).message));
        }
        if (++done === 60) fakes[0]!.kill();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.deepEqual(errors, []);
    assert.equal(done, total);
    assert.ok(fakes[1]!.callCount('ModelInfer') > total / 2);
  });
});
