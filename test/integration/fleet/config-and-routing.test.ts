import { strict as assert } from 'node:assert';
import { ConfigError, loadConfig } from '../../../src/config';
import { simpleModel, type FakeTriton } from '../../../src/fake-triton';
import { channelOptions } from '../../../src/triton/triton-client';
import {
  postJson,
  simpleRequest,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { inferUrl, runLoad, sleep } from './support';

const BODY = simpleRequest(new Array<number>(16).fill(1), new Array<number>(16).fill(1));

describe('fleet configuration: groups, routing rules, validation, channel options', () => {
  describe('routing rules over server groups', () => {
    let fakes: FakeTriton[] = [];
    let proxy: TestProxy | undefined;

    beforeEach(async () => {
      fakes = await startFakes(3);
      // Every server has every model, so only the rules can keep a model off a server.
      for (const f of fakes) {
        f.addModel(simpleModel({ name: 'llama-7b' }));
        f.addModel(simpleModel({ name: 'bert-1' }));
      }
      proxy = await startTestProxy({
        TRITON_SERVERS: `onnx-a=${fakes[0]!.address}@onnx,vllm-a=${fakes[1]!.address}@llm,vllm-b=${fakes[2]!.address}@llm`,
        TRITON_ROUTES: 'llama*=llm,bert-?=onnx',
        TRITON_HEALTH_INTERVAL_MS: '100',
      });
      await waitFor(() => proxy!.proxy.fleet.readyCount() === 3, 3000, 'three ready servers');
      await waitFor(
        () => proxy!.proxy.state.snapshot().readyServers('llama-7b', '').length === 3,
        3000,
        'repositories read',
      );
    });

    afterEach(async () => {
      await proxy?.close();
      proxy = undefined;
      await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
      fakes = [];
    });

    const callsFor = (model: string) => fakes.map((f) => f.callCount('ModelInfer', model));

    it('sends a model matching a rule only to servers of its group, and unmatched models anywhere', async () => {
      // Warm-up, so the measured runs are not a handful of slow first requests.
      await runLoad({ url: proxy!.url, clients: 4, durationMs: 300 });
      for (const f of fakes) f.resetCounters();
      for (const model of ['simple', 'llama-7b', 'bert-1']) {
        const samples = await runLoad({ url: proxy!.url, model, clients: 4, durationMs: 400 });
        assert.ok(
          samples.every((s) => s.status === 200),
          `${model}: all answered`,
        );
      }
      const [llama, bert, simple] = [callsFor('llama-7b'), callsFor('bert-1'), callsFor('simple')];
      console.log(
        `      routes: llama-7b ${llama.join('/')}, bert-1 ${bert.join('/')}, simple ${simple.join('/')} (onnx-a/vllm-a/vllm-b)`,
      );
      assert.equal(llama[0], 0, 'llama never reaches the onnx group');
      assert.ok(llama[1]! > 0 && llama[2]! > 0, 'llama spreads over the llm group');
      assert.ok(bert[0]! > 0 && bert[1] === 0 && bert[2] === 0, 'bert only on the onnx group');
      assert.ok(
        simple.every((n) => n > 0),
        'an unmatched model may use every server',
      );
    });

    it('answers 503 rather than leaving its group when every server of the group is down', async () => {
      fakes[1]!.kill();
      fakes[2]!.kill();
      await waitFor(() => proxy!.proxy.fleet.readyCount() === 1, 3000, 'llm group down');
      const res = await postJson(inferUrl(proxy!.url, 'llama-7b'), BODY);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(fakes[0]!.callCount('ModelInfer', 'llama-7b'), 0);
      assert.equal(
        (await postJson(inferUrl(proxy!.url, 'bert-1'), BODY)).status,
        200,
        'other groups still serve',
      );
    });
  });

  describe('server list validation at start', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['a=triton-a', 'no port', /TRITON_SERVERS entry 'a=triton-a'.*not host:port/],
      [
        'a=triton-a:99999',
        'port out of range',
        /TRITON_SERVERS entry 'a=triton-a:99999'.*out of range/,
      ],
      ['a=triton-a:8001*0', 'zero weight', /TRITON_SERVERS entry 'a=triton-a:8001\*0'.*weight/],
      ['a=triton-a:8001@', 'empty group', /TRITON_SERVERS entry 'a=triton-a:8001@'.*group/],
      [
        'bad name=triton-a:8001',
        'bad name',
        /TRITON_SERVERS entry 'bad name=triton-a:8001'.*server name/,
      ],
      [
        'a=triton-a:8001,a=triton-b:8001',
        'duplicate name',
        /TRITON_SERVERS.*duplicate Triton server name 'a'/,
      ],
      [
        'a=http://triton-a:8001',
        'a URL instead of host:port',
        /TRITON_SERVERS entry 'a=http:\/\/triton-a:8001'/,
      ],
    ];
    for (const [value, what, message] of cases) {
      it(`rejects ${what} with a ConfigError naming TRITON_SERVERS and the entry`, () => {
        assert.throws(
          () => loadConfig({ env: { TRITON_SERVERS: value } }),
          (err: unknown) => err instanceof ConfigError && message.test(err.message),
        );
      });
    }

    it('accepts a full entry with group and weight', () => {
      const config = loadConfig({
        env: { TRITON_SERVERS: 'a=triton-a:8001@llm*2, triton-b:8001' },
      });
      assert.deepEqual(
        config.triton.servers.map((s) => [s.name, s.address, s.group, s.weight]),
        [
          ['a', 'triton-a:8001', 'llm', 2],
          ['triton-b', 'triton-b:8001', 'default', 1],
        ],
      );
    });

    it('refuses to start with a routing rule that names no valid group', async () => {
      await assert.rejects(
        startTestProxy({ TRITON_SERVERS: 'a=127.0.0.1:1', TRITON_ROUTES: 'llama*=' }),
        /TRITON_ROUTES entry 1 "llama\*="/,
      );
      await sleep(0);
    });
  });

  describe('gRPC channel options', () => {
    it("keep pings within Triton's default server policy and allow large tensors", () => {
      const t = loadConfig({ env: { TRITON_SERVERS: 'a=triton-a:8001' } }).triton;
      const options = channelOptions(
        {
          maxMessageBytes: t.maxMessageBytes,
          keepaliveTimeMs: t.keepaliveTimeMs,
          keepaliveTimeoutMs: t.keepaliveTimeoutMs,
          flowControlWindowBytes: t.flowControlWindowBytes,
          connectTimeoutMs: t.connectTimeoutMs,
          channelsPerServer: t.channelsPerServer,
        },
        undefined,
        0,
      ) as Record<string, unknown>;
      // gRPC core (Triton) answers pings closer than 5 min without data with
      // GOAWAY too_many_pings, and refuses pings without calls unless told otherwise.
      assert.ok(
        (options['grpc.keepalive_time_ms'] as number) >= 5 * 60_000,
        'keepalive time >= 5 min',
      );
      assert.ok(!options['grpc.keepalive_permit_without_calls'], 'no pings without calls');
      assert.ok((options['grpc.keepalive_timeout_ms'] as number) > 0);
      assert.ok(
        (options['grpc.max_receive_message_length'] as number) >= 64 * 1024 * 1024,
        'receive limit >= 64 MiB',
      );
      assert.ok(
        (options['grpc.max_send_message_length'] as number) >= 64 * 1024 * 1024,
        'send limit >= 64 MiB',
      );
    });
  });
});
