import assert from 'node:assert/strict';
import type { ModelInferResponse, InferOutputTensor } from '../../../src/protocol';
import { encodeInferResponse, type OutputPlan } from '../../../src/codec';
import { decode, proxyErrorOf, rawOf } from './support';

const JSON_ALL: OutputPlan = { binaryByDefault: false, outputs: [] };
const BINARY_ALL: OutputPlan = { binaryByDefault: true, outputs: [] };

function tensor(name: string, datatype: string, shape: number[]): InferOutputTensor {
  return { name, datatype, shape, parameters: {} };
}

function response(
  outputs: InferOutputTensor[],
  raws: Buffer[],
  extra: Partial<ModelInferResponse> = {},
): ModelInferResponse {
  return {
    modelName: 'm',
    modelVersion: '1',
    id: '',
    parameters: {},
    outputs,
    rawOutputContents: raws,
    ...extra,
  };
}

/** `raw` copied to an odd offset inside a larger buffer, as grpc-js may hand it over. */
function unaligned(raw: Buffer): Buffer {
  const backing = Buffer.alloc(raw.length + 3);
  raw.copy(backing, 1);
  return backing.subarray(1, 1 + raw.length);
}

function headerText(encoded: ReturnType<typeof encodeInferResponse>): string {
  return Buffer.concat(encoded.chunks).toString(
    'utf8',
    0,
    encoded.headerLength ?? encoded.byteLength,
  );
}

describe('encodeInferResponse', () => {
  it("writes Triton's field order: id, model_name, model_version, parameters, outputs", () => {
    const encoded = encodeInferResponse(
      response([tensor('OUT', 'INT32', [2])], [rawOf('INT32', [1, -2])], {
        id: 'r1',
        parameters: { sequence_id: 7, flag: true, note: 'n', ratio: 0.25 },
      }),
      JSON_ALL,
    );
    assert.equal(
      headerText(encoded),
      '{"id":"r1","model_name":"m","model_version":"1","parameters":{"sequence_id":7,"flag":true,"note":"n","ratio":0.25},' +
        '"outputs":[{"name":"OUT","datatype":"INT32","shape":[2],"data":[1,-2]}]}',
    );
    assert.equal(encoded.contentType, 'application/json');
    assert.equal(encoded.headerLength, undefined);
  });

  it('leaves out an empty id and empty parameters', () => {
    const { json, text } = decode(
      encodeInferResponse(response([tensor('OUT', 'BOOL', [1])], [Buffer.from([1])]), JSON_ALL),
    );
    assert.ok(!text.includes('"id"'));
    assert.ok(!text.includes('"parameters"'));
    assert.deepEqual(json.outputs[0].data, [true]);
  });

  it('renders a bigint parameter as exact digits', () => {
    const text = headerText(
      encodeInferResponse(
        response([], [], { parameters: { sequence_id: 18446744073709551615n } }),
        JSON_ALL,
      ),
    );
    assert.ok(text.includes('"sequence_id":18446744073709551615'), text);
  });

  it('appends binary outputs after the header, unchanged and uncopied, with binary_data_size and the header length', () => {
    const a = rawOf('FP32', [1.5, -2]);
    const b = rawOf('BYTES', ['hi']);
    const encoded = encodeInferResponse(
      response([tensor('A', 'FP32', [2]), tensor('B', 'BYTES', [1])], [a, b]),
      BINARY_ALL,
    );
    assert.equal(encoded.contentType, 'application/octet-stream');
    assert.equal(encoded.chunks.at(-2), a, 'binary output chunk is the received buffer');
    assert.equal(encoded.chunks.at(-1), b);
    const header = Buffer.concat(encoded.chunks.slice(0, -2));
    assert.equal(encoded.headerLength, header.length);
    assert.equal(encoded.byteLength, header.length + a.length + b.length);
    assert.equal(
      header.toString(),
      '{"model_name":"m","model_version":"1","outputs":[' +
        `{"name":"A","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":${a.length}}},` +
        `{"name":"B","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":${b.length}}}]}`,
    );
    const { binaries } = decode(encoded);
    assert.deepEqual(binaries.get('A'), a);
    assert.deepEqual(binaries.get('B'), b);
  });

  it('mixes JSON and binary outputs per the plan: listed outputs by binary_data, unlisted by binary_data_output', () => {
    const raws = [rawOf('INT8', [1]), rawOf('INT8', [2]), rawOf('INT8', [3])];
    const plan: OutputPlan = {
      binaryByDefault: true,
      outputs: [
        { name: 'J', binary: false, base64: false, sharedMemory: false },
        { name: 'B', binary: true, base64: false, sharedMemory: false },
      ],
    };
    const { json, binaries } = decode(
      encodeInferResponse(
        response(
          [tensor('J', 'INT8', [1]), tensor('B', 'INT8', [1]), tensor('U', 'INT8', [1])],
          raws,
        ),
        plan,
      ),
    );
    assert.deepEqual(json.outputs[0].data, [1]);
    assert.equal(json.outputs[0].parameters, undefined);
    assert.deepEqual(json.outputs[1].parameters, { binary_data_size: 1 });
    assert.deepEqual(json.outputs[2].parameters, { binary_data_size: 1 });
    assert.deepEqual([...binaries.keys()], ['B', 'U']);
    assert.deepEqual(binaries.get('B'), Buffer.from([2]));
    assert.deepEqual(binaries.get('U'), Buffer.from([3]));
  });

  it('sends JSON without the header length when every binary output is empty, as Triton does', () => {
    const encoded = encodeInferResponse(
      response([tensor('E', 'FP32', [0])], [Buffer.alloc(0)]),
      BINARY_ALL,
    );
    assert.equal(encoded.contentType, 'application/json');
    assert.equal(encoded.headerLength, undefined);
    assert.deepEqual(decode(encoded).json.outputs[0].parameters, { binary_data_size: 0 });
  });

  it('writes a shared-memory output with neither data nor binary_data_size', () => {
    const plan: OutputPlan = {
      binaryByDefault: false,
      outputs: [{ name: 'S', binary: false, base64: false, sharedMemory: true }],
    };
    const text = headerText(
      encodeInferResponse(response([tensor('S', 'FP32', [4])], [Buffer.alloc(0)]), plan),
    );
    assert.ok(text.includes('{"name":"S","datatype":"FP32","shape":[4]}'), text);
  });

  it('reads numbers from unaligned buffers correctly', () => {
    const cases: [string, (number | bigint)[]][] = [
      ['FP32', [1.5, -0.25, 3]],
      ['FP64', [0.1, -1e300, 2]],
      ['INT64', [-5n, 1n << 60n, 7n]],
      ['UINT64', [5n, (1n << 64n) - 1n, 0n]],
      ['INT32', [-1, 2147483647, 0]],
      ['UINT16', [65535, 1, 2]],
      ['INT16', [-32768, 1, 2]],
      ['UINT32', [4294967295, 0, 1]],
    ];
    for (const [datatype, values] of cases) {
      const raw = unaligned(rawOf(datatype as 'FP32', values as number[]));
      assert.equal(raw.byteOffset % 2, 1);
      const text = headerText(
        encodeInferResponse(response([tensor('O', datatype, [3])], [raw]), JSON_ALL),
      );
      const isFloat = datatype === 'FP32' || datatype === 'FP64';
      const expected = values
        .map((v) =>
          typeof v === 'bigint'
            ? v.toString()
            : isFloat && Number.isInteger(v) && Math.abs(v as number) < 1e21
              ? `${String(v)}.0`
              : String(v),
        )
        .join(',');
      assert.ok(text.includes(`"data":[${expected}]`), `${datatype}: ${text}`);
    }
  });

  it('renders integers of every width and digit count exactly', () => {
    let seed = 99;
    const next = (): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed;
    };
    const n = 20_000;
    const cases: [string, () => number][] = [
      ['INT8', () => (next() % 256) - 128],
      ['UINT16', () => next() % 65536],
      ['INT32', () => next() | 0],
      ['UINT32', () => next() >>> (next() % 32)],
      // + 0 turns -0 into 0: raw integers have no negative zero.
      [
        'INT64',
        () => (next() % 2 ? -1 : 1) * Math.floor((next() / 2 ** 32) * 2 ** (next() % 54)) + 0,
      ],
      ['UINT64', () => Math.floor((next() / 2 ** 32) * 2 ** (next() % 54))],
    ];
    for (const [datatype, gen] of cases) {
      const values = Array.from({ length: n }, gen);
      const raw = rawOf(datatype as 'INT32', values);
      const { json } = decode(
        encodeInferResponse(response([tensor('O', datatype, [n])], [raw]), JSON_ALL),
      );
      assert.deepEqual(json.outputs[0].data, values, datatype);
    }
  });

  it('renders INT64 and UINT64 beyond 2^53 as exact digits', () => {
    const i64 = rawOf('INT64', [
      9223372036854775807n,
      -9223372036854775808n,
      9007199254740993n,
      -9007199254740992n,
    ]);
    const u64 = rawOf('UINT64', [18446744073709551615n, 9007199254740993n]);
    const text = headerText(
      encodeInferResponse(
        response([tensor('I', 'INT64', [4]), tensor('U', 'UINT64', [2])], [i64, u64]),
        JSON_ALL,
      ),
    );
    assert.ok(
      text.includes(
        '"data":[9223372036854775807,-9223372036854775808,9007199254740993,-9007199254740992]',
      ),
      text,
    );
    assert.ok(text.includes('"data":[18446744073709551615,9007199254740993]'), text);
  });

  it("writes NaN, Infinity, -Infinity tokens as Triton's writer does, and keeps the sign of -0", () => {
    const f32 = rawOf('FP32', [NaN, Infinity, -Infinity, -0, 0]);
    const f64 = rawOf('FP64', [NaN, -Infinity, -0]);
    const text = headerText(
      encodeInferResponse(
        response([tensor('F', 'FP32', [5]), tensor('D', 'FP64', [3])], [f32, f64]),
        JSON_ALL,
      ),
    );
    assert.ok(text.includes('"data":[NaN,Infinity,-Infinity,-0.0,0.0]'), text);
    assert.ok(text.includes('"data":[NaN,-Infinity,-0.0]'), text);
  });

  it('writes FP64 as the shortest text that reads back to the same double (Triton writes 16 digits)', () => {
    const f64 = rawOf('FP64', [123456789.12345679, 0.1]);
    const text = headerText(
      encodeInferResponse(response([tensor('D', 'FP64', [2])], [f64]), JSON_ALL),
    );
    assert.ok(text.includes('"data":[123456789.12345679,0.1]'), text);
  });

  it('writes BYTES as JSON strings: UTF-8, escapes, invalid UTF-8 as U+FFFD', () => {
    const raw = Buffer.concat([
      rawOf('BYTES', ['plain', 'é "q" \\ \n\t', '']),
      Buffer.from([2, 0, 0, 0, 0xff, 0x41]),
    ]);
    const { json } = decode(
      encodeInferResponse(response([tensor('S', 'BYTES', [4])], [raw]), JSON_ALL),
    );
    assert.deepEqual(json.outputs[0].data, ['plain', 'é "q" \\ \n\t', '', '\ufffdA']);
  });

  it('writes BYTES as base64 strings when the plan asks, with content_type in the output parameters', () => {
    const raw = Buffer.concat([Buffer.from([2, 0, 0, 0, 0xff, 0x00]), rawOf('BYTES', ['ok'])]);
    const plan: OutputPlan = {
      binaryByDefault: false,
      outputs: [{ name: 'S', binary: false, base64: true, sharedMemory: false }],
    };
    const { json } = decode(
      encodeInferResponse(response([tensor('S', 'BYTES', [2])], [raw]), plan),
    );
    assert.deepEqual(json.outputs[0].parameters, { content_type: 'base64' });
    assert.deepEqual(json.outputs[0].data, ['/wA=', 'b2s=']);
  });

  it('answers 500 when an output has fewer bytes than its shape needs, naming the output', () => {
    const error = proxyErrorOf(() =>
      encodeInferResponse(
        response([tensor('O', 'INT32', [4])], [rawOf('INT32', [1, 2, 3])]),
        JSON_ALL,
      ),
    );
    assert.equal(error.status, 500);
    assert.match(
      error.message,
      /does not match size of output for 'O' \(expected 16 bytes, got 12\)/,
    );
    const bytes = proxyErrorOf(() =>
      encodeInferResponse(response([tensor('S', 'BYTES', [2])], [rawOf('BYTES', ['x'])]), JSON_ALL),
    );
    assert.equal(bytes.status, 500);
    assert.match(bytes.message, /'S'/);
  });

  it('answers 500 for an output datatype Triton does not define', () => {
    const error = proxyErrorOf(() =>
      encodeInferResponse(response([tensor('O', 'INT4', [1])], [Buffer.alloc(1)]), JSON_ALL),
    );
    assert.equal(error.status, 500);
    assert.match(error.message, /'INT4'/);
  });

  it('writes a large JSON output across several chunks whose concatenation is one valid document', () => {
    const n = 300_000;
    const raw = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) raw.writeDoubleLE(i / 7, i * 8);
    const encoded = encodeInferResponse(response([tensor('D', 'FP64', [n])], [raw]), JSON_ALL);
    assert.ok(encoded.chunks.length > 1, 'expected several chunks');
    const data = decode(encoded).json.outputs[0].data as number[];
    assert.equal(data.length, n);
    for (let i = 0; i < n; i += 1009) assert.equal(data[i], i / 7);
  });
});
