import assert from 'node:assert/strict';
import { gzipSync, deflateSync } from 'node:zlib';
import {
  binaryBody,
  httpRequest,
  postBinary,
  postJson,
  rawHttp,
  simpleRequest,
} from '../../helpers/proxy-harness';
import { inferUrl, RAW_GRPC_TEXT, startCore, type CoreSetup } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);
const MAX_BODY_BYTES = 8192;

function int32Raw(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

function rawPost(path: string, headers: string[], body: Buffer | string): Buffer {
  const head = [
    `POST ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
    ...headers,
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

function chunked(body: Buffer, chunkSize: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunkSize) {
    const chunk = body.subarray(i, i + chunkSize);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

// Every case runs twice: JSON parsed on the event loop, and every JSON body
// parsed in the worker pool (threshold 0); both must answer the same.
const PARSERS: Array<{ where: string; env: Record<string, string> }> = [
  { where: 'parsed inline', env: {} },
  { where: 'parsed in a worker thread', env: { JSON_WORKER_THRESHOLD_BYTES: '0' } },
];

for (const parser of PARSERS)
  describe(`bad requests get a 4xx naming the problem (JSON ${parser.where})`, function () {
    let core: CoreSetup;

    before(async () => {
      core = await startCore({ MAX_BODY_BYTES: String(MAX_BODY_BYTES), ...parser.env });
    });
    after(async () => {
      await core.close();
    });

    async function expect400(
      body: string | Buffer,
      pattern: RegExp,
      headers: Record<string, string> = {},
    ): Promise<void> {
      const answer = await httpRequest(inferUrl(core.url, 'simple'), {
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      assert.equal(answer.status, 400, answer.text);
      assert.equal(answer.json.code, 'INVALID_REQUEST');
      assert.match(String(answer.json.error), pattern);
      assert.doesNotMatch(String(answer.json.error), RAW_GRPC_TEXT);
      assert.equal(typeof answer.json.request_id, 'string');
    }

    describe('JSON problems found by the proxy', () => {
      it('malformed JSON answers 400 saying the JSON could not be parsed', async () => {
        await expect400('{"inputs": [', /failed to parse the request JSON/);
      });

      it('a JSON value that is not an object answers 400', async () => {
        await expect400('[1,2,3]', /expected a JSON object/);
      });

      it('a missing inputs array answers 400 naming inputs', async () => {
        await expect400('{"id":"x"}', /'inputs'/);
      });

      it('fewer elements than the shape says answers 400 naming the input and both counts', async () => {
        const body = simpleRequest(A.slice(0, 15), A);
        await expect400(JSON.stringify(body), /input 'INPUT0'.*expects 16, got 15/);
      });

      it('more elements than the shape says answers 400 naming the input', async () => {
        const body = simpleRequest([...A, 99], A);
        await expect400(JSON.stringify(body), /input 'INPUT0'.*expects 16, got 17/);
      });

      it('a shape with a non-integer dimension answers 400 naming the input', async () => {
        const body = { inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, '16'], data: A }] };
        await expect400(JSON.stringify(body), /'shape' for input 'INPUT0'/);
      });

      it('an unknown datatype answers 400 naming it and the input', async () => {
        const body = simpleRequest([...A], [...A]) as { inputs: Array<Record<string, unknown>> };
        body.inputs[0]!.datatype = 'INT33';
        await expect400(JSON.stringify(body), /invalid datatype 'INT33' for input 'INPUT0'/);
      });

      it('a value outside the datatype range answers 400 naming the input and the value', async () => {
        const answer = await postJson(inferUrl(core.url, 'identity_int8'), {
          inputs: [{ name: 'INPUT0', datatype: 'INT8', shape: [1, 2], data: [1, 300] }],
        });
        assert.equal(answer.status, 400);
        assert.match(String(answer.json.error), /input 'INPUT0'.*INT8.*300/);
      });

      it('a string where a number belongs answers 400 naming the input', async () => {
        const body = simpleRequest([...A], [...A]) as { inputs: Array<{ data: unknown[] }> };
        body.inputs[1]!.data[3] = 'three';
        await expect400(JSON.stringify(body), /input 'INPUT1'.*"three"/);
      });

      it('BYTES marked base64 with text that is not base64 answers 400', async () => {
        const answer = await postJson(inferUrl(core.url, 'identity_bytes'), {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'BYTES',
              shape: [1, 1],
              data: ['not base64!'],
              parameters: { content_type: 'base64' },
            },
          ],
        });
        assert.equal(answer.status, 400);
        assert.match(String(answer.json.error), /base64/);
      });

      it('nesting deeper than Triton allows answers 400', async () => {
        let nested: unknown = [1];
        for (let i = 0; i < 150; i++) nested = [nested];
        const body = {
          inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 1], data: [nested] }],
        };
        const answer = await postJson(inferUrl(core.url, 'identity_int32'), body);
        assert.equal(answer.status, 400);
        assert.match(String(answer.json.error), /nesting depth/);
      });
    });

    describe('problems Triton finds', () => {
      it('a datatype the model does not take answers 400 naming the input (Triton INVALID_ARGUMENT)', async () => {
        const body = simpleRequest([...A], [...A]) as { inputs: Array<Record<string, unknown>> };
        body.inputs[0]!.datatype = 'FP32';
        await expect400(JSON.stringify(body), /INPUT0.*FP32|FP32.*INPUT0/);
      });

      it('an input name the model does not have answers 400 naming it (Triton INVALID_ARGUMENT)', async () => {
        const body = simpleRequest([...A], [...A]) as { inputs: Array<Record<string, unknown>> };
        body.inputs[1]!.name = 'INPUT9';
        await expect400(JSON.stringify(body), /INPUT9/);
      });

      it('an output the model does not have answers 400 naming it (Triton INVALID_ARGUMENT)', async () => {
        const body = { ...simpleRequest([...A], [...A]), outputs: [{ name: 'OUTPUT7' }] };
        await expect400(JSON.stringify(body), /OUTPUT7/);
      });

      it('a missing input answers 400 (Triton INVALID_ARGUMENT)', async () => {
        const body = simpleRequest([...A], [...A]) as { inputs: unknown[] };
        body.inputs.pop();
        await expect400(JSON.stringify(body), /input/);
      });
    });

    describe('binary extension problems', () => {
      const header = {
        inputs: [
          {
            name: 'INPUT0',
            datatype: 'INT32',
            shape: [1, 16],
            parameters: { binary_data_size: 64 },
          },
          {
            name: 'INPUT1',
            datatype: 'INT32',
            shape: [1, 16],
            parameters: { binary_data_size: 64 },
          },
        ],
      };

      it('an Inference-Header-Content-Length larger than the body answers 400 naming the header', async () => {
        const { body } = binaryBody(header, [int32Raw(A), int32Raw(A)]);
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: { 'inference-header-content-length': String(body.length + 1) },
          body,
        });
        assert.equal(answer.status, 400, answer.text);
        assert.match(String(answer.json.error), /Inference-Header-Content-Length/);
      });

      it('an Inference-Header-Content-Length that is not a number answers 400', async () => {
        const { body } = binaryBody(header, [int32Raw(A), int32Raw(A)]);
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: { 'inference-header-content-length': '12abc' },
          body,
        });
        assert.equal(answer.status, 400);
        assert.match(String(answer.json.error), /Inference-Header-Content-Length/);
      });

      it('a binary_data_size that does not match the shape answers 400 naming the input', async () => {
        const wrong = structuredClone(header);
        wrong.inputs[0]!.parameters.binary_data_size = 60;
        const answer = await postBinary(inferUrl(core.url, 'simple'), wrong, [
          int32Raw(A).subarray(0, 60),
          int32Raw(A),
        ]);
        assert.equal(answer.status, 400, answer.text);
        assert.match(String(answer.json.error), /input 'INPUT0'.*Expected 64, got 60/);
      });

      it('a body shorter than the binary_data_size values answers 400 naming the input', async () => {
        const answer = await postBinary(inferUrl(core.url, 'simple'), header, [
          int32Raw(A),
          int32Raw(A).subarray(0, 36),
        ]);
        assert.equal(answer.status, 400, answer.text);
        assert.match(String(answer.json.error), /input 'INPUT1'/);
      });

      it('bytes after the last binary input answers 400', async () => {
        const answer = await postBinary(inferUrl(core.url, 'simple'), header, [
          int32Raw(A),
          int32Raw(A),
          Buffer.alloc(8),
        ]);
        assert.equal(answer.status, 400, answer.text);
        assert.match(String(answer.json.error), /8 bytes/);
      });
    });

    describe('body size and encoding', () => {
      const big = JSON.stringify({ ...simpleRequest(A, A), id: 'x'.repeat(MAX_BODY_BYTES) });

      it('a body over MAX_BODY_BYTES with Content-Length answers 413 before it is read', async () => {
        const request = rawPost(
          '/v2/models/simple/infer',
          ['Content-Type: application/json', `Content-Length: ${MAX_BODY_BYTES * 100}`],
          big.slice(0, 100),
        );
        const answer = await rawHttp(core.url, request);
        assert.equal(answer.status, 413, answer.head);
        const body = JSON.parse(answer.body) as Record<string, unknown>;
        assert.equal(body.code, 'PAYLOAD_TOO_LARGE');
        assert.match(String(body.error), new RegExp(`limit of ${MAX_BODY_BYTES} bytes`));
      });

      it('a chunked body over MAX_BODY_BYTES answers 413', async () => {
        const request = rawPost(
          '/v2/models/simple/infer',
          ['Content-Type: application/json', 'Transfer-Encoding: chunked'],
          chunked(Buffer.from(big), 1000),
        );
        const answer = await rawHttp(core.url, request);
        assert.equal(answer.status, 413, answer.head);
        assert.equal(
          (JSON.parse(answer.body) as Record<string, unknown>).code,
          'PAYLOAD_TOO_LARGE',
        );
      });

      it('a chunked body within the limit is accepted', async () => {
        const request = rawPost(
          '/v2/models/simple/infer',
          ['Content-Type: application/json', 'Transfer-Encoding: chunked'],
          chunked(Buffer.from(JSON.stringify(simpleRequest(A, A))), 50),
        );
        const answer = await rawHttp(core.url, request);
        assert.equal(answer.status, 200, answer.body);
        assert.equal((JSON.parse(answer.body) as { model_name: string }).model_name, 'simple');
      });

      it('a gzip-compressed body is accepted', async () => {
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: gzipSync(JSON.stringify(simpleRequest(A, A))),
        });
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(
          (answer.json.outputs as Array<{ data: number[] }>)[0]!.data,
          A.map((a) => 2 * a),
        );
      });

      it('a deflate-compressed binary body is accepted', async () => {
        const header = {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'INT32',
              shape: [1, 16],
              parameters: { binary_data_size: 64 },
            },
            { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: A },
          ],
        };
        const { body, headerLength } = binaryBody(header, [int32Raw(A)]);
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: {
            'content-encoding': 'deflate',
            'inference-header-content-length': String(headerLength),
          },
          body: deflateSync(body),
        });
        assert.equal(answer.status, 200, answer.text);
      });

      it('a compressed body that inflates beyond MAX_BODY_BYTES answers 413', async () => {
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: gzipSync(Buffer.from(big)),
        });
        assert.equal(answer.status, 413, answer.text);
      });

      it('a gzip header on a body that is not gzip answers 400', async () => {
        await expect400(JSON.stringify(simpleRequest(A, A)), /decompress/, {
          'content-encoding': 'gzip',
        });
      });

      it('an unsupported Content-Encoding answers 400 naming it', async () => {
        await expect400(JSON.stringify(simpleRequest(A, A)), /Content-Encoding 'br'/, {
          'content-encoding': 'br',
        });
      });
    });

    describe('clients that go away', () => {
      it('a client that disconnects mid-request frees its admission slot and disturbs nothing', async () => {
        core.fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 400 : 0));
        try {
          const abort = new AbortController();
          const pending = fetch(inferUrl(core.url, 'simple'), {
            method: 'POST',
            body: JSON.stringify(simpleRequest(A, A)),
            signal: abort.signal,
          }).catch((err: unknown) => err);
          await new Promise((r) => setTimeout(r, 100));
          assert.equal(core.proxy.proxy.admission.stats().inflight, 1);
          abort.abort();
          assert.ok((await pending) instanceof Error);
          const end = Date.now() + 2000;
          while (core.proxy.proxy.admission.stats().inflight !== 0 && Date.now() < end) {
            await new Promise((r) => setTimeout(r, 10));
          }
          assert.equal(core.proxy.proxy.admission.stats().inflight, 0);
        } finally {
          core.fake.setLatency(0);
        }
      });

      it('an empty body answers 400', async () => {
        await expect400('', /JSON/);
      });

      it('Inference-Header-Content-Length 0 (raw binary request) answers 501 saying it is not supported', async () => {
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: { 'inference-header-content-length': '0' },
          body: int32Raw(A),
        });
        assert.equal(answer.status, 501);
        assert.equal(answer.json.code, 'UNSUPPORTED');
        assert.match(String(answer.json.error), /Inference-Header-Content-Length/);
      });
    });

    // Mocha runs a suite's own tests before its nested suites: this one sits in the last suite to run last.
    describe('after all of the above', () => {
      it('the process survives every bad request: a good request still succeeds', async () => {
        const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A));
        assert.equal(answer.status, 200);
        const live = await httpRequest(`${core.url}/health/live`);
        assert.equal(live.status, 200);
      });
    });
  });
