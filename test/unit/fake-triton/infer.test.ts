import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { DATATYPES, elementBytes, type Datatype } from '../../../src/protocol';
import {
  decodeBytesElements,
  encodeBytesElements,
  identityModel,
  simpleModel,
  startFakeTriton,
  type FakeTriton,
  type WireInferInput,
} from '../../../src/fake-triton';
import { TestClient, expectStatus, int32Buffer, readInt32s, simpleRequest } from './grpc-client';

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

function input(
  name: string,
  datatype: string,
  shape: number[],
  extra: Partial<WireInferInput> = {},
): WireInferInput {
  return { name, datatype, shape: shape.map(String), parameters: {}, contents: null, ...extra };
}

/** Deterministic bytes of the right size for a datatype (BYTES: length-prefixed strings). */
function sampleData(datatype: Datatype, count: number): Buffer {
  if (datatype === 'BYTES')
    return encodeBytesElements(Array.from({ length: count }, (_, i) => `élément ${i}`));
  const data = Buffer.alloc(count * elementBytes(datatype));
  for (let i = 0; i < data.length; i++)
    data[i] = datatype === 'BOOL' ? i % 2 : (i * 37 + 11) & 0xff;
  return data;
}

describe('fake Triton: ModelInfer', () => {
  let fake: FakeTriton;
  let client: TestClient;

  before(async () => {
    fake = await startFakeTriton();
    client = new TestClient(fake.address);
  });

  after(async () => {
    client.close();
    await fake.stop();
  });

  describe('simple', () => {
    it('answers OUTPUT0 = INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1', async () => {
      const a = range(16, (i) => i);
      const b = range(16, () => 1);
      const response = await client.infer(simpleRequest(a, b, { id: 'req-7' }));
      assert.equal(response.model_name, 'simple');
      assert.equal(response.model_version, '1');
      assert.equal(response.id, 'req-7');
      assert.deepEqual(
        response.outputs.map((o) => [o.name, o.datatype, o.shape]),
        [
          ['OUTPUT0', 'INT32', ['1', '16']],
          ['OUTPUT1', 'INT32', ['1', '16']],
        ],
      );
      assert.deepEqual(
        readInt32s(response.raw_output_contents[0]!),
        range(16, (i) => i + 1),
      );
      assert.deepEqual(
        readInt32s(response.raw_output_contents[1]!),
        range(16, (i) => i - 1),
      );
    });

    it('wraps around like int32 arithmetic', async () => {
      const max = 2147483647;
      const min = -2147483648;
      const response = await client.infer(
        simpleRequest(
          range(16, (i) => (i % 2 ? max : min)),
          range(16, () => 1),
        ),
      );
      assert.deepEqual(
        readInt32s(response.raw_output_contents[0]!),
        range(16, (i) => (i % 2 ? min : min + 1)),
      );
      assert.deepEqual(
        readInt32s(response.raw_output_contents[1]!),
        range(16, (i) => (i % 2 ? max - 1 : max)),
      );
    });

    it('computes a batch of several rows', async () => {
      const response = await client.infer({
        model_name: 'simple',
        inputs: [input('INPUT0', 'INT32', [3, 16]), input('INPUT1', 'INT32', [3, 16])],
        raw_input_contents: [
          int32Buffer(range(48, (i) => i * 2)),
          int32Buffer(range(48, (i) => i)),
        ],
      });
      assert.deepEqual(response.outputs[0]!.shape, ['3', '16']);
      assert.deepEqual(
        readInt32s(response.raw_output_contents[1]!),
        range(48, (i) => i),
      );
    });

    it('returns only the requested outputs, in the requested order', async () => {
      const response = await client.infer(
        simpleRequest(
          range(16, () => 5),
          range(16, () => 3),
          {
            outputs: [{ name: 'OUTPUT1', parameters: {} }],
          },
        ),
      );
      assert.deepEqual(
        response.outputs.map((o) => o.name),
        ['OUTPUT1'],
      );
      assert.deepEqual(
        readInt32s(response.raw_output_contents[0]!),
        range(16, () => 2),
      );
    });

    it('accepts typed int_contents instead of raw bytes', async () => {
      const response = await client.infer({
        model_name: 'simple',
        inputs: [
          input('INPUT0', 'INT32', [1, 16], {
            contents: contents({ int_contents: range(16, (i) => i) }),
          }),
          input('INPUT1', 'INT32', [1, 16], {
            contents: contents({ int_contents: range(16, (i) => 2 * i) }),
          }),
        ],
      });
      assert.deepEqual(
        readInt32s(response.raw_output_contents[0]!),
        range(16, (i) => 3 * i),
      );
    });

    it('records the last request with its id, parameters and metadata', async () => {
      await client.infer(
        simpleRequest(
          range(16, () => 0),
          range(16, () => 0),
          {
            id: 'abc',
            parameters: { sequence_id: { int64_param: '42' }, priority: { uint64_param: '1' } },
          },
        ),
        { metadata: { 'x-request-id': 'abc' } },
      );
      const last = fake.lastRequest!;
      assert.equal(last.rpc, 'ModelInfer');
      assert.equal(last.request.id, 'abc');
      assert.equal(last.request.parameters['sequence_id']!.int64_param, '42');
      assert.deepEqual(last.metadata.get('x-request-id'), ['abc']);
    });
  });

  describe('identity', () => {
    for (const datatype of DATATYPES) {
      it(`returns ${datatype} bytes and shape unchanged`, async () => {
        const data = sampleData(datatype, 6);
        const response = await client.infer({
          model_name: `identity_${datatype.toLowerCase()}`,
          inputs: [input('INPUT0', datatype, [2, 3])],
          raw_input_contents: [data],
        });
        assert.deepEqual(response.outputs, [
          { name: 'OUTPUT0', datatype, shape: ['2', '3'], parameters: {}, contents: null },
        ]);
        assert.ok(response.raw_output_contents[0]!.equals(data));
      });
    }

    it('serves `identity` as FP32', async () => {
      const data = Buffer.alloc(8);
      data.writeFloatLE(1.5, 0);
      data.writeFloatLE(-2.25, 4);
      const response = await client.infer({
        model_name: 'identity',
        inputs: [input('INPUT0', 'FP32', [1, 2])],
        raw_input_contents: [data],
      });
      assert.ok(response.raw_output_contents[0]!.equals(data));
    });

    it('accepts typed contents of each kind and answers with raw bytes', async () => {
      const cases: Array<[Datatype, Partial<Contents>, Buffer]> = [
        ['BOOL', { bool_contents: [true, false] }, Buffer.from([1, 0])],
        ['INT8', { int_contents: [-1, 127] }, Buffer.from([0xff, 0x7f])],
        ['UINT16', { uint_contents: [65535, 1] }, Buffer.from([0xff, 0xff, 1, 0])],
        [
          'INT64',
          { int64_contents: ['-9007199254740993', '1'] },
          bigints([-9007199254740993n, 1n], true),
        ],
        [
          'UINT64',
          { uint64_contents: ['18446744073709551615', '0'] },
          bigints([2n ** 64n - 1n, 0n], false),
        ],
        ['FP64', { fp64_contents: [0.1, -3] }, doubles([0.1, -3])],
        [
          'BYTES',
          { bytes_contents: [Buffer.from('hi'), Buffer.from('')] },
          encodeBytesElements(['hi', '']),
        ],
      ];
      for (const [datatype, typed, expected] of cases) {
        const response = await client.infer({
          model_name: `identity_${datatype.toLowerCase()}`,
          inputs: [input('INPUT0', datatype, [1, 2], { contents: contents(typed) })],
        });
        assert.ok(response.raw_output_contents[0]!.equals(expected), `${datatype} typed contents`);
      }
    });
  });

  describe('validation, with Triton status codes and messages', () => {
    const zeros = range(16, () => 0);

    it('NOT_FOUND for an unknown model', async () => {
      const error = await expectStatus(
        client.infer({ ...simpleRequest(zeros, zeros), model_name: 'nope' }),
        status.NOT_FOUND,
      );
      assert.equal(error.details, "Request for unknown model: 'nope' is not found");
    });

    it('NOT_FOUND for a version the model does not have', async () => {
      const error = await expectStatus(
        client.infer({ ...simpleRequest(zeros, zeros), model_version: '3' }),
        status.NOT_FOUND,
      );
      assert.equal(error.details, "Request for unknown model: 'simple' version 3 is not found");
    });

    it('INVALID_ARGUMENT naming an unexpected input', async () => {
      const request = simpleRequest(zeros, zeros);
      request.inputs![1] = input('INPUT9', 'INT32', [1, 16]);
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.equal(error.details, "unexpected inference input 'INPUT9' for model 'simple'");
    });

    it('INVALID_ARGUMENT naming a missing input', async () => {
      const request = simpleRequest(zeros, zeros);
      request.inputs = request.inputs!.slice(0, 1);
      request.raw_input_contents = request.raw_input_contents!.slice(0, 1);
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.match(error.details, /expected 2 inputs but got 1 inputs for model 'simple'/);
      assert.match(error.details, /missing required input\(s\) \['INPUT1'\]/);
    });

    it('INVALID_ARGUMENT naming an input of the wrong datatype', async () => {
      const request = simpleRequest(zeros, zeros);
      request.inputs![0] = input('INPUT0', 'FP32', [1, 16]);
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.equal(
        error.details,
        "[request id: <id_unknown>] inference input 'INPUT0' data-type is 'FP32', but model 'simple' expects 'INT32'",
      );
    });

    it('INVALID_ARGUMENT naming an input of the wrong shape', async () => {
      const request = simpleRequest(zeros.slice(0, 8), zeros.slice(0, 8), { id: 'r1' });
      request.inputs = [input('INPUT0', 'INT32', [1, 8]), input('INPUT1', 'INT32', [1, 8])];
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.match(
        error.details,
        /^\[request id: r1\] unexpected shape for input 'INPUT0' for model 'simple'\. Expected \[-1,16\], got \[1,8\]\./,
      );
    });

    it('INVALID_ARGUMENT when the raw byte size does not match the shape', async () => {
      const request = simpleRequest(zeros, zeros.slice(0, 15));
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.equal(
        error.details,
        "[request id: <id_unknown>] input byte size mismatch for input 'INPUT1' for model 'simple'. Expected 64, got 60",
      );
    });

    it('INVALID_ARGUMENT when an input has no data', async () => {
      const request = simpleRequest(zeros, zeros);
      request.raw_input_contents = request.raw_input_contents!.slice(0, 1);
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.equal(
        error.details,
        "unable to find data for input tensor 'INPUT1' for model 'simple' in request.",
      );
    });

    it('INVALID_ARGUMENT when typed contents do not match the datatype', async () => {
      const error = await expectStatus(
        client.infer({
          model_name: 'identity_fp32',
          inputs: [input('INPUT0', 'FP32', [1, 1], { contents: contents({ int_contents: [1] }) })],
        }),
        status.INVALID_ARGUMENT,
      );
      assert.equal(
        error.details,
        "unexpected explicit tensor data for input tensor 'INPUT0' for model 'identity_fp32' of type 'INT32', expected datatype 'FP32'",
      );
    });

    it('INVALID_ARGUMENT when BYTES data holds the wrong number of elements', async () => {
      const error = await expectStatus(
        client.infer({
          model_name: 'identity_bytes',
          inputs: [input('INPUT0', 'BYTES', [1, 3])],
          raw_input_contents: [encodeBytesElements(['a', 'b'])],
        }),
        status.INVALID_ARGUMENT,
      );
      assert.match(error.details, /expected 3 string elements for inference input 'INPUT0'/);
    });

    it('INVALID_ARGUMENT naming an unknown requested output', async () => {
      const error = await expectStatus(
        client.infer(
          simpleRequest(zeros, zeros, { outputs: [{ name: 'OUTPUT7', parameters: {} }] }),
        ),
        status.INVALID_ARGUMENT,
      );
      assert.equal(error.details, "unexpected inference output 'OUTPUT7' for model 'simple'");
    });

    it('INVALID_ARGUMENT for a batch larger than max_batch_size', async () => {
      const request = {
        model_name: 'simple',
        inputs: [input('INPUT0', 'INT32', [9, 16]), input('INPUT1', 'INT32', [9, 16])],
        raw_input_contents: [int32Buffer(range(144, () => 0)), int32Buffer(range(144, () => 0))],
      };
      const error = await expectStatus(client.infer(request), status.INVALID_ARGUMENT);
      assert.match(error.details, /inference request batch-size must be <= 8 for 'simple'/);
    });

    it('UNIMPLEMENTED for a decoupled model over ModelInfer', async () => {
      const error = await expectStatus(
        client.infer({
          model_name: 'repeat',
          inputs: [input('IN', 'INT32', [2])],
          raw_input_contents: [int32Buffer([1, 2])],
        }),
        status.UNIMPLEMENTED,
      );
      assert.equal(
        error.details,
        "ModelInfer RPC doesn't support models with decoupled transaction policy",
      );
    });
  });

  describe('classification', () => {
    it('replaces an output by its top classes as "value:index" strings', async () => {
      const scores = Buffer.alloc(16);
      [0.1, 0.7, 0.05, 0.15].forEach((v, i) => scores.writeFloatLE(v, i * 4));
      const response = await client.infer({
        model_name: 'identity_fp32',
        inputs: [input('INPUT0', 'FP32', [1, 4])],
        outputs: [{ name: 'OUTPUT0', parameters: { classification: { int64_param: '2' } } }],
        raw_input_contents: [scores],
      });
      assert.equal(response.outputs[0]!.datatype, 'BYTES');
      assert.deepEqual(response.outputs[0]!.shape, ['2']);
      assert.deepEqual(decodeBytesElements(response.raw_output_contents[0]!).map(String), [
        '0.700000:1',
        '0.150000:3',
      ]);
    });

    it('gives each batch entry its own classes when the model batches', async () => {
      const response = await client.infer(
        simpleRequest(
          range(16, (i) => (i === 4 ? 100 : i)),
          range(16, () => 0),
          {
            outputs: [{ name: 'OUTPUT0', parameters: { classification: { int64_param: '1' } } }],
          },
        ),
      );
      assert.deepEqual(response.outputs[0]!.shape, ['1', '1']);
      assert.deepEqual(decodeBytesElements(response.raw_output_contents[0]!).map(String), [
        '100:4',
      ]);
    });
  });

  describe('versions and custom models', () => {
    it('serves the latest ready version and a pinned one', async () => {
      fake.addModel(simpleModel({ name: 'simple_v', versions: ['1', '2'] }));
      const zeros = range(16, () => 0);
      const latest = await client.infer({ ...simpleRequest(zeros, zeros), model_name: 'simple_v' });
      assert.equal(latest.model_version, '2');
      fake.unloadModel('simple_v', '2');
      const fallback = await client.infer({
        ...simpleRequest(zeros, zeros),
        model_name: 'simple_v',
      });
      assert.equal(fallback.model_version, '1');
      const error = await expectStatus(
        client.infer({
          ...simpleRequest(zeros, zeros),
          model_name: 'simple_v',
          model_version: '2',
        }),
        status.UNAVAILABLE,
      );
      assert.equal(
        error.details,
        "Request for unknown model: 'simple_v' version 2 is not at ready state",
      );
      fake.removeModel('simple_v');
    });

    it('runs a model added by the test with its own compute', async () => {
      fake.addModel(
        identityModel('INT32', {
          name: 'negate',
          compute: (inputs) => {
            const x = inputs.get('INPUT0')!;
            const out = Buffer.alloc(x.data.length);
            for (let o = 0; o < out.length; o += 4) out.writeInt32LE(-x.data.readInt32LE(o), o);
            return new Map([['OUTPUT0', { ...x, data: out }]]);
          },
        }),
      );
      const response = await client.infer({
        model_name: 'negate',
        inputs: [input('INPUT0', 'INT32', [1, 3])],
        raw_input_contents: [int32Buffer([1, -2, 3])],
      });
      assert.deepEqual(readInt32s(response.raw_output_contents[0]!), [-1, 2, -3]);
      fake.removeModel('negate');
    });
  });

  describe('ModelStreamInfer', () => {
    it('sends one response per element from the decoupled repeat model', async () => {
      const responses = await client.stream([
        {
          model_name: 'repeat',
          id: 's1',
          inputs: [input('IN', 'INT32', [3])],
          raw_input_contents: [int32Buffer([7, 8, 9])],
          parameters: { triton_enable_empty_final_response: { bool_param: true } },
        },
      ]);
      assert.equal(responses.length, 4);
      const values = responses
        .slice(0, 3)
        .map((r) => readInt32s(r.infer_response!.raw_output_contents[0]!)[0]);
      assert.deepEqual(values, [7, 8, 9]);
      assert.ok(responses.every((r) => r.error_message === '' && r.infer_response!.id === 's1'));
      const finals = responses.map(
        (r) => r.infer_response!.parameters['triton_final_response']!.bool_param,
      );
      assert.deepEqual(finals, [false, false, false, true]);
    });

    it('answers non-decoupled models once per request and reports errors in-stream', async () => {
      const zeros = range(16, () => 1);
      const responses = await client.stream([
        simpleRequest(zeros, zeros, { id: 'a' }),
        { ...simpleRequest(zeros, zeros, { id: 'b' }), model_name: 'missing' },
      ]);
      assert.equal(responses.length, 2);
      assert.equal(responses[0]!.infer_response!.id, 'a');
      assert.deepEqual(
        readInt32s(responses[0]!.infer_response!.raw_output_contents[0]!),
        range(16, () => 2),
      );
      assert.equal(
        responses[1]!.error_message,
        "Request for unknown model: 'missing' is not found",
      );
      assert.equal(responses[1]!.infer_response!.id, 'b');
    });
  });
});

type Contents = {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: string[];
  uint_contents: number[];
  uint64_contents: string[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
};

function contents(partial: Partial<Contents>): Contents {
  return {
    bool_contents: [],
    int_contents: [],
    int64_contents: [],
    uint_contents: [],
    uint64_contents: [],
    fp32_contents: [],
    fp64_contents: [],
    bytes_contents: [],
    ...partial,
  };
}

function bigints(values: bigint[], signed: boolean): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) =>
    signed ? out.writeBigInt64LE(v, i * 8) : out.writeBigUInt64LE(v, i * 8),
  );
  return out;
}

function doubles(values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => out.writeDoubleLE(v, i * 8));
  return out;
}
