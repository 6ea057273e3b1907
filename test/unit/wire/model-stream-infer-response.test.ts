import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type ModelStreamInferResponse,
  decodeModelStreamInferResponse,
  encodeModelStreamInferResponse,
} from '../../../src/triton/wire';
import {
  expectedResponse,
  messageSpecArb,
  responseArb,
  responseObject,
  textArb,
} from './arbitraries';
import {
  type PlainStreamResponse,
  type ReferenceTypes,
  comparableReferenceResponse,
  kindedResponse,
  loadReference,
  toPlain,
} from './protobufjs-reference';

describe('ModelStreamInferResponse wire codec', () => {
  let reference: ReferenceTypes;

  before(() => {
    reference = loadReference({ packed: true });
  });

  it('decodes what protobufjs encodes: an error message, a response, both or neither', () => {
    fc.assert(
      fc.property(textArb, fc.option(messageSpecArb, { nil: undefined }), (errorMessage, spec) => {
        const object = {
          error_message: errorMessage,
          ...(spec === undefined ? {} : { infer_response: responseObject(spec) }),
        };
        const encoded = reference.stream.encode(reference.stream.fromObject(object)).finish();
        const expected: ModelStreamInferResponse =
          spec === undefined
            ? { errorMessage }
            : { errorMessage, response: expectedResponse(spec) };
        assert.deepEqual(decodeModelStreamInferResponse(encoded), expected);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes stream messages protobufjs decodes to the same error message and response', () => {
    fc.assert(
      fc.property(textArb, fc.option(responseArb, { nil: undefined }), (errorMessage, response) => {
        const msg: ModelStreamInferResponse =
          response === undefined ? { errorMessage } : { errorMessage, response };
        const plain = toPlain<PlainStreamResponse>(
          reference.stream,
          encodeModelStreamInferResponse(msg),
        );
        assert.equal(plain.error_message, errorMessage);
        if (response === undefined) {
          assert.equal(plain.infer_response, null);
        } else {
          assert.ok(plain.infer_response);
          assert.deepEqual(
            comparableReferenceResponse(plain.infer_response),
            kindedResponse(response),
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it('merges a response split over two occurrences of infer_response', () => {
    const first = encodeModelStreamInferResponse({
      errorMessage: '',
      response: {
        modelName: 'a',
        modelVersion: '1',
        id: '',
        parameters: { x: 1 },
        outputs: [{ name: 'o1', datatype: 'INT8', shape: [1], parameters: {} }],
        rawOutputContents: [Buffer.from([7])],
      },
    });
    const second = encodeModelStreamInferResponse({
      errorMessage: 'late',
      response: {
        modelName: 'b',
        modelVersion: '',
        id: 'r',
        parameters: { y: true },
        outputs: [{ name: 'o2', datatype: 'INT8', shape: [1], parameters: {} }],
        rawOutputContents: [Buffer.from([9])],
      },
    });
    assert.deepEqual(decodeModelStreamInferResponse(Buffer.concat([first, second])), {
      errorMessage: 'late',
      response: {
        modelName: 'b',
        modelVersion: '1',
        id: 'r',
        parameters: { x: 1, y: true },
        outputs: [
          { name: 'o1', datatype: 'INT8', shape: [1], parameters: {} },
          { name: 'o2', datatype: 'INT8', shape: [1], parameters: {} },
        ],
        rawOutputContents: [Buffer.from([7]), Buffer.from([9])],
      },
    });
  });
});
