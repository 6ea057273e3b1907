import assert from 'node:assert/strict';
import { httpRequest, postJson, simpleRequest } from '../../helpers/proxy-harness';
import { inferUrl, startCore, type CoreSetup } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore();
  });
  after(async () => {
    await core.close();
  });

  function sentToTriton(): { id: string; metadataId: string | undefined } {
    const last = core.fake.lastRequest!;
    const value = last.metadata.get('x-request-id')[0];
    return { id: last.request.id, metadataId: value === undefined ? undefined : String(value) };
  }

  it('echoes X-Request-ID and sends it to Triton as metadata and as the request id when the body has none', async () => {
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-request-id': 'client-id-1',
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-request-id'), 'client-id-1');
    assert.deepEqual(sentToTriton(), { id: 'client-id-1', metadataId: 'client-id-1' });
    // Triton only echoes an id the client put in the body.
    assert.equal('id' in answer.json, false);
  });

  it('keeps the body id for Triton and the response while the header id goes in the metadata', async () => {
    const answer = await postJson(
      inferUrl(core.url, 'simple'),
      { ...simpleRequest(A, A), id: 'body-id-7' },
      { 'x-request-id': 'header-id-7' },
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.json.id, 'body-id-7');
    assert.equal(answer.headers.get('x-request-id'), 'header-id-7');
    assert.deepEqual(sentToTriton(), { id: 'body-id-7', metadataId: 'header-id-7' });
  });

  it('generates an id when the client sends none, returns it and sends it to Triton', async () => {
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A));
    assert.equal(answer.status, 200);
    const generated = answer.headers.get('x-request-id')!;
    assert.match(generated, UUID);
    assert.deepEqual(sentToTriton(), { id: generated, metadataId: generated });
    assert.equal('id' in answer.json, false);
  });

  it('gives each request its own generated id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const answer = await httpRequest(`${core.url}/v2/health/live`);
      ids.add(answer.headers.get('x-request-id')!);
    }
    assert.equal(ids.size, 3);
  });

  it('replaces an X-Request-ID that is not short printable text', async () => {
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-request-id': 'x'.repeat(300),
    });
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('x-request-id')!, UUID);
  });

  it('puts the request id in the header and the body of an error from the proxy', async () => {
    const answer = await httpRequest(inferUrl(core.url, 'simple'), {
      headers: { 'content-type': 'application/json', 'x-request-id': 'bad-json-1' },
      body: '{oops',
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.headers.get('x-request-id'), 'bad-json-1');
    assert.equal(answer.json.request_id, 'bad-json-1');
  });

  it('puts the request id in the header and the body of an error from Triton', async () => {
    core.fake.failNext({ code: 13, details: 'boom', rpc: 'ModelInfer' });
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-request-id': 'upstream-err-1',
    });
    assert.equal(answer.status, 500);
    assert.equal(answer.headers.get('x-request-id'), 'upstream-err-1');
    assert.equal(answer.json.request_id, 'upstream-err-1');
    assert.equal(sentToTriton().metadataId, 'upstream-err-1');
  });

  it('puts a generated request id in an error body when the client sent none', async () => {
    const answer = await httpRequest(`${core.url}/v2/models/no_such_model`);
    assert.equal(answer.status, 404);
    assert.match(String(answer.json.request_id), UUID);
    assert.equal(answer.json.request_id, answer.headers.get('x-request-id'));
  });

  it('echoes the request id on control routes', async () => {
    const answer = await httpRequest(`${core.url}/v2/models/simple`, {
      headers: { 'x-request-id': 'meta-1' },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-request-id'), 'meta-1');
  });
});

describe('per-request timeout', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore({ TRITON_REQUEST_TIMEOUT_MS: '10000' });
    // Only inference is slow: health checks must keep the server ready.
    core.fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 3000 : 0));
  });
  after(async () => {
    core.fake.setLatency(0);
    await core.close();
  });

  it("Triton's timeout parameter (microseconds) bounds the deadline: a slow server answers 504 quickly", async () => {
    const started = Date.now();
    const answer = await postJson(
      inferUrl(core.url, 'simple'),
      { ...simpleRequest(A, A), parameters: { timeout: 150_000 } },
      { 'x-request-id': 'slow-1' },
    );
    const elapsed = Date.now() - started;
    assert.equal(answer.status, 504, JSON.stringify(answer.json));
    assert.equal(answer.json.code, 'UPSTREAM_TIMEOUT');
    assert.equal(answer.json.request_id, 'slow-1');
    assert.ok(elapsed >= 140 && elapsed < 1500, `answered after ${elapsed} ms`);
  });

  it('the X-Request-Timeout-Ms header bounds the deadline too', async () => {
    const started = Date.now();
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-request-timeout-ms': '150',
    });
    const elapsed = Date.now() - started;
    assert.equal(answer.status, 504, JSON.stringify(answer.json));
    assert.equal(answer.json.code, 'UPSTREAM_TIMEOUT');
    assert.ok(elapsed >= 140 && elapsed < 1500, `answered after ${elapsed} ms`);
  });

  it('an X-Request-Timeout-Ms that is not a positive integer answers 400 naming the header', async () => {
    for (const value of ['soon', '0', '-5', '1.5']) {
      const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
        'x-request-timeout-ms': value,
      });
      assert.equal(answer.status, 400, value);
      assert.match(String(answer.json.error), /X-Request-Timeout-Ms/);
    }
  });

  it('the timeout parameter is passed on to Triton', async () => {
    await postJson(inferUrl(core.url, 'simple'), {
      ...simpleRequest(A, A),
      parameters: { timeout: 50_000 },
    });
    const timeout = core.fake.lastRequest!.request.parameters.timeout;
    assert.equal(Number(timeout?.int64_param ?? timeout?.uint64_param), 50_000);
  });

  it('a request with no timeout parameter is bounded by the configured default only', async () => {
    core.fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 300 : 0));
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A));
    assert.equal(answer.status, 200);
  });
});
