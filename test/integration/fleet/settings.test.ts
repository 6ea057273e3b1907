import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  httpRequest,
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type HttpAnswer,
  type TestProxy,
} from '../../helpers/proxy-harness';

const TRITON_LOG_DEFAULTS = {
  log_file: '',
  log_info: true,
  log_warning: true,
  log_error: true,
  log_verbose_level: 0,
  log_format: 'default',
};

const TRITON_TRACE_DEFAULTS = {
  trace_level: ['OFF'],
  trace_rate: '1000',
  trace_count: '-1',
  log_frequency: '0',
  trace_file: '',
  trace_mode: 'triton',
};

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('logging and trace settings across the fleet', function () {
  let fakes: FakeTriton[];
  let proxy: TestProxy;
  let url: string;

  before(async () => {
    fakes = await startFakes(2);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      ALLOW_UNAUTHENTICATED_ADMIN: 'true',
      RETRY_MAX_ATTEMPTS: '1',
      BREAKER_VOLUME_THRESHOLD: '100000',
    });
    url = proxy.url;
    await waitFor(
      async () => (await httpRequest(`${url}/health/ready`)).status === 200,
      10_000,
      'proxy ready',
    );
  });
  after(async () => {
    await proxy.close();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
  });
  afterEach(async () => {
    for (const f of fakes) {
      f.clearFailures();
      // Every test starts from Triton's start-up settings on both servers.
      f.resetSettings();
      if (!f.running) await f.restart();
    }
    // Both servers answer again (a restarted one after the proxy's reconnect).
    for (const server of ['t0', 't1']) {
      await waitFor(
        async () => (await httpRequest(`${url}/v2/logging?server=${server}`)).status === 200,
        10_000,
        `${server} answering through the proxy`,
      );
    }
  });

  describe('logging', () => {
    it('GET /v2/logging answers the log settings of one server as Triton writes them', async () => {
      const answer = await httpRequest(`${url}/v2/logging`);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.text, JSON.stringify(TRITON_LOG_DEFAULTS));
      assert.match(answer.headers.get('x-triton-server') ?? '', /^t[01]$/);
    });

    it('POST /v2/logging changes every server and answers the new settings', async () => {
      const answer = await post(`${url}/v2/logging`, { log_verbose_level: 2, log_info: false });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, {
        ...TRITON_LOG_DEFAULTS,
        log_info: false,
        log_verbose_level: 2,
      });
      assert.equal(answer.headers.get('x-triton-server'), 't0,t1');
      for (const f of fakes) {
        assert.equal(f.logSettings().log_verbose_level, 2, f.name);
        assert.equal(f.logSettings().log_info, false, f.name);
      }
    });

    it('changes only the server named by ?server= or X-Triton-Server, and reads from it', async () => {
      const byQuery = await post(`${url}/v2/logging?server=t1`, { log_verbose_level: 3 });
      assert.equal(byQuery.status, 200, byQuery.text);
      assert.equal(byQuery.headers.get('x-triton-server'), 't1');
      assert.equal(fakes[0]!.logSettings().log_verbose_level, 0);
      assert.equal(fakes[1]!.logSettings().log_verbose_level, 3);

      const byHeader = await post(
        `${url}/v2/logging`,
        { log_warning: false },
        { 'x-triton-server': 't0' },
      );
      assert.equal(byHeader.status, 200, byHeader.text);
      assert.equal(fakes[0]!.logSettings().log_warning, false);
      assert.equal(fakes[1]!.logSettings().log_warning, true);

      const read = await httpRequest(`${url}/v2/logging?server=t1`);
      assert.equal(read.json.log_verbose_level, 3);
      assert.equal(read.headers.get('x-triton-server'), 't1');
    });

    it('refuses a value of the wrong type with 400 naming the setting, before any server is asked', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ log_info: 'yes' }, /'log_info' must be a boolean/],
        [{ log_verbose_level: -1 }, /'log_verbose_level' must be an integer from 0/],
        [{ log_format: 1 }, /'log_format' must be a string/],
        [
          { custom: { nested: true } },
          /'custom' must be a boolean, an unsigned integer or a string/,
        ],
        [[1, 2], /log settings must be a JSON object/],
        ['{"log_info": tru', /failed to parse log settings JSON/],
      ];
      for (const f of fakes) f.resetCounters();
      for (const [body, message] of cases) {
        const answer = await post(`${url}/v2/logging`, body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.json.code, 'INVALID_REQUEST');
        assert.match(String(answer.json.error), message);
      }
      assert.equal(fakes[0]!.callCount('LogSettings') + fakes[1]!.callCount('LogSettings'), 0);
    });

    it("passes Triton's own refusal through with its status (log_file cannot change over the network)", async () => {
      const answer = await post(`${url}/v2/logging`, { log_file: '/tmp/x.log' });
      assert.equal(answer.status, 501, answer.text);
      assert.equal(answer.json.code, 'UNSUPPORTED');
      assert.match(String(answer.json.error), /log file location can not be updated/);
      // null is ignored, as Triton's HTTP endpoint ignores it.
      const ignored = await post(`${url}/v2/logging`, { log_file: null });
      assert.equal(ignored.status, 200, ignored.text);
    });

    it('reports per server when one server fails the update and the other applies it (502 PARTIAL_FAILURE)', async () => {
      fakes[1]!.failNext({ code: status.INTERNAL, details: 'log sink broken', rpc: 'LogSettings' });
      const answer = await post(`${url}/v2/logging`, { log_verbose_level: 1 });
      assert.equal(answer.status, 502, answer.text);
      assert.equal(answer.json.code, 'PARTIAL_FAILURE');
      assert.match(String(answer.json.error), /applied on 1 of 2 Triton servers; failed on 't1'/);
      const servers = answer.json.servers as Record<string, Record<string, unknown>>;
      assert.equal((servers.t0!.settings as Record<string, unknown>).log_verbose_level, 1);
      assert.equal(servers.t1!.code, 'INTERNAL');
      assert.match(String(servers.t1!.error), /log sink broken/);
      assert.equal(fakes[0]!.logSettings().log_verbose_level, 1);
      assert.equal(fakes[1]!.logSettings().log_verbose_level, 0);
    });

    it('reports a server that is down as failed, not skipped, and still changes the others', async () => {
      await fakes[1]!.stop({ graceMs: 50 });
      const answer = await post(`${url}/v2/logging`, { log_verbose_level: 4 });
      assert.equal(answer.status, 502, answer.text);
      assert.equal(answer.json.code, 'PARTIAL_FAILURE');
      const servers = answer.json.servers as Record<string, Record<string, unknown>>;
      assert.equal(servers.t1!.code, 'UPSTREAM_UNAVAILABLE');
      assert.ok(servers.t0!.settings, answer.text);
      assert.equal(fakes[0]!.logSettings().log_verbose_level, 4);
      // Reads still work from the server that is up.
      const read = await httpRequest(`${url}/v2/logging?server=t0`);
      assert.equal(read.status, 200, read.text);
    });

    it('answers the common error when every server refuses for the same reason', async () => {
      for (const f of fakes)
        f.failNext({ code: status.UNAVAILABLE, details: 'Server not ready', rpc: 'LogSettings' });
      const answer = await post(`${url}/v2/logging`, { log_verbose_level: 1 });
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.json.code, 'UPSTREAM_UNAVAILABLE');
    });

    it('refuses an unknown server name with 400 listing the known ones', async () => {
      const answer = await post(`${url}/v2/logging?server=nope`, { log_verbose_level: 1 });
      assert.equal(answer.status, 400);
      assert.match(String(answer.json.error), /unknown Triton server 'nope' \(known: t0, t1\)/);
    });

    it('answers 405 for another method, as Triton does', async () => {
      const answer = await httpRequest(`${url}/v2/logging`, { method: 'PUT', body: '{}' });
      assert.equal(answer.status, 405);
      assert.equal(answer.json.code, 'METHOD_NOT_ALLOWED');
      assert.equal(answer.headers.get('allow'), 'GET, HEAD, POST');
    });
  });

  describe('trace settings', () => {
    it('GET /v2/trace/setting answers the global trace settings as Triton writes them', async () => {
      const answer = await httpRequest(`${url}/v2/trace/setting`);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.text, JSON.stringify(TRITON_TRACE_DEFAULTS));
    });

    it('POST /v2/trace/setting changes every server; null clears a setting back to its default', async () => {
      const changed = await post(`${url}/v2/trace/setting`, {
        trace_rate: '50',
        trace_count: '10',
      });
      assert.equal(changed.status, 200, changed.text);
      assert.deepEqual(changed.json, {
        ...TRITON_TRACE_DEFAULTS,
        trace_rate: '50',
        trace_count: '10',
      });
      for (const f of fakes) assert.deepEqual(f.traceSettings().trace_rate, ['50'], f.name);

      const cleared = await post(`${url}/v2/trace/setting`, { trace_count: null });
      assert.equal(cleared.status, 200, cleared.text);
      assert.equal(cleared.json.trace_count, '-1');
      assert.equal(cleared.json.trace_rate, '50');
    });

    it("a model's trace settings override the global ones on the servers that have it, and null reverts them", async () => {
      const set = await post(`${url}/v2/models/simple/trace/setting`, { trace_rate: '7' });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.json.trace_rate, '7');
      assert.equal(set.headers.get('x-triton-server'), 't0,t1');
      const model = await httpRequest(`${url}/v2/models/simple/trace/setting`);
      assert.equal(model.json.trace_rate, '7');
      const global = await httpRequest(`${url}/v2/trace/setting`);
      assert.equal(global.json.trace_rate, '1000');

      const reverted = await post(`${url}/v2/models/simple/trace/setting`, { trace_rate: null });
      assert.equal(reverted.json.trace_rate, '1000');
      for (const f of fakes) assert.deepEqual(f.traceSettings('simple').trace_rate, ['1000']);
    });

    it("changes a model's trace settings only on the servers that have it loaded", async () => {
      const unload = await post(`${url}/v2/repository/models/identity_int8/unload?server=t1`, {});
      assert.equal(unload.status, 200, unload.text);
      try {
        const set = await post(`${url}/v2/models/identity_int8/trace/setting`, {
          trace_rate: '3',
        });
        assert.equal(set.status, 200, set.text);
        assert.equal(set.headers.get('x-triton-server'), 't0');
        assert.deepEqual(fakes[0]!.traceSettings('identity_int8').trace_rate, ['3']);
        assert.deepEqual(fakes[1]!.traceSettings('identity_int8').trace_rate, ['1000']);
        const read = await httpRequest(`${url}/v2/models/identity_int8/trace/setting`);
        assert.equal(read.headers.get('x-triton-server'), 't0');
        assert.equal(read.json.trace_rate, '3');
      } finally {
        const load = await post(`${url}/v2/repository/models/identity_int8/load?server=t1`, {});
        assert.equal(load.status, 200, load.text);
      }
    });

    it("answers Triton's 400 for the trace settings of a model no server has", async () => {
      const read = await httpRequest(`${url}/v2/models/nope/trace/setting`);
      assert.equal(read.status, 400, read.text);
      assert.match(String(read.json.error), /Request for unknown model : nope/);
      const write = await post(`${url}/v2/models/nope/trace/setting`, { trace_rate: '1' });
      assert.equal(write.status, 400, write.text);
    });

    it('refuses values that are not strings, lists of strings or null with 400 naming the setting', async () => {
      for (const f of fakes) f.resetCounters();
      for (const body of [{ trace_rate: 5 }, { trace_level: [1] }, { trace_count: true }]) {
        const answer = await post(`${url}/v2/trace/setting`, body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.match(
          String(answer.json.error),
          new RegExp(`trace setting '${Object.keys(body)[0]}' must be a string`),
        );
      }
      assert.equal(fakes[0]!.callCount('TraceSetting') + fakes[1]!.callCount('TraceSetting'), 0);
    });

    it("passes Triton's validation through (one OFF level only, a number that does not parse)", async () => {
      const levels = await post(`${url}/v2/trace/setting`, { trace_level: ['OFF', 'TIMESTAMPS'] });
      assert.equal(levels.status, 400, levels.text);
      assert.match(String(levels.json.error), /Expect only one trace level 'OFF'/);
      const rate = await post(`${url}/v2/trace/setting`, { trace_rate: 'abc' });
      assert.equal(rate.status, 400, rate.text);
      assert.match(String(rate.json.error), /Unable to parse 'trace_rate', got: abc/);
    });

    it('reports per server when one server returns an error for a trace update', async () => {
      fakes[0]!.failNext({ code: status.UNAVAILABLE, rpc: 'TraceSetting' });
      const answer = await post(`${url}/v2/trace/setting`, { trace_rate: '20' });
      assert.equal(answer.status, 502, answer.text);
      const servers = answer.json.servers as Record<string, Record<string, unknown>>;
      assert.equal(servers.t0!.code, 'UPSTREAM_UNAVAILABLE');
      assert.equal((servers.t1!.settings as Record<string, unknown>).trace_rate, '20');
    });
  });
});
