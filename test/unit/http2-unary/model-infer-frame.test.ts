import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ModelInferRequest } from '../../../src/protocol';
import {
  encodeModelInferRequestFrameParts,
  SCATTER_MIN_TENSOR_BYTES,
} from '../../../src/triton/model-infer-frame';
import {
  GRPC_FRAME_HEADER_BYTES,
  decodeModelInferRequest,
  encodeModelInferRequestFrame,
} from '../../../src/triton/wire';
import { requestArb } from '../wire/arbitraries';

function request(raw: Buffer[]): ModelInferRequest {
  return {
    modelName: 'identity_fp32',
    modelVersion: '1',
    id: 'req-1',
    parameters: { priority: 2 },
    inputs: raw.map((r, i) => ({
      name: `INPUT${i}`,
      datatype: 'UINT8',
      shape: [1, r.length],
      parameters: {},
    })),
    outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    rawInputContents: raw,
  };
}

describe('ModelInfer request frame in parts', () => {
  it('concatenates to exactly the contiguous frame for any request, on the scatter path too', () => {
    fc.assert(
      fc.property(requestArb, fc.boolean(), (msg, scatter) => {
        const parts = encodeModelInferRequestFrameParts(
          msg,
          scatter ? 0 : SCATTER_MIN_TENSOR_BYTES,
        );
        assert.deepEqual(Buffer.concat(parts), encodeModelInferRequestFrame(msg));
      }),
      { numRuns: 3000 },
    );
  });

  it('passes large tensors through by reference instead of copying them', () => {
    const big = Buffer.alloc(SCATTER_MIN_TENSOR_BYTES + 7, 0xab);
    // An unaligned view into a larger body, as the HTTP layer hands it over.
    const body = Buffer.alloc(big.length + 3);
    const view = body.subarray(3);
    big.copy(view);
    const small = Buffer.from([1, 2, 3]);
    const msg = request([small, view, Buffer.alloc(0)]);
    const parts = encodeModelInferRequestFrameParts(msg);
    assert.ok(parts.includes(view), 'the tensor view itself is one of the parts');
    assert.ok(parts.includes(small), 'every raw input is passed by reference on the scatter path');
    const frame = Buffer.concat(parts);
    assert.deepEqual(frame, encodeModelInferRequestFrame(msg));
    assert.equal(frame.readUInt32BE(1), frame.length - GRPC_FRAME_HEADER_BYTES);
    const decoded = decodeModelInferRequest(frame.subarray(GRPC_FRAME_HEADER_BYTES));
    assert.deepEqual(decoded.rawInputContents[1], view);
    assert.equal(decoded.rawInputContents[2]!.length, 0);
  });

  it('keeps small requests in one contiguous frame', () => {
    const msg = request([Buffer.alloc(1024, 1)]);
    const parts = encodeModelInferRequestFrameParts(msg);
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0], encodeModelInferRequestFrame(msg));
  });

  it('encodes a request without inputs as one frame even when scattering is asked for', () => {
    const msg = request([]);
    assert.deepEqual(encodeModelInferRequestFrameParts(msg, 0), [
      encodeModelInferRequestFrame(msg),
    ]);
  });

  it('writes the length prefix of a multi-megabyte tensor as a multi-byte varint', () => {
    const tensor = Buffer.alloc(3 * 1024 * 1024 + 1, 7);
    const msg = request([tensor]);
    const frame = Buffer.concat(encodeModelInferRequestFrameParts(msg));
    assert.deepEqual(frame, encodeModelInferRequestFrame(msg));
  });
});
