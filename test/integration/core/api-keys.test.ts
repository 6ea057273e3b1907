import assert from 'node:assert/strict';
import { httpRequest, postJson, simpleRequest } from '../../helpers/proxy-harness';
import { inferUrl, startCore, type CoreSetup } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);

describe('API keys', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore({ API_KEYS: 'key-one, key-two' });
  });
  after(async () => {
    await core.close();
  });

  it('without a key, /v2 answers 401 UNAUTHENTICATED and Triton is not called', async () => {
    core.fake.resetCounters();
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-request-id': 'no-key',
    });
    assert.equal(answer.status, 401);
    assert.equal(answer.json.code, 'UNAUTHENTICATED');
    assert.equal(answer.json.request_id, 'no-key');
    assert.equal(core.fake.callCount('ModelInfer'), 0);
  });

  it('with a wrong key, /v2 answers 403 FORBIDDEN', async () => {
    const bearer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      authorization: 'Bearer key-three',
    });
    assert.equal(bearer.status, 403);
    assert.equal(bearer.json.code, 'FORBIDDEN');
    const header = await httpRequest(`${core.url}/v2/models/simple`, {
      headers: { 'x-api-key': 'key-on' },
    });
    assert.equal(header.status, 403);
  });

  it('an Authorization header that is not Bearer counts as no key', async () => {
    const answer = await httpRequest(`${core.url}/v2`, {
      headers: { authorization: 'Basic a2V5LW9uZQ==' },
    });
    assert.equal(answer.status, 401);
  });

  it('with a right key as Bearer or X-API-Key, /v2 answers 200', async () => {
    const bearer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      authorization: 'Bearer key-one',
    });
    assert.equal(bearer.status, 200);
    assert.equal(bearer.json.model_name, 'simple');
    const header = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A), {
      'x-api-key': 'key-two',
    });
    assert.equal(header.status, 200);
    const meta = await httpRequest(`${core.url}/v2/models/simple`, {
      headers: { 'x-api-key': 'key-one' },
    });
    assert.equal(meta.status, 200);
  });

  it('every /v2 route needs the key, health included', async () => {
    for (const path of ['/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/stats']) {
      const answer = await httpRequest(`${core.url}${path}`);
      assert.equal(answer.status, 401, path);
    }
  });

  it('the proxy probes and /metrics stay open without a key', async () => {
    for (const path of ['/health/live', '/health/ready', '/metrics']) {
      const answer = await httpRequest(`${core.url}${path}`);
      assert.equal(answer.status, 200, path);
    }
  });
});
