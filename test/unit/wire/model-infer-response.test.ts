import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import type { ModelInferResponse } from '../../../src/protocol';
import { decodeModelInferResponse, encodeModelInferResponse } from '../../../src/triton/wire';
import { expectedResponse, messageSpecArb, responseArb, responseObject } from './arbitraries';
import {
  type PlainResponse,
  type ReferenceTypes,
  canonicalInteger,
  comparableReferenceResponse,
  kindedResponse,
  loadReference,
  toPlain,
  valuesOnly,
} from './protobufjs-reference';
import { pseudoRandomBytes } from './pseudo-random-bytes';

/** What our decoder returns for a response our encoder wrote. */
function decodedForm(msg: ModelInferResponse): ModelInferResponse {
  return {
    ...msg,
    parameters: valuesOnly(msg.parameters),
    outputs: msg.outputs.map((o) => ({
      ...o,
      shape: o.shape.map((d) => canonicalInteger(d) as number),
      parameters: valuesOnly(o.parameters),
    })),
  };
}

describe('ModelInferResponse wire codec', () => {
  let packed: ReferenceTypes;
  let unpacked: ReferenceTypes;

  before(() => {
    packed = loadReference({ packed: true });
    unpacked = loadReference({ packed: false });
  });

  it('decodes whatever protobufjs encodes, packed or unpacked, raw or typed, into the same message with raw outputs as views', () => {
    fc.assert(
      fc.property(messageSpecArb, fc.boolean(), fc.nat({ max: 7 }), (spec, usePacked, offset) => {
        const type = (usePacked ? packed : unpacked).response;
        const encoded = type.encode(type.fromObject(responseObject(spec))).finish();
        // Place the message at an odd offset of a larger buffer, as a received frame would be.
        const host = Buffer.alloc(offset + encoded.length + 2);
        host.set(encoded, offset);
        const decoded = decodeModelInferResponse(host.subarray(offset, offset + encoded.length));
        assert.deepEqual(decoded, expectedResponse(spec));
        assert.equal(decoded.rawOutputContents.length, spec.tensors.length);
        if (spec.mode === 'raw') {
          for (const raw of decoded.rawOutputContents) assert.equal(raw.buffer, host.buffer);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('encodes any response into bytes protobufjs decodes to the same message, with each parameter in its documented oneof member', () => {
    fc.assert(
      fc.property(responseArb, (msg) => {
        const bytes = encodeModelInferResponse(msg);
        const reference = toPlain<PlainResponse>(packed.response, bytes);
        assert.deepEqual(comparableReferenceResponse(reference), kindedResponse(msg));
        assert.deepEqual(decodeModelInferResponse(bytes), decodedForm(msg));
      }),
      { numRuns: 1000 },
    );
  });

  it('carries multi-MiB tensors through both codecs, raw and typed, allocating the encoding exactly once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2 << 20, max: 6 << 20 }),
        fc.integer(),
        fc.nat({ max: 7 }),
        (size, seed, offset) => {
          const raw = pseudoRandomBytes(offset + size, seed).subarray(offset);
          const msg: ModelInferResponse = {
            modelName: 'big',
            modelVersion: '1',
            id: 'large',
            parameters: {},
            outputs: [{ name: 'y', datatype: 'UINT8', shape: [size], parameters: {} }],
            rawOutputContents: [raw],
          };
          const ours = encodeModelInferResponse(msg);
          // One exact-size allocation: the buffer is not a slice of something larger.
          assert.equal(ours.buffer.byteLength, ours.length);
          const reference = toPlain<PlainResponse>(packed.response, ours);
          assert.ok(Buffer.from(reference.raw_output_contents[0]).equals(raw));

          const theirs = packed.response
            .encode(packed.response.fromObject(responseObject(specOfRaw(size, raw))))
            .finish();
          const decoded = decodeModelInferResponse(theirs);
          assert.ok(decoded.rawOutputContents[0].equals(raw));
          assert.equal(decoded.rawOutputContents[0].buffer, theirs.buffer);

          // protobufjs builds typed arrays slowly, so the typed case is kept to 1 MiB.
          const floats = Math.min(Math.floor(size / 4), 1 << 18);
          const values = Array.from({ length: floats }, (_, i) => raw.readFloatLE(i * 4));
          const typed = unpacked.response
            .encode(
              unpacked.response.fromObject({
                outputs: [
                  {
                    name: 'f',
                    datatype: 'FP32',
                    shape: [floats],
                    contents: { fp32_contents: values },
                  },
                ],
              }),
            )
            .finish();
          const expected = Buffer.alloc(floats * 4);
          values.forEach((v, i) => expected.writeFloatLE(v, i * 4));
          assert.ok(decodeModelInferResponse(typed).rawOutputContents[0].equals(expected));
        },
      ),
      { numRuns: 3 },
    );
  });

  it('merges typed contents split across repeated, packed and unpacked occurrences', () => {
    const w = protobuf.Writer.create();
    w.uint32(0x2a).fork(); // outputs
    w.uint32(0x0a).string('o').uint32(0x12).string('FP32');
    w.uint32(0x2a).fork().uint32(0x32).fork().float(1).float(2).ldelim().ldelim();
    w.uint32(0x2a).fork().uint32(0x35).float(3).ldelim();
    w.ldelim();
    const decoded = decodeModelInferResponse(w.finish());
    const expected = Buffer.alloc(12);
    [1, 2, 3].forEach((v, i) => expected.writeFloatLE(v, i * 4));
    assert.deepEqual(decoded.rawOutputContents, [expected]);
  });

  it('skips unknown fields of every wire type at every level', () => {
    const unknowns = (w: protobuf.Writer): protobuf.Writer =>
      w
        .uint32((40 << 3) | 0)
        .uint64('18446744073709551615')
        .uint32((41 << 3) | 1)
        .fixed64(7)
        .uint32((42 << 3) | 2)
        .bytes(Buffer.from('skip me'))
        .uint32((43 << 3) | 5)
        .fixed32(9)
        .uint32((44 << 3) | 3)
        .uint32((1 << 3) | 0)
        .uint32(1)
        .uint32((45 << 3) | 3)
        .uint32((45 << 3) | 4)
        .uint32((44 << 3) | 4);
    const w = protobuf.Writer.create();
    unknowns(w.uint32(0x0a).string('m'));
    w.uint32(0x22).fork().uint32(0x0a).string('k');
    unknowns(w);
    w.uint32(0x12).fork();
    unknowns(w.uint32(0x08).uint32(1));
    w.ldelim().ldelim();
    w.uint32(0x2a).fork().uint32(0x0a).string('o').uint32(0x12).string('INT32');
    unknowns(w);
    w.uint32(0x2a).fork();
    unknowns(w.uint32(0x12).fork().int32(-7).ldelim());
    w.ldelim().ldelim();
    unknowns(w);

    const decoded = decodeModelInferResponse(w.finish());
    const expected = Buffer.alloc(4);
    expected.writeInt32LE(-7);
    assert.deepEqual(decoded, {
      modelName: 'm',
      modelVersion: '',
      id: '',
      parameters: { k: true },
      outputs: [{ name: 'o', datatype: 'INT32', shape: [], parameters: {} }],
      rawOutputContents: [expected],
    });
  });

  it('keeps a __proto__ parameter as an ordinary key without touching the prototype', () => {
    const params = Object.fromEntries([['__proto__', 'x']]);
    const decoded = decodeModelInferResponse(
      encodeModelInferResponse({
        modelName: 'm',
        modelVersion: '',
        id: '',
        parameters: params,
        outputs: [],
        rawOutputContents: [],
      }),
    );
    assert.deepEqual(Object.keys(decoded.parameters), ['__proto__']);
    assert.equal(Object.getPrototypeOf(decoded.parameters), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(decoded.parameters, '__proto__')?.value, 'x');
  });
});

function specOfRaw(size: number, raw: Buffer) {
  return {
    model_name: 'big',
    model_version: '',
    id: '',
    parameters: {},
    mode: 'raw' as const,
    tensors: [{ name: 'y', datatype: 'UINT8', shape: [size], parameters: {}, data: { raw } }],
    requestedOutputs: [],
  };
}
