import { strict as assert } from 'node:assert';
import { status } from '@grpc/grpc-js';
import type { FakeTriton } from '../../../src/fake-triton';
import type { Logger } from '../../../src/observability';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { infer } from './support';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

/** A logger that keeps what it is given. */
function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const keep = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push({ level, message, ...meta });
  };
  return {
    lines,
    logger: {
      error: keep('error'),
      warn: keep('warn'),
      info: keep('info'),
      debug: keep('debug'),
      isDebugEnabled: () => false,
    },
  };
}

describe('W3C trace context through the proxy', () => {
  let fake: FakeTriton;
  let proxy: TestProxy | undefined;

  beforeEach(async () => {
    [fake] = await startFakes(1);
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await fake.stop({ graceMs: 100 });
  });

  it('forwards traceparent to Triton as gRPC metadata and logs the trace id of a failed request', async () => {
    const { logger, lines } = recordingLogger();
    proxy = await startTestProxy(
      { TRITON_SERVERS: serversEnv([fake]), TRACING_ENABLED: 'true', RETRY_MAX_ATTEMPTS: '1' },
      { logger },
    );
    const ok = await infer(proxy.url, {
      headers: { traceparent: TRACEPARENT, 'x-request-id': 'trace-test-1' },
    });
    assert.equal(ok.status, 200, ok.body);
    const metadata = fake.lastRequest?.metadata;
    assert.deepEqual(metadata?.get('traceparent'), [TRACEPARENT]);
    assert.deepEqual(metadata?.get('x-request-id'), ['trace-test-1']);

    fake.failNext({ code: status.INTERNAL, rpc: 'ModelInfer', details: 'boom' });
    const failed = await infer(proxy.url, { headers: { traceparent: TRACEPARENT } });
    assert.equal(failed.status, 500);
    const logged = lines.find((l) => l.message === 'request failed');
    assert.equal(logged?.traceId, TRACE_ID, JSON.stringify(lines));
  });

  it('sends no traceparent when tracing is off (the default)', async () => {
    proxy = await startTestProxy({ TRITON_SERVERS: serversEnv([fake]) });
    const ok = await infer(proxy.url, { headers: { traceparent: TRACEPARENT } });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(fake.lastRequest?.metadata.get('traceparent'), []);
  });
});
