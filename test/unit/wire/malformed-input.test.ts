import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import {
  decodeModelInferRequest,
  decodeModelInferResponse,
  decodeModelStreamInferResponse,
  encodeModelInferRequest,
  encodeModelInferResponse,
  isWireFormatError,
} from '../../../src/triton/wire';
import { requestArb, responseArb } from './arbitraries';

const DECODERS: [string, (bytes: Uint8Array) => unknown][] = [
  ['ModelInferRequest', decodeModelInferRequest],
  ['ModelInferResponse', decodeModelInferResponse],
  ['ModelStreamInferResponse', decodeModelStreamInferResponse],
];

/** Garbage may happen to be a valid message; anything else must be a WireFormatError. */
function decodesOrRejectsCleanly(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (e) {
    assert.ok(isWireFormatError(e), `expected a WireFormatError, got ${String(e)}`);
  }
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeModelInferResponse(bytes),
    (e: unknown) => isWireFormatError(e) && message.test(e.message),
  );
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** An output tensor {name "o", datatype, contents} built with protobufjs's low-level writer. */
function outputWithContents(
  datatype: string,
  writeContents: (w: protobuf.Writer) => void,
): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(0x2a).fork().uint32(0x0a).string('o').uint32(0x12).string(datatype);
  w.uint32(0x2a).fork();
  writeContents(w);
  w.ldelim().ldelim();
  return w.finish();
}

describe('wire decoders on malformed input', () => {
  for (const [name, decode] of DECODERS) {
    it(`${name}: random bytes either decode or raise a WireFormatError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) =>
          decodesOrRejectsCleanly(decode, bytes),
        ),
        { numRuns: 1500 },
      );
    });
  }

  it('a valid message with any byte corrupted either decodes or raises a WireFormatError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          requestArb.map(encodeModelInferRequest),
          responseArb.map(encodeModelInferResponse),
        ),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (bytes, at, flip) => {
          if (bytes.length === 0) return;
          const corrupted = Buffer.from(bytes);
          corrupted[at % corrupted.length] ^= flip;
          for (const [, decode] of DECODERS) decodesOrRejectsCleanly(decode, corrupted);
        },
      ),
      { numRuns: 800 },
    );
  });

  it('rejects every message cut short, however little is missing', () => {
    fc.assert(
      fc.property(requestArb, responseArb, fc.nat(), (req, res, cut) => {
        const request = encodeModelInferRequest(req);
        const response = encodeModelInferResponse(res);
        // The last field of each is length-delimited, so losing its last byte always shows.
        for (const [bytes, decode] of [
          [request, decodeModelInferRequest],
          [response, decodeModelInferResponse],
        ] as const) {
          if (bytes.length === 0) continue;
          assert.throws(() => decode(bytes.subarray(0, bytes.length - 1)), isWireFormatError);
          decodesOrRejectsCleanly(decode, bytes.subarray(0, cut % bytes.length));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('names the defect in a malformed message', () => {
    rejects(hex('0f'), /invalid wire type 7 at byte 1/);
    rejects(hex('00'), /invalid field number 0 at byte 0/);
    rejects(hex('0200'), /invalid field number 0/);
    rejects(hex('08 ffffffffffffffffffff 01'), /varint longer than 10 bytes/);
    rejects(hex('0a 8080808010'), /does not fit in 32 bits/);
    rejects(
      hex('0a 05 6162'),
      /length 5 at byte 1 runs past the end of its message \(2 bytes left\)/,
    );
    // A tensor of 3 bytes whose name claims 10: the enclosing message bounds it, not the buffer.
    rejects(
      hex('2a 03 0a 0a 41' + '00'.repeat(20)),
      /length 10 at byte 3 runs past the end of its message \(1 byte left\)/,
    );
    rejects(hex('0c'), /unexpected end-group tag/);
    rejects(hex('a302 08 01 ac02'), /group 36 closed by end-group tag 37/);
    rejects(hex('a302 08 01'), /truncated group/);
    rejects(hex('a302'.repeat(40)), /groups nested too deeply/);
    rejects(hex('22 06 0a 01 6b 12 01 21'), /truncated double/);
    rejects(hex('2a 04 1a 02 ffff'), /truncated varint/);
  });

  it('skips a well-formed unknown group and keeps decoding', () => {
    const decoded = decodeModelInferResponse(hex('a302 08 01 ab02 ac02 a402 0a 01 6d'));
    assert.equal(decoded.modelName, 'm');
  });

  it('rejects a shape dimension beyond the safe integer range', () => {
    const w = protobuf.Writer.create();
    w.uint32(0x2a).fork().uint32(0x1a).fork().int64('9007199254740993').ldelim().ldelim();
    rejects(w.finish(), /shape dimension 9007199254740993 is outside the safe integer range/);
  });

  it('rejects raw output contents that do not pair one-to-one with outputs', () => {
    const bytes = encodeModelInferResponse({
      modelName: 'm',
      modelVersion: '',
      id: '',
      parameters: {},
      outputs: [{ name: 'o', datatype: 'INT8', shape: [1], parameters: {} }],
      rawOutputContents: [Buffer.from([1])],
    });
    rejects(
      Buffer.concat([bytes, hex('32 01 02')]),
      /message has 2 raw_output_contents for 1 outputs/,
    );
  });

  it('rejects an output that has both raw and typed contents', () => {
    const typed = outputWithContents('INT8', (w) => w.uint32(0x10).int32(5));
    rejects(
      Buffer.concat([typed, hex('32 01 05')]),
      /output 'o' has both raw_output_contents and typed contents/,
    );
  });

  it('accepts an empty typed contents message next to raw contents', () => {
    const empty = outputWithContents('INT8', () => undefined);
    const decoded = decodeModelInferResponse(Buffer.concat([empty, hex('32 01 05')]));
    assert.deepEqual(decoded.rawOutputContents, [Buffer.from([5])]);
  });

  it('rejects typed contents in a field the datatype does not use', () => {
    rejects(
      outputWithContents('FP32', (w) => w.uint32(0x10).int32(5)),
      /tensor 'o' of datatype 'FP32' carries int_contents/,
    );
    rejects(
      outputWithContents('FP16', (w) => w.uint32(0x35).float(1)),
      /tensor 'o' of datatype 'FP16' carries fp32_contents/,
    );
    rejects(
      outputWithContents('NOT_A_TYPE', (w) => w.uint32(0x42).bytes(Buffer.from('x'))),
      /tensor 'o' of datatype 'NOT_A_TYPE' carries bytes_contents/,
    );
  });

  it('bounds names quoted from the message in error texts', () => {
    const w = protobuf.Writer.create();
    w.uint32(0x2a).fork().uint32(0x0a).string('n'.repeat(100_000)).uint32(0x12).string('FP32');
    w.uint32(0x2a).fork().uint32(0x10).int32(1).ldelim().ldelim();
    assert.throws(
      () => decodeModelInferResponse(w.finish()),
      (e: unknown) =>
        isWireFormatError(e) &&
        /^tensor 'n{64}…' of datatype/.test(e.message) &&
        e.message.length < 200,
    );
  });

  it('rejects packed fixed-width contents whose length is not a whole number of elements', () => {
    rejects(
      outputWithContents('FP32', (w) => w.uint32(0x32).bytes(Buffer.alloc(6))),
      /packed fp32_contents of 6 bytes is not a multiple of 4/,
    );
    rejects(
      outputWithContents('FP64', (w) => w.uint32(0x3a).bytes(Buffer.alloc(12))),
      /packed fp64_contents of 12 bytes is not a multiple of 8/,
    );
    rejects(
      outputWithContents('INT32', (w) => w.uint32(0x12).bytes(hex('0180'))),
      /packed int_contents ends inside a varint/,
    );
  });

  it('keeps the low bytes of integer contents wider than the datatype, as a C++ cast does', () => {
    const decoded = decodeModelInferResponse(
      outputWithContents('UINT8', (w) => w.uint32(0x22).fork().uint32(0x1ff).uint32(0x80).ldelim()),
    );
    assert.deepEqual(decoded.rawOutputContents, [Buffer.from([0xff, 0x80])]);
  });
});
