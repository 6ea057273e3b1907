import assert from 'node:assert/strict';
import { httpRequest, postJson, simpleRequest, waitFor } from '../../helpers/proxy-harness';
import { inferUrl, startCore, type CoreSetup } from './support';

const ONES = Array.from({ length: 16 }, () => 1);
const COUNT = Array.from({ length: 16 }, (_, i) => i);

interface IndexEntry {
  name: string;
  version: string;
  state: string;
  reason?: string;
}

describe('REST routes through the proxy', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore();
  });
  after(async () => {
    await core.close();
  });

  describe('server routes', () => {
    it('GET /v2 answers the server metadata with its extensions', async () => {
      const answer = await httpRequest(`${core.url}/v2`);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.name, 'triton');
      assert.equal(typeof answer.json.version, 'string');
      assert.ok((answer.json.extensions as string[]).includes('binary_tensor_data'));
      assert.ok((answer.json.extensions as string[]).includes('model_repository'));
    });

    it('GET /v2/health/live and /v2/health/ready answer 200 with an empty body', async () => {
      for (const path of ['/v2/health/live', '/v2/health/ready']) {
        const answer = await httpRequest(`${core.url}${path}`);
        assert.equal(answer.status, 200, path);
        assert.equal(answer.text, '', path);
      }
    });

    it('GET /v2/health/ready answers 400 once the only Triton server is not ready', async () => {
      const lone = await startCore({ TRITON_HEALTH_INTERVAL_MS: '50' });
      try {
        lone.fake.setReady(false);
        await waitFor(
          async () => (await httpRequest(`${lone.url}/v2/health/ready`)).status === 400,
          3000,
          'ready 400',
        );
        lone.fake.setReady(true);
        await waitFor(
          async () => (await httpRequest(`${lone.url}/v2/health/ready`)).status === 200,
          3000,
          'ready 200',
        );
      } finally {
        await lone.close();
      }
    });
  });

  describe('model routes', () => {
    for (const path of ['/v2/models/simple', '/v2/models/simple/versions/1']) {
      it(`GET ${path} answers the model metadata with numeric shapes`, async () => {
        const answer = await httpRequest(`${core.url}${path}`);
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.json.name, 'simple');
        assert.deepEqual(answer.json.versions, ['1']);
        assert.deepEqual(answer.json.inputs, [
          { name: 'INPUT0', datatype: 'INT32', shape: [-1, 16] },
          { name: 'INPUT1', datatype: 'INT32', shape: [-1, 16] },
        ]);
        assert.deepEqual(
          (answer.json.outputs as Array<{ name: string }>).map((o) => o.name),
          ['OUTPUT0', 'OUTPUT1'],
        );
      });
    }

    it('GET .../ready answers 200 for a ready model and version', async () => {
      for (const path of ['/v2/models/simple/ready', '/v2/models/simple/versions/1/ready']) {
        const answer = await httpRequest(`${core.url}${path}`);
        assert.equal(answer.status, 200, path);
      }
    });

    it('GET .../ready answers 400 for a version that does not exist, as Triton does', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/simple/versions/7/ready`);
      assert.equal(answer.status, 400);
    });

    it('GET .../ready answers 400 for an unknown model, as Triton does', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/no_such_model/ready`);
      assert.equal(answer.status, 400);
    });

    it('GET .../stats of an unknown model answers 400 naming it, as Triton does', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/no_such_model/stats`);
      assert.equal(answer.status, 400);
      assert.match(String(answer.json.error), /no_such_model/);
    });

    it('GET .../config answers the model configuration with numbers as numbers', async () => {
      for (const path of ['/v2/models/simple/config', '/v2/models/simple/versions/1/config']) {
        const answer = await httpRequest(`${core.url}${path}`);
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.json.name, 'simple');
        assert.equal(answer.json.max_batch_size, 8);
        const input = (
          answer.json.input as Array<{ name: string; data_type: string; dims: unknown[] }>
        )[0]!;
        assert.deepEqual([input.name, input.data_type, input.dims], ['INPUT0', 'TYPE_INT32', [16]]);
      }
    });

    it('GET .../config answers protobuf JSON as Triton prints it: no nulls, no oneof markers', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/simple/config`);
      assert.equal(answer.status, 200);
      // Protobuf's JSON printer leaves unset message fields out and names a oneof only by its set field.
      assert.doesNotMatch(answer.text, /:null\b/);
      assert.deepEqual(answer.json.version_policy, { latest: { num_versions: 1 } });
    });

    it('GET .../stats counts the inferences made through the proxy', async () => {
      const before = await httpRequest(`${core.url}/v2/models/simple/stats`);
      assert.equal(before.status, 200, before.text);
      const countOf = (body: Record<string, unknown>): number =>
        (body.model_stats as Array<{ name: string; inference_count: number }>).find(
          (s) => s.name === 'simple',
        )!.inference_count;
      const start = countOf(before.json);
      assert.equal(typeof start, 'number');
      const infer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES));
      assert.equal(infer.status, 200);
      const after = await httpRequest(`${core.url}/v2/models/simple/versions/1/stats`);
      assert.equal(after.status, 200);
      assert.equal(countOf(after.json), start + 1);
    });

    it('GET /v2/models/stats answers statistics of every model', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/stats`);
      assert.equal(answer.status, 200);
      const names = (answer.json.model_stats as Array<{ name: string }>).map((s) => s.name);
      for (const model of ['simple', 'identity_fp32', 'identity_bytes'])
        assert.ok(names.includes(model), model);
    });

    it('GET on an unknown model answers 404 naming the model', async () => {
      const answer = await httpRequest(`${core.url}/v2/models/no_such_model`);
      assert.equal(answer.status, 404);
      assert.equal(answer.json.code, 'MODEL_NOT_FOUND');
      assert.match(String(answer.json.error), /no_such_model/);
    });
  });

  describe('inference routes', () => {
    it('POST .../infer without a version uses the latest version', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES));
      assert.equal(answer.status, 200);
      assert.equal(answer.json.model_version, '1');
      assert.equal(core.fake.lastRequest!.request.model_version, '');
    });

    it('POST .../versions/{v}/infer sends the version to Triton', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple', '1'), simpleRequest(COUNT, ONES));
      assert.equal(answer.status, 200);
      assert.equal(answer.json.model_version, '1');
      assert.equal(core.fake.lastRequest!.request.model_version, '1');
    });

    it('POST .../versions/{v}/infer for a missing version answers 404', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple', '9'), simpleRequest(COUNT, ONES));
      assert.equal(answer.status, 404, JSON.stringify(answer.json));
      assert.match(String(answer.json.error), /simple/);
    });

    it("a version that is not a number answers 400 with Triton's message", async () => {
      const answer = await postJson(
        inferUrl(core.url, 'simple', 'abc'),
        simpleRequest(COUNT, ONES),
      );
      assert.equal(answer.status, 400, JSON.stringify(answer.json));
      assert.match(String(answer.json.error), /version string 'abc'/);
    });

    it('a version written with a leading zero is read as Triton reads it', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple', '01'), simpleRequest(COUNT, ONES));
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.equal(answer.json.model_version, '1');
    });

    it('GET on an infer path answers 405 Method Not Allowed without reaching Triton', async () => {
      core.fake.resetCounters();
      const answer = await httpRequest(inferUrl(core.url, 'simple'));
      assert.equal(answer.status, 405);
      assert.equal(answer.json.error, 'Method Not Allowed');
      assert.equal(answer.json.code, 'METHOD_NOT_ALLOWED');
      assert.equal(answer.headers.get('allow'), 'POST');
      assert.equal(core.fake.callCount('ModelInfer'), 0);
    });
  });

  describe('paths and methods nobody serves', () => {
    const cases: Array<
      [method: string, path: string, status: number, code: string, allow?: string]
    > = [
      ['POST', '/v2/models/simple/config', 405, 'METHOD_NOT_ALLOWED', 'GET, HEAD'],
      ['DELETE', '/v2', 405, 'METHOD_NOT_ALLOWED', 'GET, HEAD'],
      ['GET', '/v2/repository/index', 405, 'METHOD_NOT_ALLOWED', 'POST'],
      ['PUT', '/v2/repository/models/simple/load', 405, 'METHOD_NOT_ALLOWED', 'POST'],
      ['POST', '/health/ready', 405, 'METHOD_NOT_ALLOWED', 'GET, HEAD'],
      ['GET', '/v2/foo', 404, 'NOT_FOUND'],
      ['GET', '/v2/models/simple/infer/extra', 404, 'NOT_FOUND'],
      ['GET', '/foo', 404, 'NOT_FOUND'],
      ['POST', '/', 404, 'NOT_FOUND'],
    ];
    for (const [method, path, status, code, allow] of cases) {
      it(`${method} ${path} answers ${status} ${code}${allow ? ` with Allow: ${allow}` : ''}`, async () => {
        const answer = await httpRequest(`${core.url}${path}`, { method });
        assert.equal(answer.status, status, answer.text);
        assert.equal(answer.json.code, code);
        assert.equal(answer.headers.get('allow'), allow ?? null);
        assert.equal(answer.json.request_id, answer.headers.get('x-request-id'));
        if (status === 404) assert.equal(answer.json.error, `Not Found: ${method} ${path}`);
      });
    }

    it('HEAD on a GET path is served, as the Allow header says', async () => {
      const answer = await httpRequest(`${core.url}/v2/health/live`, { method: 'HEAD' });
      assert.equal(answer.status, 200);
    });
  });

  describe('model repository routes', () => {
    it('POST /v2/repository/index lists every model with its state', async () => {
      const answer = await httpRequest(`${core.url}/v2/repository/index`, {
        method: 'POST',
        body: '',
      });
      assert.equal(answer.status, 200);
      const index = answer.json as unknown as IndexEntry[];
      assert.ok(Array.isArray(index));
      const simple = index.find((e) => e.name === 'simple');
      // As Triton prints it: no `reason` when there is none.
      assert.deepEqual(simple, { name: 'simple', version: '1', state: 'READY' });
    });

    it('POST /v2/repository/index with {"ready":true} lists only ready models', async () => {
      core.fake.unloadModel('identity_int16');
      try {
        const all = await httpRequest(`${core.url}/v2/repository/index`, {
          method: 'POST',
          body: '{}',
        });
        const ready = await httpRequest(`${core.url}/v2/repository/index`, {
          method: 'POST',
          body: '{"ready":true}',
        });
        assert.equal(ready.status, 200);
        const allList = all.json as unknown as IndexEntry[];
        const readyList = ready.json as unknown as IndexEntry[];
        assert.equal(allList.find((e) => e.name === 'identity_int16')!.state, 'UNAVAILABLE');
        assert.equal(
          readyList.find((e) => e.name === 'identity_int16'),
          undefined,
        );
        assert.ok(readyList.length > 0 && readyList.every((e) => e.state === 'READY'));
      } finally {
        core.fake.loadModel('identity_int16');
      }
    });

    it('POST /v2/repository/index with a non-boolean ready answers 400', async () => {
      const answer = await httpRequest(`${core.url}/v2/repository/index`, {
        method: 'POST',
        body: '{"ready":"yes"}',
      });
      assert.equal(answer.status, 400);
      assert.match(String(answer.json.error), /ready/);
    });

    it('unload makes inference answer 404 as Triton does (no retry can help); load makes it work again', async () => {
      const unload = await httpRequest(`${core.url}/v2/repository/models/simple/unload`, {
        method: 'POST',
        body: '{}',
      });
      assert.equal(unload.status, 200, unload.text);
      assert.deepEqual(core.fake.modelStates('simple'), {
        '1': { state: 'UNAVAILABLE', reason: 'unloaded' },
      });

      core.fake.resetCounters();
      const refused = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES));
      assert.equal(refused.status, 404, JSON.stringify(refused.json));
      assert.equal(refused.json.code, 'MODEL_NOT_FOUND');
      assert.match(String(refused.json.error), /'simple' has no available versions/);
      assert.equal(refused.headers.get('retry-after'), null);
      assert.equal(core.fake.callCount('ModelInfer'), 0, 'answered from the shared state');

      const notReady = await httpRequest(`${core.url}/v2/models/simple/ready`);
      assert.equal(notReady.status, 400);

      const load = await httpRequest(`${core.url}/v2/repository/models/simple/load`, {
        method: 'POST',
        body: '',
      });
      assert.equal(load.status, 200, load.text);
      assert.equal(load.headers.get('x-triton-server'), 't0');
      assert.equal(core.fake.modelStates('simple')!['1']!.state, 'READY');

      const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(COUNT, ONES));
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(
        (answer.json.outputs as Array<{ data: number[] }>)[0]!.data,
        COUNT.map((c) => c + 1),
      );
    });

    it("load of a model the repository does not have answers Triton's 500 naming it, and the model stays unknown", async () => {
      const answer = await httpRequest(`${core.url}/v2/repository/models/not_in_repo/load`, {
        method: 'POST',
        body: '{}',
      });
      assert.equal(answer.status, 500);
      assert.equal(answer.json.code, 'INTERNAL');
      assert.match(String(answer.json.error), /failed to load 'not_in_repo'/);
      // A failed load must not leave the proxy believing the model exists somewhere.
      await waitFor(
        async () =>
          (await postJson(inferUrl(core.url, 'not_in_repo'), simpleRequest(COUNT, ONES))).status ===
          404,
        3000,
        'inference of the missing model to answer 404',
      );
    });
  });
});
