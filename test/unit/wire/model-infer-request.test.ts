import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ModelInferRequest } from '../../../src/protocol';
import {
  GRPC_FRAME_HEADER_BYTES,
  decodeModelInferRequest,
  encodeModelInferRequest,
  encodeModelInferRequestFrame,
  isWireFormatError,
} from '../../../src/triton/wire';
import { expectedRequest, messageSpecArb, requestArb, requestObject } from './arbitraries';
import {
  type PlainRequest,
  type ReferenceTypes,
  canonicalInteger,
  comparableReferenceRequest,
  kindedRequest,
  loadReference,
  toPlain,
  valuesOnly,
} from './protobufjs-reference';
import { pseudoRandomBytes } from './pseudo-random-bytes';

/** What our decoder returns for a request our encoder wrote. */
function decodedForm(msg: ModelInferRequest): ModelInferRequest {
  return {
    ...msg,
    parameters: valuesOnly(msg.parameters),
    inputs: msg.inputs.map((t) => ({
      ...t,
      shape: t.shape.map((d) => canonicalInteger(d) as number),
      parameters: valuesOnly(t.parameters),
    })),
    outputs: msg.outputs.map((o) => ({ ...o, parameters: valuesOnly(o.parameters) })),
  };
}

function request(overrides: Partial<ModelInferRequest>): ModelInferRequest {
  return {
    modelName: 'm',
    modelVersion: '',
    id: '',
    parameters: {},
    inputs: [],
    outputs: [],
    rawInputContents: [],
    ...overrides,
  };
}

describe('ModelInferRequest wire codec', () => {
  let packed: ReferenceTypes;
  let unpacked: ReferenceTypes;

  before(() => {
    packed = loadReference({ packed: true });
    unpacked = loadReference({ packed: false });
  });

  it('encodes any request into bytes protobufjs decodes to the same message, with each parameter in its documented oneof member', () => {
    fc.assert(
      fc.property(requestArb, (msg) => {
        const bytes = encodeModelInferRequest(msg);
        const reference = toPlain<PlainRequest>(packed.request, bytes);
        assert.deepEqual(comparableReferenceRequest(reference), kindedRequest(msg));
        assert.deepEqual(decodeModelInferRequest(bytes), decodedForm(msg));
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes whatever protobufjs encodes, packed or unpacked, with raw or typed input contents', () => {
    fc.assert(
      fc.property(messageSpecArb, fc.boolean(), (spec, usePacked) => {
        const type = (usePacked ? packed : unpacked).request;
        const encoded = type.encode(type.fromObject(requestObject(spec))).finish();
        const decoded = decodeModelInferRequest(encoded);
        assert.deepEqual(decoded, expectedRequest(spec));
        if (spec.mode === 'raw') {
          for (const raw of decoded.rawInputContents) assert.equal(raw.buffer, encoded.buffer);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('writes a gRPC frame whose header gives the length of the plain encoding that follows', () => {
    fc.assert(
      fc.property(requestArb, (msg) => {
        const frame = encodeModelInferRequestFrame(msg);
        const plain = encodeModelInferRequest(msg);
        assert.equal(frame[0], 0);
        assert.equal(frame.readUInt32BE(1), plain.length);
        assert.ok(frame.subarray(GRPC_FRAME_HEADER_BYTES).equals(plain));
      }),
      { numRuns: 200 },
    );
  });

  it('copies a multi-MiB input into one exact-size buffer that protobufjs reads back', () => {
    const size = 5 << 20;
    const raw = pseudoRandomBytes(size + 3, 42).subarray(3);
    const msg = request({
      inputs: [{ name: 'x', datatype: 'UINT8', shape: [size], parameters: {} }],
      rawInputContents: [raw],
    });
    const bytes = encodeModelInferRequest(msg);
    assert.equal(bytes.buffer.byteLength, bytes.length);
    const reference = toPlain<PlainRequest>(packed.request, bytes);
    assert.ok(Buffer.from(reference.raw_input_contents[0]).equals(raw));
  });

  it("writes negative int64 parameters and shape dimensions as ten-byte two's complement varints", () => {
    const bytes = encodeModelInferRequest(
      request({
        modelName: '',
        parameters: { n: -1 },
        inputs: [{ name: '', datatype: '', shape: [-1], parameters: {} }],
        rawInputContents: [Buffer.alloc(0)],
      }),
    );
    const minusOne = 'ffffffffffffffffff01';
    assert.equal(
      bytes.toString('hex'),
      // parameters entry {key "n", value {int64_param -1}}
      `2210` +
        `0a016e` +
        `120b` +
        `10${minusOne}` +
        // inputs {shape [-1]}
        `2a0c` +
        `1a0a${minusOne}` +
        // raw_input_contents [""]
        `3a00`,
    );
  });

  it('decodes 64-bit integers as numbers exactly when they are safe, at both signs and both edges', () => {
    const max = 2n ** 53n - 1n;
    const params = {
      maxSafe: { int64_param: max.toString() },
      aboveSafe: { int64_param: (max + 1n).toString() },
      minSafe: { int64_param: (-max).toString() },
      belowSafe: { int64_param: (-max - 1n).toString() },
      int64Min: { int64_param: (-(2n ** 63n)).toString() },
      uintMaxSafe: { uint64_param: max.toString() },
      uintAboveSafe: { uint64_param: (max + 1n).toString() },
      uint64Max: { uint64_param: (2n ** 64n - 1n).toString() },
    };
    const bytes = packed.request.encode(packed.request.fromObject({ parameters: params })).finish();
    assert.deepEqual(decodeModelInferRequest(bytes).parameters, {
      maxSafe: Number(max),
      aboveSafe: max + 1n,
      minSafe: -Number(max),
      belowSafe: -max - 1n,
      int64Min: -(2n ** 63n),
      uintMaxSafe: Number(max),
      uintAboveSafe: max + 1n,
      uint64Max: 2n ** 64n - 1n,
    });
  });

  it('refuses to encode what the wire cannot carry, naming the culprit', () => {
    const cases: [ModelInferRequest, RegExp][] = [
      [
        request({ parameters: { big: 2n ** 64n } }),
        /parameter 'big' .* outside the int64 and uint64 ranges/,
      ],
      [request({ parameters: { neg: -(2n ** 63n) - 1n } }), /parameter 'neg'/],
      [
        request({
          parameters: { u: undefined as unknown as boolean },
        }),
        /parameter 'u' has unsupported type undefined/,
      ],
      [
        request({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1.5], parameters: {} }],
          rawInputContents: [Buffer.alloc(0)],
        }),
        /tensor 'x' has invalid shape dimension 1.5/,
      ],
      [
        request({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], parameters: {} }] }),
        /0 raw input contents for 1 inputs/,
      ],
    ];
    for (const [msg, message] of cases) {
      assert.throws(
        () => encodeModelInferRequest(msg),
        (e: unknown) => isWireFormatError(e) && message.test(e.message),
      );
    }
  });
});
