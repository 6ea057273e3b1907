import assert from 'node:assert/strict';
import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gunzipSync, inflateSync } from 'node:zlib';
import { binaryBody, simpleRequest, waitFor } from '../../helpers/proxy-harness';
import { inferUrl, startCore, type CoreSetup } from './support';

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as it came over the wire (compressed when the answer says so). */
  wire: Buffer;
}

/** A POST through node:http, which (unlike fetch) leaves compressed bodies as they are. */
function post(url: string, body: Buffer, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, wire: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function decoded(answer: RawAnswer): Buffer {
  const coding = answer.headers['content-encoding'];
  if (coding === 'gzip') return gunzipSync(answer.wire);
  if (coding === 'deflate') return inflateSync(answer.wire);
  assert.equal(coding, undefined, `unexpected Content-Encoding ${String(coding)}`);
  return answer.wire;
}

/** identity_fp32 with `n` floats in, asked back as a binary output. */
function binaryIdentity(data: Buffer): { body: Buffer; headers: Record<string, string> } {
  const n = data.length / 4;
  const { body, headerLength } = binaryBody(
    {
      inputs: [
        {
          name: 'INPUT0',
          datatype: 'FP32',
          shape: [1, n],
          parameters: { binary_data_size: data.length },
        },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    },
    [data],
  );
  return {
    body,
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
    },
  };
}

/** identity_fp32 with `n` floats as JSON in and out: an answer of about 10 bytes per element. */
function jsonIdentity(n: number): Buffer {
  const data = Array.from({ length: n }, (_, i) => i / 8);
  return Buffer.from(
    JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, n], data }] }),
  );
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const ONES = Array.from({ length: 16 }, () => 1);

describe('response compression (Accept-Encoding)', function () {
  let core: CoreSetup;
  let url: string;

  before(async () => {
    core = await startCore();
    url = inferUrl(core.url, 'identity_fp32');
  });
  after(async () => {
    await core.close();
  });

  it('gzips a JSON answer above the threshold, streamed (no Content-Length), with Vary', async () => {
    const body = jsonIdentity(2000);
    const plain = await post(url, body, JSON_HEADERS);
    const gz = await post(url, body, { ...JSON_HEADERS, 'accept-encoding': 'gzip' });
    assert.equal(plain.status, 200);
    assert.equal(gz.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['vary'], 'Accept-Encoding');
    assert.equal(gz.headers['content-length'], undefined);
    assert.equal(gz.headers['transfer-encoding'], 'chunked');
    assert.equal(gz.headers['content-type'], plain.headers['content-type']);
    assert.deepEqual(decoded(gz), plain.wire);
    assert.ok(gz.wire.length < plain.wire.length / 2, `${gz.wire.length} vs ${plain.wire.length}`);
  });

  it('counts compressed answers and their bytes before and after in /metrics', async () => {
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${core.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const count = 'triton_proxy_compressed_responses_total{encoding="gzip"}';
    const before = await metric(count);
    const plainBefore = await metric(
      'triton_proxy_compressed_response_bytes_total{encoding="gzip",body="uncompressed"}',
    );
    const plain = await post(url, jsonIdentity(2000), JSON_HEADERS);
    const gz = await post(url, jsonIdentity(2000), { ...JSON_HEADERS, 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    // Counted once the server has handed the last bytes over, a moment after the client has them.
    await waitFor(async () => (await metric(count)) === before + 1, 2000, 'the answer counted');
    assert.equal(
      (await metric(
        'triton_proxy_compressed_response_bytes_total{encoding="gzip",body="uncompressed"}',
      )) - plainBefore,
      plain.wire.length,
    );
    assert.ok(
      (await metric(
        'triton_proxy_compressed_response_bytes_total{encoding="gzip",body="compressed"}',
      )) > 0,
    );
  });

  it('deflates a binary answer; Inference-Header-Content-Length still gives the uncompressed JSON header', async () => {
    const data = Buffer.alloc(64 * 1024);
    for (let i = 0; i < data.length / 4; i++) data.writeFloatLE(i % 7, i * 4);
    const { body, headers } = binaryIdentity(data);
    const plain = await post(url, body, headers);
    const df = await post(url, body, { ...headers, 'accept-encoding': 'deflate' });
    assert.equal(df.status, 200);
    assert.equal(df.headers['content-encoding'], 'deflate');
    const headerLength = Number(df.headers['inference-header-content-length']);
    assert.equal(headerLength, Number(plain.headers['inference-header-content-length']));
    const whole = decoded(df);
    assert.deepEqual(whole, plain.wire);
    const header = JSON.parse(whole.subarray(0, headerLength).toString('utf8')) as {
      outputs: Array<{ name: string; parameters: { binary_data_size: number } }>;
    };
    assert.equal(header.outputs[0]!.parameters.binary_data_size, data.length);
    assert.deepEqual(whole.subarray(headerLength), data);
  });

  it('leaves an answer below RESPONSE_COMPRESSION_MIN_BYTES as it is, with its Content-Length', async () => {
    const small = await post(
      inferUrl(core.url, 'simple'),
      Buffer.from(JSON.stringify(simpleRequest(ONES, ONES))),
      { ...JSON_HEADERS, 'accept-encoding': 'gzip, deflate' },
    );
    assert.equal(small.status, 200);
    assert.ok(small.wire.length < 1024, `${small.wire.length} bytes`);
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(Number(small.headers['content-length']), small.wire.length);
    // The answer depends on the header all the same.
    assert.equal(small.headers['vary'], 'Accept-Encoding');
  });

  const forms: Array<[acceptEncoding: string, coding: string | undefined]> = [
    ['gzip', 'gzip'],
    ['deflate', 'deflate'],
    ['gzip, deflate', 'gzip'],
    ['deflate, gzip', 'deflate'],
    ['deflate;q=0.5, gzip;q=0.8', 'gzip'],
    ['GZIP', 'gzip'],
    ['gzip;q=0', undefined],
    ['gzip;q=0.5, identity', undefined],
    ['identity', undefined],
    ['br, zstd', undefined],
    ['*', 'gzip'],
    ['gzip;q=0, *', 'deflate'],
    ['*;q=0', undefined],
    ['gzip;q=abc', undefined],
  ];
  for (const [acceptEncoding, coding] of forms) {
    it(`Accept-Encoding: ${acceptEncoding} -> ${coding ?? 'identity'}`, async () => {
      const answer = await post(url, jsonIdentity(500), {
        ...JSON_HEADERS,
        'accept-encoding': acceptEncoding,
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['content-encoding'], coding);
      const json = JSON.parse(decoded(answer).toString('utf8')) as { outputs: unknown[] };
      assert.equal(json.outputs.length, 1);
    });
  }

  it('does not compress error answers', async () => {
    const answer = await post(inferUrl(core.url, 'no_such_model'), jsonIdentity(500), {
      ...JSON_HEADERS,
      'accept-encoding': 'gzip',
    });
    assert.equal(answer.status, 404);
    assert.equal(answer.headers['content-encoding'], undefined);
    assert.match(answer.wire.toString('utf8'), /no_such_model/);
  });

  it('holds the answer in the in-flight byte budget while a slow client reads it, and frees it after', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    const { body, headers } = binaryIdentity(data);
    const inflightBytes = () => core.proxy.proxy.admission.stats().inflightBytes;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequestRaw(
        url,
        { method: 'POST', headers: { ...headers, 'accept-encoding': 'gzip' } },
        (res) => {
          assert.equal(res.headers['content-encoding'], 'gzip');
          // Read one chunk, then stop reading: zlib and the socket fill and stop.
          res.once('data', () => {
            res.pause();
            setTimeout(() => {
              try {
                assert.ok(
                  inflightBytes() >= data.length,
                  `${inflightBytes()} bytes held while the answer is unread`,
                );
              } catch (err) {
                reject(err as Error);
                return;
              }
              let received = 0;
              res.on('data', (c: Buffer) => (received += c.length));
              res.on('end', () => {
                // Random bytes do not compress: about the whole answer crossed the wire.
                assert.ok(received > data.length / 2, `${received} bytes`);
                resolve();
              });
              res.resume();
            }, 300);
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    await waitFor(() => inflightBytes() === 0, 5000, 'the answer bytes released');
  });

  it('stops compressing and releases the answer when the client disconnects mid-answer', async () => {
    const data = randomBytes(16 * 1024 * 1024);
    const { body, headers } = binaryIdentity(data);
    const inflightBytes = () => core.proxy.proxy.admission.stats().inflightBytes;
    let got = 0;
    await new Promise<void>((resolve) => {
      const req = httpRequestRaw(
        url,
        { method: 'POST', headers: { ...headers, 'accept-encoding': 'gzip' } },
        (res) => {
          res.on('data', (c: Buffer) => {
            got += c.length;
            if (got > 64 * 1024) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on('error', () => resolve());
      req.end(body);
    });
    assert.ok(got < data.length, `the client left after ${got} bytes`);
    await waitFor(() => inflightBytes() === 0, 5000, 'the answer bytes released');
    // The proxy is fine and the next client is served in full.
    const again = await post(url, jsonIdentity(2000), {
      ...JSON_HEADERS,
      'accept-encoding': 'gzip',
    });
    assert.equal(again.status, 200);
    assert.equal(again.headers['content-encoding'], 'gzip');
    assert.equal(
      (JSON.parse(decoded(again).toString('utf8')) as { outputs: unknown[] }).outputs.length,
      1,
    );
  });

  describe('switched off or with another threshold', () => {
    it('RESPONSE_COMPRESSION=false never compresses', async () => {
      const off = await startCore({ RESPONSE_COMPRESSION: 'false' });
      try {
        const answer = await post(inferUrl(off.url, 'identity_fp32'), jsonIdentity(2000), {
          ...JSON_HEADERS,
          'accept-encoding': 'gzip',
        });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['content-encoding'], undefined);
        assert.equal(Number(answer.headers['content-length']), answer.wire.length);
      } finally {
        await off.close();
      }
    });

    it('RESPONSE_COMPRESSION_MIN_BYTES=0 compresses even a small answer', async () => {
      const all = await startCore({ RESPONSE_COMPRESSION_MIN_BYTES: '0' });
      try {
        const answer = await post(
          inferUrl(all.url, 'simple'),
          Buffer.from(JSON.stringify(simpleRequest(ONES, ONES))),
          { ...JSON_HEADERS, 'accept-encoding': 'deflate' },
        );
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['content-encoding'], 'deflate');
        const json = JSON.parse(decoded(answer).toString('utf8')) as {
          outputs: Array<{ name: string; data: number[] }>;
        };
        assert.deepEqual(
          json.outputs[0]!.data,
          Array.from({ length: 16 }, () => 2),
        );
      } finally {
        await all.close();
      }
    });
  });
});
