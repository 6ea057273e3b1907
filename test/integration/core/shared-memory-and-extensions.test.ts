import assert from 'node:assert/strict';
import { httpRequest, simpleRequest, type HttpAnswer } from '../../helpers/proxy-harness';
import { startCore, type CoreSetup } from './support';
import { TRITON_EXTENSIONS } from '../../../src/protocol';

/** Every extension Triton 2.51 lists in GET /v2 (the conformance suite compares what the proxy lists with the real server). */
const TRITON_2_51_EXTENSIONS = [...TRITON_EXTENSIONS];

const COUNT = Array.from({ length: 16 }, (_, i) => i);

function postJson(url: string, body: unknown): Promise<HttpAnswer> {
  return httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function inferWith(url: string, extra: Record<string, unknown>): Promise<HttpAnswer> {
  return postJson(`${url}/v2/models/simple/infer`, { ...simpleRequest(COUNT, COUNT), ...extra });
}

/** One request that uses each extension, answered 200 only when the proxy really serves it. */
const USES: Record<string, (url: string) => Promise<HttpAnswer>> = {
  classification: (url) =>
    inferWith(url, { outputs: [{ name: 'OUTPUT0', parameters: { classification: 2 } }] }),
  sequence: (url) =>
    inferWith(url, { parameters: { sequence_id: 42, sequence_start: true, sequence_end: true } }),
  schedule_policy: (url) => inferWith(url, { parameters: { priority: 1, timeout: 10_000_000 } }),
  binary_tensor_data: (url) => inferWith(url, { parameters: { binary_data_output: true } }),
  parameters: (url) => inferWith(url, { parameters: { custom_key: 'value' } }),
  model_repository: (url) => postJson(`${url}/v2/repository/index`, {}),
  'model_repository(unload_dependents)': (url) =>
    postJson(`${url}/v2/repository/models/simple/load`, {}),
  model_configuration: (url) => httpRequest(`${url}/v2/models/simple/config`),
  statistics: (url) => httpRequest(`${url}/v2/models/simple/stats`),
  trace: (url) => httpRequest(`${url}/v2/trace/setting`),
  logging: (url) => httpRequest(`${url}/v2/logging`),
};

/** Calls of Triton's shared-memory RPCs the fake received (the proxy answers these itself). */
function sharedMemoryCalls(core: CoreSetup): number {
  return Object.entries(core.fake.calls.byRpc)
    .filter(([rpc]) => rpc.includes('SharedMemory'))
    .reduce((sum, [, n]) => sum + n, 0);
}

describe('extensions the proxy lists, and shared memory refused with a reason', function () {
  let core: CoreSetup;

  before(async () => {
    // A server that lists every extension Triton 2.51 does.
    core = await startCore({}, { extensions: TRITON_2_51_EXTENSIONS });
  });
  after(async () => {
    await core.close();
  });

  describe('GET /v2 extensions', () => {
    it("lists Triton's extensions except shared memory, which the proxy cannot serve", async () => {
      const answer = await httpRequest(`${core.url}/v2`);
      assert.equal(answer.status, 200);
      assert.deepEqual(
        answer.json.extensions,
        TRITON_2_51_EXTENSIONS.filter((e) => !e.endsWith('shared_memory')),
      );
    });

    it('serves every extension it lists: a request using each one is answered 200', async () => {
      const listed = (await httpRequest(`${core.url}/v2`)).json.extensions as string[];
      for (const extension of listed) {
        const use = USES[extension];
        assert.ok(use, `no request exercises listed extension '${extension}'`);
        const answer = await use(core.url);
        assert.equal(answer.status, 200, `${extension}: ${answer.status} ${answer.text}`);
      }
    });

    it('lists only extensions the answering server lists too', async () => {
      const limited = await startCore({}, { extensions: ['statistics', 'logging'] });
      try {
        const answer = await httpRequest(`${limited.url}/v2`);
        assert.deepEqual(answer.json.extensions, ['statistics', 'logging']);
      } finally {
        await limited.close();
      }
    });
  });

  describe('shared memory', () => {
    for (const [kind, label] of [
      ['systemsharedmemory', 'system'],
      ['cudasharedmemory', 'cuda'],
    ] as const) {
      it(`GET /v2/${kind}/status answers [] without asking Triton`, async () => {
        core.fake.resetCounters();
        const answer = await httpRequest(`${core.url}/v2/${kind}/status`);
        assert.equal(answer.status, 200);
        assert.equal(answer.text, '[]');
        assert.equal(answer.headers.get('content-type'), 'application/json');
        assert.equal(sharedMemoryCalls(core), 0);
      });

      it(`GET /v2/${kind}/region/{r}/status answers 404 for the region, as Triton does`, async () => {
        const answer = await httpRequest(`${core.url}/v2/${kind}/region/input0/status`);
        assert.equal(answer.status, 404);
        assert.equal(answer.json.code, 'NOT_FOUND');
        assert.equal(answer.json.error, `Unable to find ${label} shared memory region: 'input0'`);
      });

      it(`refuses ${label} register and unregister with 501 UNSUPPORTED saying why and what to use instead`, async () => {
        core.fake.resetCounters();
        for (const path of [
          `/v2/${kind}/region/input0/register`,
          `/v2/${kind}/region/input0/unregister`,
          `/v2/${kind}/unregister`,
        ]) {
          const answer = await postJson(`${core.url}${path}`, { key: '/shm0', byte_size: 64 });
          assert.equal(answer.status, 501, path);
          assert.equal(answer.json.code, 'UNSUPPORTED', path);
          assert.match(String(answer.json.error), /cannot map it/, path);
          assert.match(String(answer.json.error), /binary tensor data extension/, path);
        }
        assert.equal(sharedMemoryCalls(core), 0);
      });

      it(`answers 405 for /v2/${kind} paths asked with another method`, async () => {
        const status = await httpRequest(`${core.url}/v2/${kind}/status`, {
          method: 'POST',
          body: '{}',
        });
        assert.equal(status.status, 405);
        assert.equal(status.json.code, 'METHOD_NOT_ALLOWED');
        assert.equal(status.headers.get('allow'), 'GET, HEAD');
        const register = await httpRequest(`${core.url}/v2/${kind}/region/r/register`);
        assert.equal(register.status, 405);
        assert.equal(register.headers.get('allow'), 'POST');
      });
    }
  });
});
