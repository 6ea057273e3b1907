import assert from 'node:assert/strict';
import { parseInferRequest } from '../../../src/codec';
import {
  MODEL,
  assertInvalid,
  binaryBody,
  parseBinary,
  parseJson,
  parseText,
  proxyErrorOf,
  rawOf,
} from './support';

const input = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'IN',
  datatype: 'INT32',
  shape: [2],
  data: [1, 2],
  ...extra,
});

describe('parseInferRequest', () => {
  describe('request shape', () => {
    it('refuses malformed JSON with the parser position and no stack trace', () => {
      const error = assertInvalid(
        () => parseText('{"inputs" 1}'),
        'failed to parse the request JSON buffer',
        'position 10',
      );
      assert.ok(!error.message.includes('    at '), 'no stack in the message');
    });

    it('names the end position when the JSON is cut short', () => {
      assertInvalid(() => parseText('{"inputs": ['), 'Unexpected end of JSON input at position 12');
    });

    it('refuses a body that is not a JSON object', () => {
      assertInvalid(() => parseText('[1,2]'), 'expected a JSON object');
    });

    it('refuses a missing inputs array', () => {
      assertInvalid(() => parseJson({ id: 'x' }), "Unable to parse 'inputs'");
      assertInvalid(() => parseJson({ inputs: { name: 'IN' } }), "Unable to parse 'inputs'");
    });

    it('refuses an id that is not a string', () => {
      assertInvalid(() => parseJson({ id: 7, inputs: [input()] }), "Unable to parse 'id'");
    });

    it('refuses an input without a string name', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ name: 3 })] }),
        "Unable to parse 'name' for input 0",
      );
    });

    it('refuses duplicate input names, naming the input', () => {
      assertInvalid(
        () => parseJson({ inputs: [input(), input()] }),
        "input 'IN' already exists in request",
      );
    });

    it('refuses an unknown datatype, naming it and the input', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'FLOAT32' })] }),
        "invalid datatype 'FLOAT32'",
        "'IN'",
      );
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 5 })] }),
        "Unable to parse 'datatype' for input 'IN'",
      );
    });

    for (const shape of [[-1], [1.5], ['2'], 'abc', null, undefined]) {
      it(`refuses shape ${JSON.stringify(shape)}: it must be an array of non-negative integers`, () => {
        assertInvalid(
          () => parseJson({ inputs: [input({ shape })] }),
          "Unable to parse 'shape' for input 'IN'",
          'non-negative integers',
        );
      });
    }

    it('refuses a shape whose element count is beyond any real tensor', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ shape: [2 ** 30, 2 ** 30] })] }),
        "invalid shape for input 'IN'",
      );
    });

    it('refuses an input with neither data nor binary_data_size nor shared memory, as Triton words it', () => {
      assertInvalid(
        () => parseJson({ inputs: [{ name: 'IN', datatype: 'INT32', shape: [2] }] }),
        'Input must set only one of the following fields',
        'no field is set',
        "'IN'",
      );
    });

    it('refuses an input with both data and binary_data_size', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ parameters: { binary_data_size: 8 } })] }),
        "set 'data' 'binary_data_size'",
      );
    });

    it('refuses data that is not an array', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ data: 5 })] }),
        "Unable to parse 'data' for input 'IN'",
      );
    });

    it('passes a shared-memory input through with its parameters and no data', () => {
      const params = {
        shared_memory_region: 'r0',
        shared_memory_offset: 16,
        shared_memory_byte_size: 8,
      };
      const { request } = parseJson({
        inputs: [{ name: 'IN', datatype: 'INT32', shape: [2], parameters: params }],
      });
      assert.deepEqual(request.inputs[0].parameters, params);
      assert.equal(request.rawInputContents[0].length, 0);
    });

    it('sets model name and version from the route, not the body', () => {
      const body = Buffer.from(JSON.stringify({ model_name: 'other', inputs: [input()] }));
      const { request } = parseInferRequest({ body, modelName: 'simple', modelVersion: '3' });
      assert.equal(request.modelName, 'simple');
      assert.equal(request.modelVersion, '3');
    });
  });

  describe('JSON data', () => {
    it('accepts any nesting whose leaves match the element count, as Triton does', () => {
      const { request } = parseJson({
        inputs: [
          {
            name: 'IN',
            datatype: 'INT32',
            shape: [2, 3],
            data: [
              [1, [2, 3]],
              [[[4]], 5, 6],
            ],
          },
        ],
      });
      assert.deepEqual(request.rawInputContents[0], rawOf('INT32', [1, 2, 3, 4, 5, 6]));
    });

    it('refuses too many elements, naming the input, the expected and the actual count', () => {
      assertInvalid(
        () =>
          parseJson({
            inputs: [
              input({
                shape: [2, 2],
                data: [
                  [1, 2],
                  [3, 4, 5],
                ],
              }),
            ],
          }),
        "for input 'IN'",
        'expects 4',
        'got 5',
      );
    });

    it('refuses too few elements, naming the input, the expected and the actual count', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ shape: [1, 16], data: [1, 2, 3] })] }),
        "for input 'IN'",
        'shape [1,16] expects 16',
        'got 3',
      );
    });

    it('refuses a huge shape with little data without allocating for the shape', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'FP64', shape: [1e12], data: [1] })] }),
        'expects 1000000000000',
        'got 1',
      );
    });

    it('refuses nesting deeper than Triton allows', () => {
      let data: unknown = [1];
      for (let i = 0; i < 120; i++) data = [data];
      assertInvalid(
        () => parseJson({ inputs: [input({ shape: [1], data })] }),
        'nesting depth exceeds',
      );
    });

    it('takes an empty tensor without looking at its data, as Triton does', () => {
      const { request } = parseJson({ inputs: [input({ shape: [0, 4], data: [] })] });
      assert.equal(request.rawInputContents[0].length, 0);
    });

    const ranges: [string, number, number][] = [
      ['UINT8', 0, 255],
      ['UINT16', 0, 65535],
      ['UINT32', 0, 4294967295],
      ['INT8', -128, 127],
      ['INT16', -32768, 32767],
      ['INT32', -2147483648, 2147483647],
      ['UINT64', 0, Number.MAX_SAFE_INTEGER],
      ['INT64', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ];
    for (const [datatype, min, max] of ranges) {
      it(`${datatype}: accepts ${min} and ${max}, refuses values just outside and fractions`, () => {
        const ok = parseJson({ inputs: [input({ datatype, data: [min, max] })] });
        assert.deepEqual(ok.request.rawInputContents[0], rawOf(datatype as 'INT32', [min, max]));
        const outside = datatype.endsWith('64') ? [] : [min - 1, max + 1];
        for (const bad of [...outside, 1.5, '1', null, true]) {
          assertInvalid(
            () => parseJson({ inputs: [input({ datatype, data: [min, bad] })] }),
            `Unable to parse 'data' for input 'IN'`,
            `expected ${datatype} element`,
            `got ${typeof bad === 'number' ? String(bad) : JSON.stringify(bad)}`,
          );
        }
      });
    }

    it('UINT64 refuses negative values', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'UINT64', data: [1, -1] })] }),
        'UINT64',
        'got -1',
      );
    });

    it('BOOL takes only true and false', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'BOOL', data: [true, 1] })] }),
        'BOOL',
        'got 1',
      );
    });

    it('FP32 refuses values beyond float32 range; FP64 takes them', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'FP32', data: [1, 1e39] })] }),
        'FP32',
        '1e+39',
      );
      const { request } = parseJson({ inputs: [input({ datatype: 'FP64', data: [1, 1e39] })] });
      assert.equal(request.rawInputContents[0].readDoubleLE(8), 1e39);
    });

    it('FP32/FP64 refuse non-numbers', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'FP32', data: [1, 'x'] })] }),
        'FP32',
        'got "x"',
      );
    });

    it('reads the NaN and Infinity tokens Python clients send for float inputs', () => {
      const { request } = parseText(
        '{"inputs":[{"name":"IN","datatype":"FP32","shape":[4],"data":[NaN,Infinity,-Infinity,-Inf]},' +
          '{"name":"S","datatype":"BYTES","shape":[1],"data":["NaN Infinity"]}]}',
      );
      const raw = request.rawInputContents[0];
      assert.ok(Number.isNaN(raw.readFloatLE(0)));
      assert.equal(raw.readFloatLE(4), Infinity);
      assert.equal(raw.readFloatLE(8), -Infinity);
      assert.equal(raw.readFloatLE(12), -Infinity);
      assert.deepEqual(
        request.rawInputContents[1],
        rawOf('BYTES', ['NaN Infinity']),
        'strings are untouched',
      );
    });

    it('refuses NaN for integer types', () => {
      assertInvalid(
        () => parseText('{"inputs":[{"name":"IN","datatype":"INT32","shape":[1],"data":[NaN]}]}'),
        'INT32',
        'got NaN',
      );
    });

    it('INT64 and UINT64 beyond 2^53 are written exactly', () => {
      const { request } = parseText(
        '{"inputs":[' +
          '{"name":"I","datatype":"INT64","shape":[4],"data":[9223372036854775807,-9223372036854775808,9007199254740993,-9007199254740993]},' +
          '{"name":"U","datatype":"UINT64","shape":[2],"data":[18446744073709551615,9007199254740993]},' +
          '{"name":"F","datatype":"FP64","shape":[1],"data":[12345678901234567890]}]}',
      );
      const [i64, u64, f64] = request.rawInputContents;
      assert.deepEqual(
        [0, 8, 16, 24].map((o) => i64.readBigInt64LE(o)),
        [9223372036854775807n, -9223372036854775808n, 9007199254740993n, -9007199254740993n],
      );
      assert.deepEqual(
        [0, 8].map((o) => u64.readBigUInt64LE(o)),
        [18446744073709551615n, 9007199254740993n],
      );
      assert.equal(f64.readDoubleLE(0), Number('12345678901234567890'));
    });

    it('INT64 and UINT64 refuse values beyond 64 bits, exactly', () => {
      const text = (dt: string, v: string): string =>
        `{"inputs":[{"name":"IN","datatype":"${dt}","shape":[1],"data":[${v}]}]}`;
      assertInvalid(
        () => parseText(text('INT64', '9223372036854775808')),
        'INT64',
        'got 9223372036854775808',
      );
      assertInvalid(
        () => parseText(text('INT64', '-9223372036854775809')),
        'got -9223372036854775809',
      );
      assertInvalid(
        () => parseText(text('UINT64', '18446744073709551616')),
        'UINT64',
        'got 18446744073709551616',
      );
      assertInvalid(() => parseText(text('INT32', '9223372036854775808')), 'INT32');
    });

    it('BYTES takes UTF-8 strings and refuses other values', () => {
      const { request } = parseJson({ inputs: [input({ datatype: 'BYTES', data: ['é', 'x'] })] });
      assert.deepEqual(request.rawInputContents[0], rawOf('BYTES', ['é', 'x']));
      assertInvalid(
        () => parseJson({ inputs: [input({ datatype: 'BYTES', data: ['a', 1] })] }),
        'BYTES',
        'a string',
      );
    });

    it('BYTES with content_type base64 refuses text that is not base64', () => {
      assertInvalid(
        () =>
          parseJson({
            inputs: [
              input({
                datatype: 'BYTES',
                parameters: { content_type: 'base64' },
                data: ['QUJD', 'not base64!'],
              }),
            ],
          }),
        'a base64 string',
        'not base64!',
      );
    });

    it('content_type base64 on a non-BYTES input is refused', () => {
      assertInvalid(
        () => parseJson({ inputs: [input({ parameters: { content_type: 'base64' } })] }),
        'BYTES inputs only',
        "'IN'",
      );
    });
  });

  describe('binary tensor extension', () => {
    it('cuts each binary input from the body in input order, mixed with JSON inputs', () => {
      const a = rawOf('INT32', [1, 2, 3]);
      const b = rawOf('BYTES', ['xy', 'z']);
      const { request, body } = parseBinary(
        {
          inputs: [
            {
              name: 'A',
              datatype: 'INT32',
              shape: [3],
              parameters: { binary_data_size: a.length },
            },
            { name: 'J', datatype: 'INT8', shape: [1], data: [7] },
            {
              name: 'B',
              datatype: 'BYTES',
              shape: [2],
              parameters: { binary_data_size: b.length },
            },
          ],
        },
        a,
        b,
      );
      assert.deepEqual(request.rawInputContents, [a, Buffer.from([7]), b]);
      assert.equal(request.rawInputContents[0].buffer, body.buffer);
      assert.equal(request.rawInputContents[2].buffer, body.buffer);
      assert.deepEqual(request.inputs[0].parameters, {}, 'binary_data_size is not forwarded');
    });

    it('refuses a header length larger than the body, naming both numbers', () => {
      const body = Buffer.from('{"inputs":[]}');
      assertInvalid(
        () => parseInferRequest({ body, headerLength: 500, modelName: MODEL, modelVersion: '' }),
        'Inference-Header-Content-Length (500)',
        `${body.length} bytes`,
      );
    });

    it('answers 501 for a raw binary request (header length 0), which needs the model configuration', () => {
      const error = proxyErrorOf(() =>
        parseInferRequest({
          body: Buffer.alloc(8),
          headerLength: 0,
          modelName: MODEL,
          modelVersion: '',
        }),
      );
      assert.equal(error.status, 501);
      assert.match(error.message, /raw binary request/);
    });

    it('refuses binary_data_size larger than the bytes left', () => {
      assertInvalid(
        () =>
          parseBinary(
            {
              inputs: [
                { name: 'A', datatype: 'INT32', shape: [4], parameters: { binary_data_size: 16 } },
              ],
            },
            Buffer.alloc(12),
          ),
        "unexpected size for input 'A'",
        'expecting 4 additional bytes',
      );
    });

    it('refuses bytes after the last binary input', () => {
      assertInvalid(
        () =>
          parseBinary(
            {
              inputs: [
                { name: 'A', datatype: 'INT32', shape: [1], parameters: { binary_data_size: 4 } },
              ],
            },
            Buffer.alloc(6),
          ),
        'unexpected additional input data',
        '2 bytes',
      );
    });

    it('refuses binary inputs when the body has no Inference-Header-Content-Length', () => {
      const { body } = binaryBody(
        {
          inputs: [
            { name: 'A', datatype: 'INT32', shape: [1], parameters: { binary_data_size: 4 } },
          ],
        },
        Buffer.alloc(4),
      );
      // Without the header the whole body is JSON, so the trailing bytes make it malformed.
      assertInvalid(
        () => parseInferRequest({ body, modelName: MODEL, modelVersion: '' }),
        'failed to parse',
      );
    });

    for (const size of [-4, 1.5, '4', true]) {
      it(`refuses binary_data_size ${JSON.stringify(size)}`, () => {
        assertInvalid(
          () =>
            parseBinary(
              {
                inputs: [
                  {
                    name: 'A',
                    datatype: 'INT32',
                    shape: [1],
                    parameters: { binary_data_size: size },
                  },
                ],
              },
              Buffer.alloc(4),
            ),
          "Unable to parse 'binary_data_size' for input 'A'",
        );
      });
    }

    it('refuses a fixed-width binary input whose size does not match its shape, naming sizes and input', () => {
      assertInvalid(
        () =>
          parseBinary(
            {
              inputs: [
                {
                  name: 'A',
                  datatype: 'FP32',
                  shape: [1, 16],
                  parameters: { binary_data_size: 60 },
                },
              ],
            },
            Buffer.alloc(60),
          ),
        "input byte size mismatch for input 'A'",
        'Expected 64, got 60',
      );
    });

    it('passes BYTES binary data through as is', () => {
      const raw = Buffer.from([1, 0, 0, 0, 0x61, 0xff, 0xff]);
      const { request } = parseBinary(
        {
          inputs: [
            {
              name: 'B',
              datatype: 'BYTES',
              shape: [1],
              parameters: { binary_data_size: raw.length },
            },
          ],
        },
        raw,
      );
      assert.deepEqual(request.rawInputContents[0], raw);
    });
  });

  describe('parameters and id', () => {
    it('forwards id and request parameters with their JSON types, keeping binary_data_output to itself', () => {
      const { request, plan } = parseJson({
        id: 'req-1',
        parameters: {
          sequence_id: 42,
          sequence_start: true,
          sequence_end: false,
          priority: 2,
          timeout: 5000,
          temperature: 0.5,
          label: 'x',
          binary_data_output: true,
        },
        inputs: [input()],
      });
      assert.equal(request.id, 'req-1');
      assert.deepEqual(request.parameters, {
        sequence_id: 42,
        sequence_start: true,
        sequence_end: false,
        priority: 2,
        timeout: 5000,
        temperature: 0.5,
        label: 'x',
      });
      assert.equal(plan.binaryByDefault, true);
    });

    it('takes a string sequence_id and an exact uint64 sequence_id', () => {
      assert.equal(
        parseJson({ parameters: { sequence_id: 'abc' }, inputs: [input()] }).request.parameters
          .sequence_id,
        'abc',
      );
      const { request } = parseText(
        '{"parameters":{"sequence_id":18446744073709551615},"inputs":[]}',
      );
      assert.equal(request.parameters.sequence_id, 18446744073709551615n);
    });

    it('takes a long integer written in exponent form as a double parameter, and refuses it where an exact integer is due', () => {
      const { request } = parseText('{"parameters":{"big":1e20},"inputs":[]}');
      assert.equal(request.parameters.big, 1e20);
      assertInvalid(
        () => parseText('{"parameters":{"priority":1e20},"inputs":[]}'),
        "Unable to parse 'priority'",
      );
      assertInvalid(
        () => parseText('{"inputs":[{"name":"IN","datatype":"INT64","shape":[1],"data":[1e19]}]}'),
        'INT64',
        'got 10000000000000000000',
      );
    });

    it('refuses typed parameters of the wrong type, as Triton does', () => {
      assertInvalid(
        () => parseJson({ parameters: { sequence_id: true }, inputs: [] }),
        "Unable to parse 'sequence_id'",
      );
      assertInvalid(
        () => parseJson({ parameters: { sequence_start: 1 }, inputs: [] }),
        "Unable to parse 'sequence_start'",
      );
      assertInvalid(
        () => parseJson({ parameters: { priority: -1 }, inputs: [] }),
        "Unable to parse 'priority'",
      );
      assertInvalid(
        () => parseJson({ parameters: { timeout: 'soon' }, inputs: [] }),
        "Unable to parse 'timeout'",
      );
      assertInvalid(
        () => parseJson({ parameters: { binary_data_output: 'yes' }, inputs: [] }),
        "Unable to parse 'binary_data_output'",
      );
    });

    it("refuses parameters starting with 'triton_', reserved by Triton", () => {
      assertInvalid(
        () => parseJson({ parameters: { triton_x: 1 }, inputs: [] }),
        "starting with 'triton_' are reserved",
      );
    });

    it('refuses parameter values that are not int, bool, string or number', () => {
      assertInvalid(
        () => parseJson({ parameters: { nested: { a: 1 } }, inputs: [] }),
        "parameter 'nested' has invalid type",
      );
      assertInvalid(
        () => parseJson({ parameters: { list: [1] }, inputs: [] }),
        "parameter 'list' has invalid type",
      );
      assertInvalid(() => parseJson({ parameters: 5, inputs: [] }), "Unable to parse 'parameters'");
    });

    it('keeps a "__proto__" parameter as a plain key', () => {
      const { request } = parseText('{"parameters":{"__proto__":"x"},"inputs":[]}');
      assert.deepEqual(Object.keys(request.parameters), ['__proto__']);
      assert.equal(Object.getPrototypeOf(request.parameters), Object.prototype);
    });

    it('forwards input parameters except binary_data_size', () => {
      const raw = rawOf('INT32', [1]);
      const { request } = parseBinary(
        {
          inputs: [
            {
              name: 'A',
              datatype: 'INT32',
              shape: [1],
              parameters: { binary_data_size: 4, custom: 'k' },
            },
          ],
        },
        raw,
      );
      assert.deepEqual(request.inputs[0].parameters, { custom: 'k' });
    });
  });

  describe('requested outputs and the output plan', () => {
    it('forwards classification and other output parameters, keeping binary_data to itself', () => {
      const { request, plan } = parseJson({
        inputs: [input()],
        outputs: [
          { name: 'A', parameters: { binary_data: true, classification: 3 } },
          { name: 'B', parameters: { binary_data: false, note: 'n' } },
          { name: 'C' },
        ],
      });
      assert.deepEqual(request.outputs, [
        { name: 'A', parameters: { classification: 3 } },
        { name: 'B', parameters: { note: 'n' } },
        { name: 'C', parameters: {} },
      ]);
      assert.deepEqual(plan, {
        binaryByDefault: false,
        outputs: [
          { name: 'A', binary: true, base64: false, sharedMemory: false },
          { name: 'B', binary: false, base64: false, sharedMemory: false },
          { name: 'C', binary: false, base64: false, sharedMemory: false },
        ],
      });
    });

    it('lists no outputs when the request names none (Triton returns all)', () => {
      const { request, plan } = parseJson({ inputs: [input()] });
      assert.deepEqual(request.outputs, []);
      assert.deepEqual(plan.outputs, []);
    });

    it('leaves a listed output without binary_data as JSON even with binary_data_output, as Triton does', () => {
      const { plan } = parseJson({
        parameters: { binary_data_output: true },
        inputs: [input()],
        outputs: [{ name: 'A' }],
      });
      assert.equal(plan.binaryByDefault, true);
      assert.equal(plan.outputs[0].binary, false);
    });

    it('refuses bad output entries and parameters', () => {
      assertInvalid(() => parseJson({ inputs: [], outputs: {} }), "Unable to parse 'outputs'");
      assertInvalid(
        () => parseJson({ inputs: [], outputs: [{}] }),
        "Unable to parse 'name' for output 0",
      );
      assertInvalid(
        () => parseJson({ inputs: [], outputs: [{ name: 'A', parameters: { binary_data: 1 } }] }),
        "Unable to parse 'binary_data' for output 'A'",
      );
      assertInvalid(
        () =>
          parseJson({ inputs: [], outputs: [{ name: 'A', parameters: { classification: -2 } }] }),
        "Unable to set 'classification'",
      );
      assertInvalid(
        () =>
          parseJson({
            inputs: [],
            outputs: [{ name: 'A', parameters: { shared_memory_region: 'r', classification: 1 } }],
          }),
        "Output can't set both 'shared_memory_region' and 'classification'",
      );
      assertInvalid(
        () =>
          parseJson({
            inputs: [],
            outputs: [{ name: 'A', parameters: { shared_memory_region: 'r', binary_data: true } }],
          }),
        "Output can't set both 'shared_memory_region' and 'binary_data'",
      );
    });

    it('plans shared-memory outputs and base64 outputs, forwarding the shared-memory parameters', () => {
      const shm = { shared_memory_region: 'r', shared_memory_byte_size: 64 };
      const { request, plan } = parseJson({
        inputs: [],
        outputs: [
          { name: 'S', parameters: shm },
          { name: 'T', parameters: { content_type: 'base64' } },
        ],
      });
      assert.deepEqual(request.outputs[0].parameters, shm);
      assert.deepEqual(request.outputs[1].parameters, {});
      assert.equal(plan.outputs[0].sharedMemory, true);
      assert.equal(plan.outputs[1].base64, true);
    });
  });
});
