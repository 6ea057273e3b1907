import assert from 'node:assert/strict';
import { status as grpcStatus } from '@grpc/grpc-js';
import { httpRequest, parseBinaryAnswer, postBinary } from '../../helpers/proxy-harness';
import {
  A,
  B,
  int32Bytes,
  metricValue,
  postInfer,
  simpleBody,
  startCached,
  inferUrl,
  type CacheSetup,
} from './support';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('response cache (one replica, in-process tier)', function () {
  let s: CacheSetup;
  const calls = () => s.fake.callCount('ModelInfer', 'simple');

  beforeEach(async () => {
    s = await startCached();
  });
  afterEach(async () => {
    await s.close();
  });

  it('serves identical requests within the TTL from one upstream call, echoing each caller its own id', async () => {
    const first = await postInfer(s.url, 'simple', simpleBody(A, B, { id: 'first' }));
    const second = await postInfer(s.url, 'simple', simpleBody(A, B, { id: 'second' }));
    const third = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.equal(third.headers.get('x-cache'), 'HIT');
    assert.equal(calls(), 1);
    assert.equal(first.json.id, 'first');
    assert.equal(second.json.id, 'second');
    assert.equal(third.json.id, undefined, 'no id asked, none answered (as Triton)');
    assert.deepEqual(second.json.outputs, first.json.outputs);
    const out0 = (first.json.outputs as Array<{ name: string; data: number[] }>)[0]!;
    assert.deepEqual(
      out0.data,
      A.map((x, i) => x + B[i]!),
    );
    assert.equal(second.json.model_version, '1');
  });

  it('shares one entry between the JSON and the binary form of the same tensors', async () => {
    const json = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(json.headers.get('x-cache'), 'MISS');
    const binary = await postBinary(
      inferUrl(s.url, 'simple'),
      {
        id: 'bin',
        inputs: [
          {
            name: 'INPUT1',
            datatype: 'INT32',
            shape: [1, 16],
            parameters: { binary_data_size: 64 },
          },
          {
            name: 'INPUT0',
            datatype: 'INT32',
            shape: [1, 16],
            parameters: { binary_data_size: 64 },
          },
        ],
        parameters: { binary_data_output: true },
      },
      [int32Bytes(B), int32Bytes(A)],
    );
    assert.equal(binary.status, 200);
    assert.equal(binary.headers.get('x-cache'), 'HIT');
    assert.equal(calls(), 1);
    const parsed = parseBinaryAnswer(binary);
    assert.equal(parsed.header.id, 'bin');
    assert.deepEqual(parsed.binary.get('OUTPUT0'), int32Bytes(A.map((x, i) => x + B[i]!)));
  });

  it('does not share entries between different inputs, outputs or parameters', async () => {
    const other = A.map((x) => x * 3);
    const bodies = [
      simpleBody(),
      simpleBody(other),
      simpleBody(A, B, { outputs: [{ name: 'OUTPUT0' }] }),
      simpleBody(A, B, { outputs: [{ name: 'OUTPUT0', parameters: { classification: 2 } }] }),
      simpleBody(A, B, { parameters: { custom: 'x' } }),
    ];
    for (const body of bodies) {
      const answer = await postInfer(s.url, 'simple', body);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('x-cache'), 'MISS', JSON.stringify(body));
    }
    assert.equal(calls(), bodies.length);
    // Scheduling hints and the id do not change the answer: same entry.
    const hinted = await postInfer(
      s.url,
      'simple',
      simpleBody(A, B, { id: 'x', parameters: { priority: 1, timeout: 5_000_000 } }),
    );
    assert.equal(hinted.headers.get('x-cache'), 'HIT');
    assert.equal(calls(), bodies.length);
  });

  it('honours Cache-Control: no-store neither reads nor writes, no-cache refreshes the entry', async () => {
    const noStore = await postInfer(s.url, 'simple', simpleBody(), {
      'cache-control': 'no-store',
    });
    assert.equal(noStore.status, 200);
    assert.equal(noStore.headers.get('x-cache'), 'BYPASS');
    const first = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(first.headers.get('x-cache'), 'MISS', 'no-store left nothing behind');
    const refresh = await postInfer(s.url, 'simple', simpleBody(), {
      'cache-control': 'no-cache',
    });
    assert.equal(refresh.headers.get('x-cache'), 'BYPASS');
    assert.equal(calls(), 3);
    const after = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(after.headers.get('x-cache'), 'HIT');
    assert.equal(calls(), 3);
    const sb = `triton_proxy_cache_requests_total{model="simple",result="bypass"}`;
    assert.equal(await metricValue(s.url, sb), 2);
    assert.equal(
      await metricValue(s.url, `triton_proxy_cache_requests_total{model="simple",result="hit"}`),
      1,
    );
  });

  it('never caches error answers: the next identical request reaches Triton', async () => {
    s.fake.failNext({ rpc: 'ModelInfer', code: grpcStatus.INTERNAL, details: 'boom' });
    const failed = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(failed.status, 500);
    const ok = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-cache'), 'MISS');
    assert.equal(calls(), 2);
  });

  it('never caches sequence requests', async () => {
    const body = simpleBody(A, B, { parameters: { sequence_id: 7, sequence_start: true } });
    for (let i = 0; i < 2; i++) {
      const answer = await postInfer(s.url, 'simple', body);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('x-cache'), 'BYPASS');
    }
    assert.equal(calls(), 2);
  });

  it('leaves models that are not listed alone: no header, every request reaches Triton', async () => {
    const body = {
      inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 2], data: [1, 2] }],
    };
    for (let i = 0; i < 2; i++) {
      const answer = await postInfer(s.url, 'identity_int32', body);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('x-cache'), null);
    }
    assert.equal(s.fake.callCount('ModelInfer', 'identity_int32'), 2);
  });

  it('stops serving a model entries once it is reloaded through the proxy', async () => {
    assert.equal((await postInfer(s.url, 'simple', simpleBody())).headers.get('x-cache'), 'MISS');
    assert.equal((await postInfer(s.url, 'simple', simpleBody())).headers.get('x-cache'), 'HIT');
    const load = await httpRequest(`${s.url}/v2/repository/models/simple/load`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(load.status, 200, load.text);
    const after = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('x-cache'), 'MISS');
    assert.equal(calls(), 2);
    assert.ok((await metricValue(s.url, 'triton_proxy_cache_invalidations_total')) >= 1);
  });
});

describe('response cache expiry', function () {
  it('asks Triton again once the TTL is over', async () => {
    const s = await startCached({ CACHE_MODELS: 'simple:200ms' });
    try {
      assert.equal((await postInfer(s.url, 'simple', simpleBody())).headers.get('x-cache'), 'MISS');
      // Well past the TTL: expiry is certain here, however loaded the machine.
      await sleep(600);
      assert.equal((await postInfer(s.url, 'simple', simpleBody())).headers.get('x-cache'), 'MISS');
      assert.equal(s.fake.callCount('ModelInfer', 'simple'), 2);
    } finally {
      await s.close();
    }
  });
});
