/**
 * Run in a fresh process by otel-tracing.test.ts: a proxy with the default
 * configuration (no OTLP endpoint) serves requests on every traced path, then
 * prints which OpenTelemetry SDK modules the process loaded (there must be none).
 */
import { startFakeTriton, simpleModel } from '../../../src/fake-triton';
import { startTestProxy, waitFor } from '../../helpers/proxy-harness';
import { tokensModel } from '../streaming/support';
import { SIMPLE_BODY } from './support';

async function main(): Promise<void> {
  const fake = await startFakeTriton({
    host: '127.0.0.1',
    port: 0,
    name: 'probe',
    models: [simpleModel(), tokensModel()],
  });
  // TRACING_ENABLED (traceparent pass-through) on: still no SDK without an endpoint.
  const proxy = await startTestProxy({
    TRITON_SERVERS: `t0=${fake.address}`,
    TRACING_ENABLED: 'true',
  });
  await waitFor(() => proxy.proxy.fleet.readyCount() === 1, 5000, 'ready server');
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await fetch(`${proxy.url}/v2/models/simple/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent },
    body: SIMPLE_BODY,
  });
  await res.text();
  const stream = await fetch(`${proxy.url}/v2/models/tokens/generate_stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent },
    body: JSON.stringify({ COUNT: 2 }),
  });
  await stream.text();
  await proxy.close();
  await fake.stop({ graceMs: 100 });
  // prom-client itself requires @opentelemetry/api (a no-op facade without an SDK); anything else is ours.
  const otelModules = Object.keys(require.cache).filter(
    (m) => m.includes('@opentelemetry') && !m.includes('@opentelemetry/api/'),
  );
  process.stdout.write(`${JSON.stringify({ status: res.status, otelModules })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
