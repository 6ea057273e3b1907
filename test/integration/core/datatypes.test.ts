import assert from 'node:assert/strict';
import {
  bytesTensor,
  httpRequest,
  parseBinaryAnswer,
  parseJsonExact,
  postBinary,
  postJson,
  simpleRequest,
  stringifyExact,
} from '../../helpers/proxy-harness';
import { identityModelFor, inferUrl, SAMPLES, startCore, type CoreSetup } from './support';

const A = Array.from({ length: 16 }, (_, i) => i * 3 - 7);
const B = Array.from({ length: 16 }, (_, i) => 100 - i * i);
const SUM = A.map((a, i) => a + B[i]!);
const DIFF = A.map((a, i) => a - B[i]!);

function int32Raw(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

interface OutputJson {
  name: string;
  datatype: string;
  shape: unknown[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

function outputsOf(body: unknown): OutputJson[] {
  return (body as { outputs: OutputJson[] }).outputs;
}

describe('tensor round trips through the proxy', function () {
  let core: CoreSetup;

  before(async () => {
    core = await startCore();
  });
  after(async () => {
    await core.close();
  });

  describe('JSON in, JSON out', () => {
    for (const sample of SAMPLES.filter((s) => s.json !== undefined)) {
      it(`returns ${sample.datatype} data unchanged, with numeric shapes`, async () => {
        const body = stringifyExact({
          inputs: [
            { name: 'INPUT0', datatype: sample.datatype, shape: sample.shape, data: sample.json },
          ],
        });
        const answer = await httpRequest(inferUrl(core.url, identityModelFor(sample.datatype)), {
          headers: { 'content-type': 'application/json' },
          body,
        });
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.headers.get('content-type'), 'application/json');
        const parsed = parseJsonExact(answer.text) as Record<string, unknown>;
        assert.equal(parsed.model_name, identityModelFor(sample.datatype));
        assert.equal(parsed.model_version, '1');
        const [out] = outputsOf(parsed);
        // FP32 comes back as the float32 value widened to double, as Triton prints it.
        const expected =
          sample.datatype === 'FP32'
            ? sample.json!.map((v) => Math.fround(v as number))
            : sample.json;
        assert.deepEqual(out, {
          name: 'OUTPUT0',
          datatype: sample.datatype,
          shape: sample.shape,
          data: expected,
        });
      });
    }

    for (const datatype of ['FP16', 'BF16']) {
      it(`refuses ${datatype} data in JSON with 400 naming the datatype`, async () => {
        const answer = await postJson(inferUrl(core.url, identityModelFor(datatype as 'FP16')), {
          inputs: [{ name: 'INPUT0', datatype, shape: [1, 2], data: [1, 2] }],
        });
        assert.equal(answer.status, 400);
        assert.equal(answer.json.code, 'INVALID_REQUEST');
        assert.match(
          String(answer.json.error),
          new RegExp(`${datatype} data via JSON is not supported`),
        );
        assert.match(String(answer.json.error), /INPUT0/);
      });
    }

    it('refuses FP16 output requested as JSON with 400, as Triton does', async () => {
      const sample = SAMPLES.find((s) => s.datatype === 'FP16')!;
      const answer = await postBinary(
        inferUrl(core.url, 'identity_fp16'),
        {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'FP16',
              shape: sample.shape,
              parameters: { binary_data_size: sample.raw.length },
            },
          ],
        },
        [sample.raw],
      );
      assert.equal(answer.status, 400, answer.text);
      assert.match(String(answer.json.error), /FP16/);
    });
  });

  describe('binary tensor extension both ways', () => {
    for (const sample of SAMPLES) {
      it(`returns ${sample.datatype} bytes unchanged when input and output are binary`, async () => {
        const answer = await postBinary(
          inferUrl(core.url, identityModelFor(sample.datatype)),
          {
            inputs: [
              {
                name: 'INPUT0',
                datatype: sample.datatype,
                shape: sample.shape,
                parameters: { binary_data_size: sample.raw.length },
              },
            ],
            outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
          },
          [sample.raw],
        );
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.headers.get('content-type'), 'application/octet-stream');
        const { header, binary } = parseBinaryAnswer(answer);
        const [out] = outputsOf(header);
        assert.deepEqual(out, {
          name: 'OUTPUT0',
          datatype: sample.datatype,
          shape: sample.shape,
          parameters: { binary_data_size: sample.raw.length },
        });
        assert.ok(binary.get('OUTPUT0')!.equals(sample.raw), `bytes differ for ${sample.datatype}`);
        assert.equal(
          Number(answer.headers.get('inference-header-content-length')),
          answer.body.length - sample.raw.length,
        );
      });
    }

    it('decodes binary input into JSON output when the output is not asked for as binary', async () => {
      const sample = SAMPLES.find((s) => s.datatype === 'INT64')!;
      const answer = await postBinary(
        inferUrl(core.url, 'identity_int64'),
        {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'INT64',
              shape: sample.shape,
              parameters: { binary_data_size: sample.raw.length },
            },
          ],
        },
        [sample.raw],
      );
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('inference-header-content-length'), null);
      assert.deepEqual(outputsOf(parseJsonExact(answer.text))[0]!.data, sample.json);
    });

    it('answers every output as binary with binary_data_output, from JSON input', async () => {
      const answer = await httpRequest(inferUrl(core.url, 'simple'), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...simpleRequest(A, B), parameters: { binary_data_output: true } }),
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('content-type'), 'application/octet-stream');
      const { header, binary } = parseBinaryAnswer(answer);
      assert.deepEqual(
        outputsOf(header).map((o) => [o.name, o.shape, o.parameters]),
        [
          ['OUTPUT0', [1, 16], { binary_data_size: 64 }],
          ['OUTPUT1', [1, 16], { binary_data_size: 64 }],
        ],
      );
      assert.ok(binary.get('OUTPUT0')!.equals(int32Raw(SUM)));
      assert.ok(binary.get('OUTPUT1')!.equals(int32Raw(DIFF)));
    });

    it('mixes a binary output and a JSON output as each output asks', async () => {
      const answer = await postBinary(
        inferUrl(core.url, 'simple'),
        {
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
          outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1' }],
        },
        [int32Raw(A), int32Raw(B)],
      );
      assert.equal(answer.status, 200, answer.text);
      const { header, binary } = parseBinaryAnswer(answer);
      const [out0, out1] = outputsOf(header);
      assert.deepEqual(out0!.parameters, { binary_data_size: 64 });
      assert.ok(binary.get('OUTPUT0')!.equals(int32Raw(SUM)));
      assert.equal(out1!.name, 'OUTPUT1');
      assert.deepEqual(out1!.data, DIFF);
    });

    it('accepts binary and JSON inputs in one request', async () => {
      const answer = await postBinary(
        inferUrl(core.url, 'simple'),
        {
          inputs: [
            { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: A },
            {
              name: 'INPUT1',
              datatype: 'INT32',
              shape: [1, 16],
              parameters: { binary_data_size: 64 },
            },
          ],
        },
        [int32Raw(B)],
      );
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(
        outputsOf(answer.json).map((o) => o.data),
        [SUM, DIFF],
      );
    });
  });

  describe('large tensors and concurrency', () => {
    it('moves a 4 MiB FP32 tensor through the binary extension unchanged', async () => {
      const elements = 1024 * 1024;
      const raw = Buffer.alloc(elements * 4);
      for (let i = 0; i < elements; i++) raw.writeFloatLE(Math.fround(i * 0.25 - 1000), i * 4);
      const answer = await postBinary(
        inferUrl(core.url, 'identity_fp32'),
        {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'FP32',
              shape: [1024, 1024],
              parameters: { binary_data_size: raw.length },
            },
          ],
          parameters: { binary_data_output: true },
        },
        [raw],
      );
      assert.equal(answer.status, 200, answer.status === 200 ? '' : answer.text);
      assert.ok(parseBinaryAnswer(answer).binary.get('OUTPUT0')!.equals(raw));
    });

    it('moves 20k FP32 values through JSON both ways unchanged', async () => {
      const values = Array.from({ length: 20_000 }, (_, i) => Math.fround(Math.sin(i) * 1e4));
      const answer = await postJson(inferUrl(core.url, 'identity_fp32'), {
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [20, 1000], data: values }],
      });
      assert.equal(answer.status, 200);
      const out = outputsOf(answer.json)[0]!;
      assert.deepEqual(out.shape, [20, 1000]);
      assert.equal(out.data!.length, values.length);
      assert.ok(out.data!.every((v, i) => v === values[i]));
    });

    it('answers 20 concurrent requests each with its own result', async () => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async (_, k) => {
          const a = A.map((x) => x + k);
          const answer = await postJson(inferUrl(core.url, 'simple'), {
            ...simpleRequest(a, B),
            id: `c${k}`,
          });
          return { k, a, answer };
        }),
      );
      for (const { k, a, answer } of answers) {
        assert.equal(answer.status, 200);
        assert.equal(answer.json.id, `c${k}`);
        assert.deepEqual(
          outputsOf(answer.json)[0]!.data,
          a.map((x, i) => x + B[i]!),
        );
      }
    });
  });

  describe('the simple model and JSON forms', () => {
    it('adds and subtracts with the simple model', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, B));
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, {
        model_name: 'simple',
        model_version: '1',
        outputs: [
          { name: 'OUTPUT0', datatype: 'INT32', shape: [1, 16], data: SUM },
          { name: 'OUTPUT1', datatype: 'INT32', shape: [1, 16], data: DIFF },
        ],
      });
    });

    it('accepts data nested like the shape and answers with flat data', async () => {
      const nested = {
        inputs: [
          { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: [A] },
          { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: [B.slice(0, 8), B.slice(8)] },
        ],
      };
      const answer = await postJson(inferUrl(core.url, 'simple'), nested);
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(
        outputsOf(answer.json).map((o) => o.data),
        [SUM, DIFF],
      );
    });

    it('returns only the outputs the request names', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), {
        ...simpleRequest(A, B),
        outputs: [{ name: 'OUTPUT1' }],
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(
        outputsOf(answer.json).map((o) => o.name),
        ['OUTPUT1'],
      );
      assert.deepEqual(outputsOf(answer.json)[0]!.data, DIFF);
    });

    it('takes BYTES as base64 with content_type and as UTF-8 strings', async () => {
      const elements = [Buffer.from([0, 255, 128, 10]), Buffer.from('ünïcode', 'utf8')];
      const answer = await postBinary(
        inferUrl(core.url, 'identity_bytes'),
        {
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'BYTES',
              shape: [1, 2],
              data: elements.map((e) => e.toString('base64')),
              parameters: { content_type: 'base64' },
            },
          ],
          outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
        },
        [],
      );
      assert.equal(answer.status, 200, answer.text);
      assert.ok(parseBinaryAnswer(answer).binary.get('OUTPUT0')!.equals(bytesTensor(elements)));

      const utf8 = await postJson(inferUrl(core.url, 'identity_bytes'), {
        inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 2], data: ['ünïcode', 'plain'] }],
      });
      assert.equal(utf8.status, 200);
      assert.deepEqual(outputsOf(utf8.json)[0]!.data, ['ünïcode', 'plain']);
    });

    it('keeps INT64 values beyond 2^53 exact in both directions, as digits', async () => {
      const big = '9007199254740993';
      const text = `{"inputs":[{"name":"INPUT0","datatype":"INT64","shape":[1,2],"data":[${big},-${big}]}]}`;
      const answer = await httpRequest(inferUrl(core.url, 'identity_int64'), {
        headers: { 'content-type': 'application/json' },
        body: text,
      });
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, new RegExp(`"data":\\[${big},-${big}\\]`));
      const sent = core.fake.lastRequest!.request.raw_input_contents[0]!;
      assert.equal(sent.readBigInt64LE(0), BigInt(big));
      assert.equal(sent.readBigInt64LE(8), -BigInt(big));
    });

    it('counts the binary header in bytes when the id holds non-ASCII characters', async () => {
      const id = 'zürich-東京-"quoted"\\-\n';
      const answer = await httpRequest(inferUrl(core.url, 'simple'), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ...simpleRequest(A, B),
          id,
          parameters: { binary_data_output: true },
        }),
      });
      assert.equal(answer.status, 200, answer.text);
      const { header, binary } = parseBinaryAnswer(answer);
      assert.equal(header.id, id);
      assert.ok(binary.get('OUTPUT0')!.equals(int32Raw(SUM)));
      assert.ok(binary.get('OUTPUT1')!.equals(int32Raw(DIFF)));
    });

    it('passes the classification output parameter to Triton and returns its BYTES answer', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), {
        ...simpleRequest(A, B),
        outputs: [{ name: 'OUTPUT0', parameters: { classification: 2 } }],
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      const [out] = outputsOf(answer.json);
      assert.equal(out!.datatype, 'BYTES');
      assert.deepEqual(out!.shape, [1, 2]);
      const top = [...SUM.entries()].sort((x, y) => y[1] - x[1]).slice(0, 2);
      assert.deepEqual(
        out!.data,
        top.map(([i, v]) => `${v}:${i}`),
      );
    });

    it('passes sequence, priority and custom parameters to Triton with their types', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), {
        ...simpleRequest(A, B),
        parameters: {
          sequence_id: 42,
          sequence_start: true,
          sequence_end: true,
          priority: 3,
          tag: 'blue',
          ratio: 0.5,
        },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      const sent = core.fake.lastRequest!.request.parameters;
      assert.equal(Number(sent.sequence_id?.int64_param ?? sent.sequence_id?.uint64_param), 42);
      assert.equal(sent.sequence_start?.bool_param, true);
      assert.equal(sent.sequence_end?.bool_param, true);
      assert.equal(Number(sent.priority?.int64_param ?? sent.priority?.uint64_param), 3);
      assert.equal(sent.tag?.string_param, 'blue');
      assert.equal(sent.ratio?.double_param, 0.5);
      assert.equal(sent.binary_data_output, undefined);
    });

    it('reads a JSON body whatever its Content-Type says, as Triton does', async () => {
      for (const contentType of [undefined, 'text/plain', 'application/octet-stream']) {
        const answer = await httpRequest(inferUrl(core.url, 'simple'), {
          headers: contentType === undefined ? {} : { 'content-type': contentType },
          body: JSON.stringify(simpleRequest(A, B)),
        });
        assert.equal(answer.status, 200, `${contentType}: ${answer.text}`);
        assert.deepEqual(
          outputsOf(answer.json).map((o) => o.data),
          [SUM, DIFF],
        );
      }
    });

    it('sends JSON input to Triton as raw_input_contents', async () => {
      const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, B));
      assert.equal(answer.status, 200);
      const sent = core.fake.lastRequest!.request;
      assert.equal(sent.raw_input_contents.length, 2);
      assert.ok(sent.raw_input_contents[0]!.equals(int32Raw(A)));
      assert.ok(sent.inputs.every((i) => i.contents === null));
    });
  });
});
