import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startFakeTriton, simpleModel, type FakeTriton } from '../../../src/fake-triton';
import { ConfigError } from '../../../src/config';
import { silentLogger } from '../../../src/observability';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  simpleInferRequest,
  startGrpcTestProxy,
  streamInfer,
} from '../../helpers/grpc-client';
import { OtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver';
import { tokensModel } from '../streaming/support';
import { infer, REPO_ROOT } from './support';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;
const SERVER = 2;
const ONES = Array.from({ length: 16 }, () => 1);
const TWOS = Array.from({ length: 16 }, () => 2);
const CLIENT = 3;
const ERROR = 2;

/** The one span of a trace with no parent in the trace (the proxy's server span). */
function serverSpan(receiver: OtlpReceiver, traceId: string): ReceivedSpan {
  const spans = receiver.trace(traceId).filter((s) => s.kind === SERVER);
  assert.equal(
    spans.length,
    1,
    `one server span in ${JSON.stringify(receiver.spans.map((s) => s.name))}`,
  );
  return spans[0]!;
}

/** What the fake received as traceparent on its last call, split in its fields. */
function receivedTraceparent(fake: FakeTriton): { traceId: string; spanId: string; flags: string } {
  const value = fake.lastRequest?.metadata.get('traceparent')[0];
  assert.equal(typeof value, 'string', 'Triton received a traceparent');
  const [, traceId, spanId, flags] = String(value).split('-');
  return { traceId: traceId!, spanId: spanId!, flags: flags! };
}

describe('OpenTelemetry traces through the proxy (local OTLP/HTTP receiver, fake Triton over real gRPC)', () => {
  let receiver: OtlpReceiver;
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;

  beforeEach(async () => {
    receiver = await new OtlpReceiver().start();
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
    await receiver.stop();
  });

  /** Starts the proxy exporting to the receiver; the spans arrive when it closes (flush on shutdown). */
  async function startTraced(env: Record<string, string> = {}): Promise<TestProxy> {
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_SERVICE_NAME: 'proxy-under-test',
      ...env,
    });
    await waitFor(() => proxy!.proxy.fleet.readyCount() === fakes.length, 5000, 'ready servers');
    return proxy;
  }

  /** The same with the gRPC front end on, and a client for it (closed by the caller). */
  async function startTracedGrpc(): Promise<GrpcTestClient> {
    const p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    });
    proxy = p;
    await waitFor(() => p.proxy.fleet.readyCount() === fakes.length, 5000, 'ready servers');
    return new GrpcTestClient(p.grpcAddress);
  }

  async function closeAndFlush(): Promise<void> {
    await proxy!.close();
    proxy = undefined;
    assert.deepEqual(receiver.refused, [], 'every export was OTLP/JSON on /v1/traces');
  }

  it("continues the caller's trace: a server span with parse, queue, attempt and encode children, and Triton gets the attempt's context", async () => {
    fakes = await startFakes(1);
    const { url } = await startTraced();
    const ok = await infer(url, {
      headers: { traceparent: TRACEPARENT, 'x-request-id': 'otel-1' },
    });
    assert.equal(ok.status, 200, ok.body);
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    assert.equal(root.name, 'POST /v2/models/:model/infer');
    assert.equal(root.parentSpanId, CLIENT_SPAN, "the caller's span is the parent");
    assert.equal(root.attributes['http.request.method'], 'POST');
    assert.equal(root.attributes['http.route'], '/v2/models/:model/infer');
    assert.equal(root.attributes['url.path'], '/v2/models/simple/infer');
    assert.equal(root.attributes['http.response.status_code'], 200);
    assert.equal(root.attributes['triton_proxy.model'], 'simple');
    assert.equal(root.attributes['triton_proxy.request_id'], 'otel-1');
    assert.notEqual(root.statusCode, ERROR);
    assert.equal(root.resource['service.name'], 'proxy-under-test');

    const children = receiver.children(root);
    assert.deepEqual(
      children.map((c) => c.name),
      ['parse', 'queue', 'inference.GRPCInferenceService/ModelInfer', 'encode'],
    );
    for (const [i, child] of children.entries()) {
      assert.ok(
        child.startNs >= root.startNs && child.endNs <= root.endNs,
        `${child.name} within the request`,
      );
      assert.ok(child.endNs >= child.startNs);
      // One clock per request: each stage starts once the previous one is over.
      if (i > 0)
        assert.ok(
          child.startNs >= children[i - 1]!.endNs,
          `${child.name} after ${children[i - 1]!.name}`,
        );
    }
    const attempt = children[2]!;
    assert.equal(attempt.kind, CLIENT);
    assert.equal(attempt.attributes['triton_proxy.server'], 't0');
    assert.equal(attempt.attributes['server.address'], '127.0.0.1');
    assert.equal(attempt.attributes['server.port'], Number(fakes[0]!.address.split(':')[1]));
    assert.equal(attempt.attributes['triton_proxy.attempt'], 1);
    assert.equal(attempt.attributes['rpc.grpc.status_code'], 0);
    assert.equal(attempt.attributes['rpc.method'], 'ModelInfer');

    // Triton's own OpenTelemetry spans hang under the attempt.
    assert.deepEqual(sent, { traceId: TRACE_ID, spanId: attempt.spanId, flags: '01' });
  });

  it('records a retried request as two attempt spans on two servers, the failed one with its gRPC status', async () => {
    fakes = await startFakes(2);
    // t0 weighs far more: the balancer picks it first, and it fails once.
    const servers = `t0=${fakes[0]!.address}*1000,t1=${fakes[1]!.address}`;
    fakes[0]!.failNext({ code: grpc.status.UNAVAILABLE, rpc: 'ModelInfer', details: 'injected' });
    const { url } = await startTraced({ TRITON_SERVERS: servers, RETRY_MAX_ATTEMPTS: '2' });
    const ok = await infer(url, { headers: { traceparent: TRACEPARENT } });
    assert.equal(ok.status, 200, ok.body);
    const sent = receivedTraceparent(fakes[1]!);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    const attempts = receiver
      .children(root)
      .filter((c) => c.name === 'inference.GRPCInferenceService/ModelInfer');
    assert.equal(attempts.length, 2, JSON.stringify(receiver.children(root).map((c) => c.name)));
    const [first, second] = attempts as [ReceivedSpan, ReceivedSpan];
    assert.equal(first.attributes['triton_proxy.attempt'], 1);
    assert.equal(first.attributes['triton_proxy.server'], 't0');
    assert.equal(first.attributes['rpc.grpc.status_code'], grpc.status.UNAVAILABLE);
    assert.equal(first.attributes['error.type'], 'UPSTREAM_UNAVAILABLE');
    assert.equal(first.statusCode, ERROR);
    assert.equal(second.attributes['triton_proxy.attempt'], 2);
    assert.equal(second.attributes['triton_proxy.server'], 't1');
    assert.equal(second.attributes['rpc.grpc.status_code'], 0);
    assert.notEqual(second.statusCode, ERROR);
    assert.ok(second.startNs >= first.endNs, 'the retry starts after the first attempt ended');
    assert.equal(sent.spanId, second.spanId, 'each attempt sends its own span as parent');
    assert.notEqual(root.statusCode, ERROR, 'the request itself succeeded');
  });

  it('marks a failed request span as an error with its domain code and HTTP status', async () => {
    fakes = await startFakes(1);
    const { url } = await startTraced({ RETRY_MAX_ATTEMPTS: '1' });
    fakes[0]!.failNext({ code: grpc.status.INTERNAL, rpc: 'ModelInfer', details: 'boom' });
    const failed = await infer(url, { headers: { traceparent: TRACEPARENT } });
    assert.equal(failed.status, 500);
    const unknown = await infer(url, { model: 'nobody-has-it' });
    assert.equal(unknown.status, 404);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    assert.equal(root.statusCode, ERROR);
    assert.equal(root.attributes['error.type'], 'INTERNAL');
    assert.equal(root.attributes['http.response.status_code'], 500);
    const attempt = receiver.children(root).find((c) => c.kind === CLIENT);
    assert.equal(attempt?.attributes['rpc.grpc.status_code'], grpc.status.INTERNAL);

    // Without a traceparent the request starts a trace of its own.
    const notFound = receiver.spans.find(
      (s) => s.kind === SERVER && s.attributes['url.path'] === '/v2/models/nobody-has-it/infer',
    );
    assert.ok(notFound, 'the 404 has a span');
    assert.equal(notFound.parentSpanId, '');
    assert.notEqual(notFound.traceId, TRACE_ID);
    assert.equal(notFound.attributes['error.type'], 'MODEL_NOT_FOUND');
    assert.equal(notFound.attributes['http.response.status_code'], 404);
    assert.equal(notFound.statusCode, ERROR);
  });

  it('continues traceparent metadata on the gRPC front end and passes the attempt context to Triton', async () => {
    fakes = await startFakes(1);
    const client = await startTracedGrpc();
    try {
      const message = client.encode('ModelInfer', simpleInferRequest(ONES, TWOS));
      await client.inferBytes(message, { metadata: { traceparent: TRACEPARENT } });
      const ready = await client.call<{ ready: boolean }>(
        'ServerReady',
        {},
        { metadata: { traceparent: TRACEPARENT } },
      );
      assert.equal(ready.ready, true);
    } finally {
      client.client.close();
    }
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();

    const servers = receiver.trace(TRACE_ID).filter((s) => s.kind === SERVER);
    const infer = servers.find((s) => s.name === 'inference.GRPCInferenceService/ModelInfer');
    assert.ok(infer, JSON.stringify(servers.map((s) => s.name)));
    assert.equal(infer.parentSpanId, CLIENT_SPAN);
    assert.equal(infer.attributes['rpc.system'], 'grpc');
    assert.equal(infer.attributes['rpc.grpc.status_code'], 0);
    assert.equal(infer.attributes['triton_proxy.model'], 'simple');
    const children = receiver.children(infer);
    assert.deepEqual(
      children.map((c) => c.name),
      ['parse', 'queue', 'inference.GRPCInferenceService/ModelInfer'],
    );
    assert.equal(sent.spanId, children[2]!.spanId);
    assert.ok(
      servers.some((s) => s.name === 'inference.GRPCInferenceService/ServerReady'),
      'control RPCs have spans too',
    );
  });

  it('traces a gRPC ModelStreamInfer: the wait for admission, then the attempt whose context Triton receives', async () => {
    fakes = await startFakes(1);
    const client = await startTracedGrpc();
    try {
      const message = client.encode('ModelInfer', simpleInferRequest(ONES, TWOS));
      const out = await streamInfer(client, [message], { metadata: { traceparent: TRACEPARENT } });
      assert.equal(out.error, undefined);
      assert.equal(out.responses.length, 1);
    } finally {
      client.client.close();
    }
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    assert.equal(root.name, 'inference.GRPCInferenceService/ModelStreamInfer');
    assert.equal(root.attributes['triton_proxy.model'], 'simple');
    const children = receiver.children(root);
    assert.deepEqual(
      children.map((c) => c.name),
      ['queue', 'inference.GRPCInferenceService/ModelStreamInfer'],
    );
    assert.equal(sent.spanId, children[1]!.spanId);
  });

  it('traces generate_stream: parse, queue and a ModelStreamInfer attempt whose context Triton receives', async () => {
    fakes = [await startFakeTriton({ name: 'llm', models: [simpleModel(), tokensModel()] })];
    const { url } = await startTraced();
    const res = await fetch(`${url}/v2/models/tokens/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: TRACEPARENT },
      body: JSON.stringify({ COUNT: 3 }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(text.split('data: ').length - 1, 3, text);
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    assert.equal(root.name, 'POST /v2/models/:model/generate_stream');
    const children = receiver.children(root);
    assert.deepEqual(
      children.map((c) => c.name),
      ['parse', 'queue', 'inference.GRPCInferenceService/ModelStreamInfer'],
    );
    assert.equal(sent.spanId, children[2]!.spanId);
    assert.ok(root.endNs >= children[2]!.endNs);
  });

  it('marks a generate_stream span as an error when the stream breaks after its first event (the 200 was sent)', async () => {
    fakes = [await startFakeTriton({ name: 'llm', models: [simpleModel(), tokensModel()] })];
    fakes[0]!.failStreamAfter({
      afterResponses: 2,
      code: grpc.status.INTERNAL,
      details: 'device lost',
    });
    const { url } = await startTraced();
    const res = await fetch(`${url}/v2/models/tokens/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: TRACEPARENT },
      body: JSON.stringify({ COUNT: 5 }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.match(text, /device lost/);
    await closeAndFlush();

    const root = serverSpan(receiver, TRACE_ID);
    assert.equal(root.statusCode, ERROR);
    assert.equal(root.attributes['http.response.status_code'], 200);
    assert.equal(root.attributes['error.type'], 'INTERNAL');
    assert.match(root.statusMessage, /device lost/);
  });

  it('samples nothing with OTEL_TRACES_SAMPLER=always_off, and still passes the trace on to Triton unsampled', async () => {
    fakes = await startFakes(1);
    const { url } = await startTraced({ OTEL_TRACES_SAMPLER: 'always_off' });
    const ok = await infer(url);
    assert.equal(ok.status, 200, ok.body);
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();
    assert.deepEqual(receiver.spans, []);
    assert.equal(sent.flags, '00');
    assert.match(sent.traceId, /^[0-9a-f]{32}$/);
  });

  it('with parentbased_always_off traces only requests that come with a sampled traceparent', async () => {
    fakes = await startFakes(1);
    const { url } = await startTraced({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' });
    assert.equal((await infer(url)).status, 200);
    assert.equal((await infer(url, { headers: { traceparent: TRACEPARENT } })).status, 200);
    const sent = receivedTraceparent(fakes[0]!);
    await closeAndFlush();
    const servers = receiver.spans.filter((s) => s.kind === SERVER);
    assert.equal(servers.length, 1, JSON.stringify(servers.map((s) => s.traceId)));
    assert.equal(servers[0]!.traceId, TRACE_ID);
    assert.equal(sent.flags, '01');
  });

  it('counts the spans a refusing collector drops and warns about it once, naming its answer', async () => {
    fakes = await startFakes(1);
    receiver.failWith = 400;
    const warnings: Array<{ message: string; meta?: Record<string, unknown> }> = [];
    const logger = {
      ...silentLogger,
      warn: (message: string, meta?: Record<string, unknown>) => warnings.push({ message, meta }),
    };
    proxy = await startTestProxy(
      { TRITON_SERVERS: serversEnv(fakes), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint },
      { logger },
    );
    await waitFor(() => proxy!.proxy.fleet.readyCount() === 1, 5000, 'ready server');
    for (let i = 0; i < 3; i++) assert.equal((await infer(proxy.url)).status, 200);
    const { metrics } = proxy.proxy;
    await closeAndFlush();
    assert.ok(receiver.failedExports >= 1, 'the proxy tried to export');
    assert.equal(receiver.spans.length, 0);
    // Each request is a server span with parse, queue, attempt and encode children.
    const dropped = (
      await metrics.registry.getSingleMetric('triton_proxy_trace_spans_dropped_total')!.get()
    ).values[0]!.value;
    assert.equal(dropped, 3 * 5);
    const exportWarnings = warnings.filter((w) => /trace export failed/.test(w.message));
    assert.equal(exportWarnings.length, 1, JSON.stringify(warnings));
    assert.equal(exportWarnings[0]!.meta?.spansDropped, 15);
    assert.match(String(exportWarnings[0]!.meta?.error), /400/);
  });

  it('takes the batch limits from the OTEL_BSP_* variables: spans arrive after OTEL_BSP_SCHEDULE_DELAY, not 5 s', async () => {
    fakes = await startFakes(1);
    const { url } = await startTraced({
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
    });
    const started = performance.now();
    assert.equal((await infer(url, { headers: { traceparent: TRACEPARENT } })).status, 200);
    // Without the variable the first batch would leave 5 s later.
    await waitFor(
      () => receiver.trace(TRACE_ID).length === 5,
      3000,
      'the five spans of the request',
    );
    assert.ok(performance.now() - started < 3000);
    assert.ok(
      receiver.exports >= 3,
      `five spans in batches of at most two, not ${receiver.exports}`,
    );
  });

  it('refuses a sampler ratio outside 0..1 and an endpoint that is not an http URL, naming the variable', async () => {
    fakes = await startFakes(1);
    await assert.rejects(
      startTraced({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }),
      (err: Error) => err instanceof ConfigError && /OTEL_TRACES_SAMPLER_ARG/.test(err.message),
    );
    await assert.rejects(
      startTraced({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' }),
      (err: Error) =>
        err instanceof ConfigError && /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/.test(err.message),
    );
    await assert.rejects(
      startTraced({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200' }),
      (err: Error) =>
        err instanceof ConfigError &&
        /OTEL_BSP_MAX_EXPORT_BATCH_SIZE.*OTEL_BSP_MAX_QUEUE_SIZE/.test(err.message),
    );
    await assert.rejects(startTraced({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), (err: Error) =>
      /OTEL_TRACES_SAMPLER|tracing\.sampler/.test(err.message),
    );
  });

  it('loads no OpenTelemetry module and exports nothing when no endpoint is set (the default)', function () {
    this.timeout(60_000);
    // A fresh process: this one has loaded the SDK for the tests above.
    const script = path.join(__dirname, 'tracing-off-probe.ts');
    const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 55_000,
    });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const report = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
      status: number;
      otelModules: string[];
    };
    assert.equal(report.status, 200);
    assert.deepEqual(report.otelModules, []);
    assert.deepEqual(receiver.spans, []);
  });
});
