import { strict as assert } from 'node:assert';
import { status } from '@grpc/grpc-js';
import { simpleModel, startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import {
  httpRequest,
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { scrapeMetric } from '../fleet/support';
import { postStream, tokenEvent, tokensModel } from './support';

/** `simple` with the text-style inputs a generate client sends: INPUT0/INPUT1 INT32 [16], no batching. */
const plainSimple = () =>
  simpleModel({
    name: 'simple',
    maxBatchSize: 0,
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', dims: [16] },
      { name: 'INPUT1', datatype: 'INT32', dims: [16] },
    ],
    outputs: [
      { name: 'OUTPUT0', datatype: 'INT32', dims: [16] },
      { name: 'OUTPUT1', datatype: 'INT32', dims: [16] },
    ],
  });

const ones = Array.from({ length: 16 }, () => 1);
const counting = Array.from({ length: 16 }, (_, i) => i);

describe('generate and generate_stream through the proxy (fake Tritons over real gRPC, real HTTP)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  async function start(
    env: Record<string, string> = {},
    count = 1,
    intervalMs = 0,
  ): Promise<TestProxy> {
    fakes = await startFakes(count, { models: [plainSimple(), tokensModel({ intervalMs })] });
    proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes), ...env });
    await waitFor(
      () => proxy!.proxy.fleet.readyCount() === count,
      5000,
      `${count} ready server(s)`,
    );
    return proxy;
  }

  describe('generate', () => {
    it('maps top-level keys to inputs and the rest to parameters, and renders the answer as Triton does', async () => {
      const { url } = await start();
      const answer = await httpRequest(`${url}/v2/models/simple/generate`, {
        body: JSON.stringify({
          INPUT0: counting,
          INPUT1: ones,
          temperature: 0.5,
          parameters: { max_tokens: 7, stream: false },
        }),
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('content-type'), 'application/json');
      const sum = counting.map((v) => v + 1).join(',');
      const diff = counting.map((v) => v - 1).join(',');
      assert.equal(
        answer.text,
        `{"OUTPUT0":[${sum}],"OUTPUT1":[${diff}],"model_name":"simple","model_version":"1"}`,
      );
      const sent = fakes[0]!.lastRequest!;
      assert.equal(sent.rpc, 'ModelInfer');
      assert.deepEqual(
        sent.request.inputs.map((i) => [i.name, i.datatype, i.shape.map(Number)]),
        [
          ['INPUT0', 'INT32', [16]],
          ['INPUT1', 'INT32', [16]],
        ],
      );
      const params = sent.request.parameters;
      assert.equal(params['temperature']?.double_param, 0.5);
      assert.equal(String(params['max_tokens']?.int64_param), '7');
      assert.equal(params['stream']?.bool_param, false);
    });

    it('answers on a versioned path and returns the id the client sent', async () => {
      const { url } = await start();
      const answer = await httpRequest(`${url}/v2/models/tokens/versions/1/generate`, {
        body: JSON.stringify({ id: 'req-7', COUNT: 1 }),
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(
        answer.text,
        '{"INDEX":0,"TOKEN":"token 0","id":"req-7","model_name":"tokens","model_version":"1"}',
      );
      assert.equal(fakes[0]!.lastRequest!.rpc, 'ModelStreamInfer');
    });

    it("answers 200 with Triton's error body when a decoupled model gives more than one response", async () => {
      const { url } = await start();
      const answer = await httpRequest(`${url}/v2/models/tokens/generate`, {
        body: JSON.stringify({ COUNT: 3 }),
      });
      assert.equal(answer.status, 200);
      assert.equal(
        answer.text,
        '{"error":"generate expects model to produce exactly 1 response, use generate stream for model that generates various number of responses"}',
      );
    });

    it('refuses a request that misses an input with 400 naming it', async () => {
      const { url } = await start();
      const answer = await httpRequest(`${url}/v2/models/simple/generate`, {
        body: JSON.stringify({ INPUT0: counting }),
      });
      assert.equal(answer.status, 400);
      assert.match(String(answer.json.error), /missing required input\(s\) \['INPUT1'\]/);
    });

    it('refuses values that do not fit the input shape, a bad id and a bad parameter with 400', async () => {
      const { url } = await start();
      const cases: Array<[unknown, RegExp]> = [
        [{ INPUT0: [1, 2, 3], INPUT1: ones }, /can not convert input 'INPUT0'/],
        [{ id: 5, COUNT: 1 }, /Unable to parse 'id'/],
        [{ INPUT0: counting, INPUT1: ones, extra: [1] }, /parameter 'extra' has invalid type/],
        [{ INPUT0: counting, INPUT1: ones, parameters: 3 }, /Expected JSON object/],
        ['{"INPUT0": [', /failed to parse the request JSON/],
      ];
      for (const [body, expected] of cases) {
        const model = JSON.stringify(body).includes('COUNT') ? 'tokens' : 'simple';
        const answer = await httpRequest(`${url}/v2/models/${model}/generate`, {
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });
        assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${answer.text}`);
        assert.match(String(answer.json.error), expected);
      }
    });

    it('answers 404 for a model no server has', async () => {
      const { url } = await start();
      const answer = await httpRequest(`${url}/v2/models/nope/generate`, { body: '{}' });
      assert.equal(answer.status, 404);
      assert.match(String(answer.json.error), /unknown model: 'nope'/);
    });
  });

  describe('generate_stream', () => {
    it('sends each response as an event while the model produces them, framed as Triton frames them', async () => {
      const { url } = await start({}, 1, 250);
      let writtenAtFirstEvent = -1;
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: 4 },
        {
          onChunk: () => {
            if (writtenAtFirstEvent < 0)
              writtenAtFirstEvent = fakes[0]!.streamCounts.responsesWritten;
          },
        },
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(answer.headers['x-accel-buffering'], 'no');
      assert.equal(answer.text, [0, 1, 2, 3].map((i) => tokenEvent(i)).join(''));
      // The fake writes a response every 250 ms: the first event reached the
      // client while the model still had responses to write (not buffered).
      assert.ok(writtenAtFirstEvent < 4, `first event after ${writtenAtFirstEvent} writes`);
      assert.ok(answer.chunks.length >= 2, 'events arrive in separate chunks');
      // Arrival times show the spacing of the model's responses (a lower bound on one gap only).
      const gaps = answer.chunks.slice(1).map((c, i) => c.at - answer.chunks[i]!.at);
      assert.ok(
        Math.max(...gaps) >= 100,
        `gaps between chunks: ${gaps.map(Math.round).join(', ')} ms`,
      );
      assert.equal(fakes[0]!.lastRequest!.rpc, 'ModelStreamInfer');
    });

    it("keeps the client's id in every event", async () => {
      const { url } = await start();
      const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, {
        id: 'abc',
        COUNT: 2,
      });
      assert.equal(answer.text, tokenEvent(0, 'abc') + tokenEvent(1, 'abc'));
    });

    it('sends a failed response as an error event, as Triton does', async () => {
      const { url } = await start();
      fakes[0]!.failStreamAfter({ afterResponses: 1, inStream: true, details: 'model failed' });
      const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 3 });
      assert.equal(answer.status, 200);
      assert.equal(answer.text, `${tokenEvent(0)}data: {"error":"model failed"}\n\n`);
    });

    it('ends the stream with an error event when the server fails it after the first event', async () => {
      const { url } = await start();
      fakes[0]!.failStreamAfter({ afterResponses: 2, code: status.UNAVAILABLE, details: 'bye' });
      const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 5 });
      assert.equal(answer.status, 200);
      assert.equal(answer.events.length, 3);
      assert.ok(answer.text.startsWith(tokenEvent(0) + tokenEvent(1)));
      const last = JSON.parse(answer.events[2]!) as { error: string };
      assert.match(last.error, /Triton server 't0' is unavailable/);
      assert.equal(await scrapeMetric(url, 'triton_proxy_retries_total'), 0);
    });

    it('cancels the upstream stream at once when the client goes away', async () => {
      const { url } = await start({}, 1, 200);
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: 50 },
        { onChunk: (_text, _res, abort) => abort() },
      );
      assert.equal(answer.events.length <= 1, true);
      await waitFor(() => fakes[0]!.streamCounts.cancelled === 1, 3000, 'the fake saw the cancel');
      const written = fakes[0]!.streamCounts.responsesWritten;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(fakes[0]!.streamCounts.responsesWritten, written);
    });

    it('fails over to another server when the first one fails before the first event', async () => {
      const { url } = await start({ RETRY_MAX_ATTEMPTS: '3' }, 2);
      fakes[0]!.failAlways({ code: status.UNAVAILABLE, rpc: 'ModelStreamInfer' });
      // The picker chooses by load, so which server a request tries first is not
      // fixed: keep asking (bounded) until the failing one was tried at least once.
      for (let i = 0; i < 4 || (fakes[0]!.streamCounts.opened === 0 && i < 30); i++) {
        const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 2 });
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.text, tokenEvent(0) + tokenEvent(1));
      }
      assert.ok(fakes[0]!.streamCounts.opened > 0, 'the failing server was tried');
    });

    it('goes to a server that has the model (model-aware routing)', async () => {
      fakes = [
        await startFakeTriton({ name: 'plain', models: [plainSimple()] }),
        await startFakeTriton({ name: 'llm', models: [tokensModel()] }),
      ];
      proxy = await startTestProxy({ TRITON_SERVERS: serversEnv(fakes) });
      await waitFor(() => proxy!.proxy.fleet.readyCount() === 2, 5000, 'two ready servers');
      for (let i = 0; i < 3; i++) {
        const answer = await postStream(`${proxy.url}/v2/models/tokens/generate_stream`, {
          COUNT: 1,
        });
        assert.equal(answer.text, tokenEvent(0));
      }
      assert.equal(fakes[0]!.streamCounts.opened, 0);
      assert.equal(fakes[1]!.streamCounts.opened, 3);
    });

    it('does not fail over once an event was sent: a server dying mid-stream ends it with an error event', async () => {
      const { url } = await start({}, 2, 300);
      let victim: FakeTriton | undefined;
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: 10 },
        {
          onChunk: () => {
            if (victim !== undefined) return;
            victim = fakes.find((f) => f.streamCounts.opened > 0)!;
            victim.kill();
          },
        },
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.events[0], tokenEvent(0).slice(6, -2));
      const last = JSON.parse(answer.events.at(-1)!) as { error?: string };
      assert.ok(last.error, `last event is an error: ${answer.text}`);
      const other = fakes.find((f) => f !== victim)!;
      assert.equal(other.streamCounts.opened, 0, 'no retry after the first event');
    });

    it('answers a failure before the first event as a JSON error with its status', async () => {
      const { url } = await start({ RETRY_MAX_ATTEMPTS: '1' });
      const invalid = await postStream(`${url}/v2/models/tokens/generate_stream`, { NOPE: 1 });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.headers['content-type'], 'application/json');
      assert.match(invalid.text, /missing required input\(s\) \['COUNT'\]/);
      fakes[0]!.failAlways({ code: status.UNAVAILABLE, rpc: 'ModelStreamInfer' });
      const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 2 });
      assert.equal(answer.status, 503);
      assert.equal(answer.headers['content-type'], 'application/json');
      assert.match(answer.text, /"error":/);
    });

    it('ends an idle stream with an error event after STREAM_IDLE_TIMEOUT_MS', async () => {
      const { url } = await start({ STREAM_IDLE_TIMEOUT_MS: '300' }, 1, 2000);
      const answer = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 3 });
      assert.equal(answer.events.length, 2);
      assert.match(answer.events[1]!, /"error":/);
      await waitFor(() => fakes[0]!.streamCounts.cancelled === 1, 3000, 'the fake saw the cancel');
    });

    it('bounds the time to the first event by the request deadline', async () => {
      const { url } = await start();
      fakes[0]!.setLatency(3000);
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: 1 },
        { headers: { 'x-request-timeout-ms': '300' } },
      );
      assert.equal(answer.status, 504, answer.text);
    });

    it('holds the server back while the client reads nothing, and delivers everything once it reads', async () => {
      // 400 events of ~128 KiB of JSON (50 MiB): far more than the socket,
      // HTTP/2 and stream buffers hold, so a stalled reader must stall the
      // fake. What may pile up is bounded by the HTTP/2 window (1 MiB here,
      // GRPC_FLOW_CONTROL_WINDOW_BYTES), 16 messages on each side of grpc-js,
      // one event, and the kernel's socket buffers.
      const { url } = await start({ GRPC_FLOW_CONTROL_WINDOW_BYTES: String(1024 * 1024) });
      const count = 400;
      let paused = false;
      let heldAt = -1;
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: count, SIZE: 64 * 1024 },
        {
          onChunk: (_text, res) => {
            if (paused) return;
            paused = true;
            res.pause();
            void (async () => {
              // Wait until the fake stops writing (two equal samples), then read on.
              let last = -1;
              for (let i = 0; i < 30; i++) {
                await new Promise((r) => setTimeout(r, 300));
                const now = fakes[0]!.streamCounts.responsesWritten;
                if (now === last) {
                  heldAt = now;
                  break;
                }
                last = now;
              }
              res.resume();
            })();
          },
        },
      );
      assert.ok(heldAt >= 0, 'the fake stopped writing while the client read nothing');
      assert.ok(heldAt < count / 2, `held at ${heldAt} of ${count} responses`);
      assert.equal(answer.events.length, count);
    });

    it('counts an open stream in admission: a second one is refused while it runs', async () => {
      const { url } = await start({ MAX_INFLIGHT: '1', MAX_QUEUE: '0' }, 1, 300);
      const first = postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 4 });
      await waitFor(() => fakes[0]!.streamCounts.responsesWritten >= 1, 3000, 'first stream open');
      const second = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 1 });
      assert.equal(second.status, 429);
      assert.equal((await first).events.length, 4);
      const third = await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 1 });
      assert.equal(third.status, 200);
    });

    it('shows a stream waiting for admission in the queue gauge', async () => {
      const { url } = await start({ MAX_INFLIGHT: '1', MAX_QUEUE: '4' }, 1, 300);
      const first = postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 4 });
      await waitFor(() => fakes[0]!.streamCounts.responsesWritten >= 1, 3000, 'first stream open');
      const second = postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 1 });
      await waitFor(
        async () => (await scrapeMetric(url, 'triton_proxy_queue_depth')) === 1,
        3000,
        'queue depth 1',
      );
      assert.equal((await first).events.length, 4);
      assert.equal((await second).events.length, 1);
    });

    it('records time to first event, events per stream, duration and streams in flight', async () => {
      const { url } = await start();
      await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 3 });
      fakes[0]!.failStreamAfter({ afterResponses: 1, code: status.INTERNAL });
      await postStream(`${url}/v2/models/tokens/generate_stream`, { COUNT: 3 });
      const m = (name: string, labels: Record<string, string> = {}) =>
        scrapeMetric(url, name, { model: 'tokens', ...labels });
      assert.equal(await m('triton_proxy_stream_first_event_seconds_count'), 2);
      assert.equal(await m('triton_proxy_stream_events_sum', { outcome: 'ok' }), 3);
      assert.equal(await m('triton_proxy_stream_events_sum', { outcome: 'INTERNAL' }), 2);
      assert.equal(await m('triton_proxy_stream_duration_seconds_count'), 2);
      assert.equal(await m('triton_proxy_streams_in_flight'), 0);
    });

    it('lets an open stream finish when the proxy shuts down (SIGTERM path)', async () => {
      const { url, proxy: p } = await start({ SHUTDOWN_GRACE_MS: '10000' }, 1, 300);
      let shutdown: Promise<void> | undefined;
      const answer = await postStream(
        `${url}/v2/models/tokens/generate_stream`,
        { COUNT: 5 },
        { onChunk: () => void (shutdown ??= p.shutdown()) },
      );
      assert.equal(answer.text, [0, 1, 2, 3, 4].map((i) => tokenEvent(i)).join(''));
      await shutdown;
      proxy = undefined;
    });
  });
});
