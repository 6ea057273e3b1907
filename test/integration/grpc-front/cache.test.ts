import assert from 'node:assert/strict';
import type { FakeTriton } from '../../../src/fake-triton';
import { postJson, serversEnv, simpleRequest, startFakes } from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  int32sOf,
  simpleInferRequest,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';

const A = Array.from({ length: 16 }, (_, i) => i);
const B = Array.from({ length: 16 }, () => 1);

describe('gRPC front end: response cache shared with REST', () => {
  let fake: FakeTriton;
  let p: GrpcTestProxy;
  let client: GrpcTestClient;

  before(async () => {
    [fake] = (await startFakes(1)) as [FakeTriton];
    p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv([fake]),
      RETRY_MAX_ATTEMPTS: '1',
      CACHE_MODELS: 'simple:10m',
    });
    client = new GrpcTestClient(p.grpcAddress);
  });
  after(async () => {
    client.close();
    await p.close();
    await fake.stop();
  });

  it('answers a repeated ModelInfer from the cache, with the id of each request', async () => {
    const first = await client.inferBytes(
      client.encode('ModelInfer', simpleInferRequest(A, A, { id: 'one' })),
    );
    const second = await client.inferBytes(
      client.encode('ModelInfer', simpleInferRequest(A, A, { id: 'two' })),
    );
    assert.deepEqual(first.headers.get('x-cache'), ['MISS']);
    assert.deepEqual(second.headers.get('x-cache'), ['HIT']);
    assert.equal(fake.callCount('ModelInfer', 'simple'), 1);
    const decoded = client.decodeResponse<{ id: string; raw_output_contents: Buffer[] }>(
      'ModelInfer',
      second.value,
    );
    assert.equal(decoded.id, 'two');
    assert.deepEqual(
      int32sOf(decoded.raw_output_contents[0]!),
      A.map((a) => 2 * a),
    );
  });

  it('shares entries with REST: a gRPC request hits what a REST request stored', async () => {
    const before = fake.callCount('ModelInfer', 'simple');
    const rest = await postJson(`${p.url}/v2/models/simple/infer`, simpleRequest(B, B));
    assert.equal(rest.status, 200);
    assert.equal(rest.headers.get('x-cache'), 'MISS');
    const grpc = await client.inferBytes(client.encode('ModelInfer', simpleInferRequest(B, B)));
    assert.deepEqual(grpc.headers.get('x-cache'), ['HIT']);
    assert.equal(fake.callCount('ModelInfer', 'simple'), before + 1);
  });

  it('forwards models the cache does not handle without an x-cache answer', async () => {
    const answer = await client.inferBytes(
      client.encode('ModelInfer', {
        model_name: 'identity',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1] }],
        raw_input_contents: [Buffer.alloc(4)],
      }),
    );
    assert.deepEqual(answer.headers.get('x-cache'), []);
  });
});
