import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import {
  httpRequest,
  serversEnv,
  startFakes,
  startTestProxy,
  type TestProxy,
} from '../../helpers/proxy-harness';
import type { FakeTriton } from '../../../src/fake-triton';

interface RawAnswer {
  text: string;
  /** Time from the first byte sent until the connection was closed by the proxy. */
  closedAfterMs: number;
}

/** Sends `head`, then drips `drip` one byte every `everyMs`, until the proxy answers and closes. */
function slowClient(url: string, head: string, drip = '', everyMs = 100): Promise<RawAnswer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port: Number(port) });
    const started = performance.now();
    let text = '';
    let i = 0;
    const dripper = setInterval(() => {
      if (i < drip.length && socket.writable) socket.write(drip[i++]!);
    }, everyMs);
    const guard = setTimeout(() => {
      clearInterval(dripper);
      socket.destroy();
      reject(new Error(`no answer and no close within 8 s; got: ${text}`));
    }, 8000);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(dripper);
      clearTimeout(guard);
      resolve({ text, closedAfterMs: performance.now() - started });
    });
    socket.write(head);
  });
}

function jsonOf(text: string): Record<string, unknown> {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('front door: slow and malformed clients', function () {
  let fakes: FakeTriton[];
  let proxy: TestProxy;

  before(async () => {
    fakes = await startFakes(1);
    proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      HTTP_KEEPALIVE_TIMEOUT_MS: '300',
      HTTP_HEADERS_TIMEOUT_MS: '600',
      HTTP_BODY_TIMEOUT_MS: '600',
      MAX_BODY_BYTES: String(1024 * 1024),
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
  });

  // Bounds below are the timeout plus Node's check period plus a wide margin for a loaded machine.
  it('answers 408 with a JSON body and closes the connection when headers trickle in (slowloris)', async () => {
    const answer = await slowClient(
      proxy.url,
      'GET /v2/models/simple HTTP/1.1\r\nHost: x\r\n',
      'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    );
    assert.match(answer.text, /^HTTP\/1\.1 408 /);
    assert.match(answer.text, /content-type: application\/json/i);
    assert.equal(jsonOf(answer.text).code, 'REQUEST_TIMEOUT');
    assert.ok(answer.closedAfterMs >= 500, `closed after ${answer.closedAfterMs} ms`);
    assert.ok(answer.closedAfterMs < 4000, `closed after ${answer.closedAfterMs} ms`);
  });

  it('answers 408 REQUEST_TIMEOUT and closes the connection when a body stops arriving', async () => {
    const answer = await slowClient(
      proxy.url,
      'POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"inputs":',
      '[[[[[',
      200,
    );
    assert.match(answer.text, /^HTTP\/1\.1 408 /);
    assert.match(answer.text, /connection: close/i);
    const body = jsonOf(answer.text);
    assert.equal(body.code, 'REQUEST_TIMEOUT');
    assert.match(String(body.error), /request body not received within 600 ms/);
    assert.ok(answer.closedAfterMs < 4000, `closed after ${answer.closedAfterMs} ms`);
    assert.equal(fakes[0]!.callCount('ModelInfer'), 0);
  });

  it('answers a request the HTTP parser rejects with a JSON 400 instead of a bare status line', async () => {
    const answer = await slowClient(proxy.url, 'GARBAGE / NOT-HTTP\r\n\r\n');
    assert.match(answer.text, /^HTTP\/1\.1 400 /);
    const body = jsonOf(answer.text);
    assert.equal(body.code, 'INVALID_REQUEST');
    assert.match(String(body.error), /malformed HTTP request/);
  });

  it('stops inflating a gzip body at the size limit (a 64 MiB zip bomb costs 1 MiB)', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 200 * 1024, `bomb is ${bomb.length} bytes`);
    const answer = await httpRequest(`${proxy.url}/v2/models/simple/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: bomb,
    });
    assert.equal(answer.status, 413);
    assert.equal(answer.json.code, 'PAYLOAD_TOO_LARGE');
    assert.match(String(answer.json.error), /exceeds the limit of 1048576 bytes/);
  });
});
