import assert from 'node:assert/strict';
import { httpRequest, postJson, simpleRequest } from '../../helpers/proxy-harness';
import { inferUrl, startCore, type CoreSetup } from './support';

const ONES = Array.from({ length: 16 }, () => 1);
const COUNT = Array.from({ length: 16 }, (_, i) => i);

/** Sum of the HTTP histogram's _count samples whose labels include all of `labels`. */
async function httpCount(url: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('triton_proxy_http_request_duration_seconds_count{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('infer served beside express', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore({ API_KEYS: 'k1' });
  });
  after(async () => {
    await core.close();
  });

  it('answers the canonical infer path and the spellings express serves alike', async () => {
    const key = { 'x-api-key': 'k1' };
    const canonical = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES), key);
    const slash = await postJson(
      `${inferUrl(core.url, 'simple')}/`,
      simpleRequest(COUNT, ONES),
      key,
    );
    const versioned = await postJson(
      inferUrl(core.url, 'simple', '1'),
      simpleRequest(COUNT, ONES),
      key,
    );
    for (const answer of [canonical, slash, versioned]) {
      assert.equal(answer.status, 200);
      assert.ok(answer.headers.get('x-request-id'));
    }
    assert.deepEqual(canonical.json.outputs, slash.json.outputs);
    assert.deepEqual(canonical.json.outputs, versioned.json.outputs);
  });

  it('keeps the front door: no key is 401, a wrong method is 405, an unknown model 404', async () => {
    const anonymous = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES));
    assert.equal(anonymous.status, 401);
    const get = await httpRequest(inferUrl(core.url, 'simple'), { headers: { 'x-api-key': 'k1' } });
    assert.equal(get.status, 405);
    const unknown = await postJson(inferUrl(core.url, 'nope'), simpleRequest(COUNT, ONES), {
      'x-api-key': 'k1',
    });
    assert.equal(unknown.status, 404);
  });

  it('records the HTTP histogram with the route template, status and client', async () => {
    const labels = { method: 'POST', path: '/v2/models/#model/infer', status_code: '200' };
    const before = await httpCount(core.url, labels);
    await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES), { 'x-api-key': 'k1' });
    assert.equal(await httpCount(core.url, labels), before + 1);
    const refused = { method: 'POST', path: '/v2/models/#model/infer', status_code: '401' };
    assert.ok((await httpCount(core.url, { ...refused, client: 'none' })) >= 1);
  });
});
