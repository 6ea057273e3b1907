import assert from 'node:assert/strict';
import { status as grpcStatus } from '@grpc/grpc-js';
import { waitFor } from '../../helpers/proxy-harness';
import {
  A,
  B,
  inferUrl,
  metricValue,
  postInfer,
  simpleBody,
  startCached,
  type CacheSetup,
} from './support';

// Long enough that every concurrent request arrives while the first is in
// flight, even on a loaded 2-core machine; the tests never assert timings.
const SLOW_MS = 1500;

describe('request coalescing', function () {
  let s: CacheSetup;
  const calls = () => s.fake.callCount('ModelInfer', 'simple');

  afterEach(async () => {
    await s.close();
  });

  it('sends 20 concurrent identical requests to a slow model to Triton once, each caller getting its own id', async () => {
    s = await startCached({}, { latencyMs: (rpc) => (rpc === 'ModelInfer' ? SLOW_MS : 0) });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postInfer(s.url, 'simple', simpleBody(A, B, { id: `caller-${i}` })),
      ),
    );
    assert.equal(calls(), 1);
    const statuses = answers.map((a) => a.headers.get('x-cache'));
    assert.equal(statuses.filter((x) => x === 'MISS').length, 1, statuses.join(','));
    assert.ok(statuses.every((x) => x === 'MISS' || x === 'COALESCED' || x === 'HIT'));
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 200);
      assert.equal(answer.json.id, `caller-${i}`);
      const out0 = (answer.json.outputs as Array<{ name: string; data: number[] }>)[0]!;
      assert.deepEqual(
        out0.data,
        A.map((x, j) => x + B[j]!),
      );
    });
    const coalesced = statuses.filter((x) => x === 'COALESCED').length;
    assert.equal(
      await metricValue(s.url, 'triton_proxy_cache_coalesced_total{model="simple"}'),
      coalesced,
    );
  });

  it('coalesces models listed only in COALESCE_MODELS without caching their answers', async () => {
    s = await startCached(
      { CACHE_MODELS: '', COALESCE_MODELS: 'simple' },
      { latencyMs: (rpc) => (rpc === 'ModelInfer' ? SLOW_MS : 0) },
    );
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => postInfer(s.url, 'simple', simpleBody())),
    );
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(calls(), 1);
    assert.equal((await postInfer(s.url, 'simple', simpleBody())).status, 200);
    assert.equal(calls(), 2, 'nothing was stored');
  });

  it('keeps the shared call going for the others when one waiter disconnects', async () => {
    s = await startCached({}, { latencyMs: (rpc) => (rpc === 'ModelInfer' ? SLOW_MS : 0) });
    const leaving = new AbortController();
    const first = fetch(inferUrl(s.url, 'simple'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(simpleBody()),
      signal: leaving.signal,
    }).catch((e: unknown) => e);
    await waitFor(() => calls() === 1, 5000, 'the first call to reach Triton');
    const others = Array.from({ length: 3 }, (_, i) =>
      postInfer(s.url, 'simple', simpleBody(A, B, { id: `stays-${i}` })),
    );
    await new Promise((r) => setTimeout(r, 100));
    leaving.abort();
    assert.ok((await first) instanceof Error);
    const answers = await Promise.all(others);
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      assert.equal(a.json.id, `stays-${i}`);
    });
    assert.equal(calls(), 1);
  });

  it('gives an upstream error to every waiter once, without a call per waiter', async () => {
    s = await startCached({}, { latencyMs: (rpc) => (rpc === 'ModelInfer' ? SLOW_MS : 0) });
    s.fake.failNext({ rpc: 'ModelInfer', code: grpcStatus.INTERNAL, details: 'model crashed' });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => postInfer(s.url, 'simple', simpleBody())),
    );
    assert.equal(calls(), 1);
    for (const a of answers) {
      assert.equal(a.status, 500);
      assert.match(String(a.json.error), /model crashed/);
    }
    // Nothing was stored: the next request asks again and succeeds.
    const after = await postInfer(s.url, 'simple', simpleBody());
    assert.equal(after.status, 200);
    assert.equal(calls(), 2);
  });

  it('does not coalesce when COALESCE_MODELS is none', async () => {
    s = await startCached(
      { COALESCE_MODELS: 'none' },
      { latencyMs: (rpc) => (rpc === 'ModelInfer' ? 500 : 0) },
    );
    const answers = await Promise.all(
      Array.from({ length: 3 }, () => postInfer(s.url, 'simple', simpleBody())),
    );
    assert.ok(answers.every((a) => a.status === 200));
    assert.ok(answers.every((a) => a.headers.get('x-cache') !== 'COALESCED'));
  });
});
