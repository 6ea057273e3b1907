import assert from 'node:assert/strict';
import type { Datatype } from '../../../src/protocol';
import { encodeInferResponse, parseInferRequest } from '../../../src/codec';
import {
  MODEL,
  assertInvalid,
  echo,
  encodeEcho,
  parseBinary,
  parseJson,
  parseText,
  rawOf,
  decode,
} from './support';

function headerText(encoded: ReturnType<typeof encodeInferResponse>): string {
  return Buffer.concat(encoded.chunks).toString(
    'utf8',
    0,
    encoded.headerLength ?? encoded.byteLength,
  );
}

type Value = number | boolean | string;

/** Four elements per JSON datatype, including each type's extremes. */
const SAMPLES: Record<Exclude<Datatype, 'FP16' | 'BF16'>, Value[]> = {
  BOOL: [true, false, true, true],
  UINT8: [0, 1, 127, 255],
  UINT16: [0, 300, 65535, 1],
  UINT32: [0, 65536, 4294967295, 1],
  UINT64: [0, 4294967296, Number.MAX_SAFE_INTEGER, 1],
  INT8: [-128, 127, 0, -1],
  INT16: [-32768, 32767, 0, -1],
  INT32: [-2147483648, 2147483647, 0, -1],
  INT64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, -4294967297, -1],
  FP32: [0.1, -2.5, 3.4028234663852886e38, 1e-45],
  FP64: [0.1, -2.5, 1.7976931348623157e308, 5e-324],
  BYTES: ['a', 'hé 日本', '', 'quote " backslash \\ newline \n'],
};

const JSON_TYPES = Object.keys(SAMPLES) as (keyof typeof SAMPLES)[];

/** What a client reading the JSON back gets for `v` (FP32 read into float32). */
function asRead(datatype: Datatype, v: unknown): unknown {
  return datatype === 'FP32' ? Math.fround(v as number) : v;
}

describe('codec round trip', () => {
  for (const datatype of JSON_TYPES) {
    const values = SAMPLES[datatype];

    it(`${datatype}: flat JSON data becomes little-endian raw bytes and renders back to the same values`, () => {
      const { request, plan } = parseJson({
        inputs: [{ name: 'IN', datatype, shape: [4], data: values }],
      });
      assert.deepEqual(request.rawInputContents[0], rawOf(datatype, values));
      const { json } = encodeEcho(request, plan);
      const out = json.outputs[0];
      assert.deepEqual(
        { name: out.name, datatype: out.datatype, shape: out.shape },
        { name: 'IN', datatype, shape: [4] },
      );
      assert.deepEqual(
        out.data!.map((v) => asRead(datatype, v)),
        values.map((v) => asRead(datatype, v)),
      );
    });

    it(`${datatype}: nested JSON data for shape [2,2] gives the same bytes as flat data`, () => {
      const nested = [values.slice(0, 2), values.slice(2)];
      const { request } = parseJson({
        inputs: [{ name: 'IN', datatype, shape: [2, 2], data: nested }],
      });
      assert.deepEqual(request.rawInputContents[0], rawOf(datatype, values));
    });

    it(`${datatype}: binary input is a zero-copy view of the body and returns byte-identical as binary output`, () => {
      const raw = rawOf(datatype, values);
      const { request, plan, body } = parseBinary(
        {
          inputs: [
            { name: 'IN', datatype, shape: [4], parameters: { binary_data_size: raw.length } },
          ],
          outputs: [{ name: 'IN', parameters: { binary_data: true } }],
        },
        raw,
      );
      const view = request.rawInputContents[0];
      assert.equal(view.buffer, body.buffer, 'raw input must share memory with the body');
      assert.equal(view.byteOffset, body.byteOffset + body.length - raw.length);
      assert.deepEqual(view, raw);
      const encoded = encodeInferResponse(echo(request), plan);
      assert.ok(encoded.chunks.includes(view), 'binary output must be the received buffer itself');
      assert.deepEqual(decode(encoded).binaries.get('IN'), raw);
    });
  }

  for (const datatype of ['FP16', 'BF16'] as const) {
    it(`${datatype}: binary input passes through zero-copy and returns as binary output`, () => {
      const raw = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00]);
      const { request, plan, body } = parseBinary(
        {
          inputs: [{ name: 'IN', datatype, shape: [2, 2], parameters: { binary_data_size: 8 } }],
          parameters: { binary_data_output: true },
        },
        raw,
      );
      assert.equal(request.rawInputContents[0].buffer, body.buffer);
      assert.deepEqual(encodeEcho(request, plan).binaries.get('IN'), raw);
    });

    it(`${datatype}: JSON data is refused with Triton's message naming the input`, () => {
      assertInvalid(
        () => parseJson({ inputs: [{ name: 'HALF', datatype, shape: [1], data: [1] }] }),
        `receiving ${datatype} data via JSON is not supported`,
        'binary data format',
        'HALF',
      );
    });

    it(`${datatype}: output requested as JSON is refused with 400 naming the output`, () => {
      const { request } = parseBinary(
        { inputs: [{ name: 'HALF', datatype, shape: [1], parameters: { binary_data_size: 2 } }] },
        Buffer.alloc(2),
      );
      assertInvalid(
        () => encodeInferResponse(echo(request), { binaryByDefault: false, outputs: [] }),
        `sending ${datatype} data via JSON is not supported`,
        "'HALF'",
      );
    });
  }

  it('INT64 and UINT64 beyond 2^53 survive JSON -> raw -> JSON digit for digit', () => {
    const i64 = '[9223372036854775807,-9223372036854775808,9007199254740993,-1]';
    const u64 = '[18446744073709551615,9007199254740993,0,1]';
    const { request, plan } = parseText(
      `{"inputs":[{"name":"I","datatype":"INT64","shape":[4],"data":${i64}},` +
        `{"name":"U","datatype":"UINT64","shape":[2,2],"data":${u64}}]}`,
    );
    const text = headerText(encodeInferResponse(echo(request), plan));
    assert.ok(text.includes(`"data":${i64}`), text);
    assert.ok(text.includes(`"data":${u64}`), text);
  });

  it('BYTES with content_type base64 decodes on the way in and renders base64 when the output asks for it', () => {
    const payload = [Buffer.from([0, 1, 2, 255]), Buffer.from('plain'), Buffer.alloc(0)];
    const { request, plan } = parseJson({
      inputs: [
        {
          name: 'B',
          datatype: 'BYTES',
          shape: [3],
          parameters: { content_type: 'base64' },
          data: payload.map((p) => p.toString('base64')),
        },
      ],
      outputs: [{ name: 'B', parameters: { content_type: 'base64' } }],
    });
    assert.deepEqual(request.inputs[0].parameters, {}, 'content_type is consumed, not forwarded');
    assert.deepEqual(request.outputs[0].parameters, {});
    const expected = Buffer.concat(
      payload.flatMap((p) => {
        const len = Buffer.alloc(4);
        len.writeUInt32LE(p.length);
        return [len, p];
      }),
    );
    assert.deepEqual(request.rawInputContents[0], expected);
    const out = encodeEcho(request, plan).json.outputs[0];
    assert.deepEqual(out.parameters, { content_type: 'base64' });
    assert.deepEqual(
      out.data,
      payload.map((p) => p.toString('base64')),
    );
  });

  it('a 1M-element FP32 tensor parses from JSON and encodes back to JSON (timing printed, not asserted)', () => {
    const n = 1_000_000;
    const values = new Array<number>(n);
    for (let i = 0; i < n; i++) values[i] = Math.fround(Math.sin(i) * 100);
    const body = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'X', datatype: 'FP32', shape: [1, n], data: values }] }),
    );
    const t0 = process.hrtime.bigint();
    const { request, plan } = parseInferRequest({ body, modelName: MODEL, modelVersion: '' });
    const t1 = process.hrtime.bigint();
    const encoded = encodeInferResponse(echo(request), plan);
    const t2 = process.hrtime.bigint();
    const ms = (a: bigint, b: bigint): string => (Number(b - a) / 1e6).toFixed(1);
    console.log(
      `      1M FP32: parse ${ms(t0, t1)} ms (${(body.length / 1e6).toFixed(1)} MB JSON), encode ${ms(t1, t2)} ms (${(encoded.byteLength / 1e6).toFixed(1)} MB JSON)`,
    );
    const data = decode(encoded).json.outputs[0].data as number[];
    assert.equal(data.length, n);
    for (let i = 0; i < n; i += 997) assert.equal(Math.fround(data[i]), values[i]);
  });
});
