import assert from 'node:assert/strict';
import {
  encodeModelInferRequest,
  isWireFormatError,
  readModelInferRequestHead,
} from '../../../src/triton/wire';

describe('readModelInferRequestHead', () => {
  const tensor = Buffer.alloc(1 << 20, 7);
  const request = {
    modelName: 'simple',
    modelVersion: '3',
    id: 'req-1',
    parameters: {
      sequence_id: 42,
      sequence_start: true,
      sequence_end: false,
      priority: 2,
      timeout: 1500,
      tag: 'x',
    },
    inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, tensor.length / 4], parameters: {} }],
    outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    rawInputContents: [tensor],
  };

  it('reads name, version, id and request parameters, skipping tensors', () => {
    const head = readModelInferRequestHead(encodeModelInferRequest(request));
    assert.deepEqual(head, {
      modelName: 'simple',
      modelVersion: '3',
      id: 'req-1',
      parameters: request.parameters,
    });
  });

  it('reads parameters written after the tensors (fields may come in any order)', () => {
    const tail = encodeModelInferRequest({
      ...request,
      inputs: [],
      outputs: [],
      rawInputContents: [],
    });
    const tensors = encodeModelInferRequest({
      ...request,
      modelName: '',
      modelVersion: '',
      id: '',
      parameters: {},
    });
    const head = readModelInferRequestHead(Buffer.concat([tensors, tail]));
    assert.equal(head.modelName, 'simple');
    assert.equal(head.parameters.sequence_id, 42);
  });

  it('gives defaults for an empty message', () => {
    assert.deepEqual(readModelInferRequestHead(Buffer.alloc(0)), {
      modelName: '',
      modelVersion: '',
      id: '',
      parameters: {},
    });
  });

  it('throws a wire format error for a length that runs past the message', () => {
    const bytes = encodeModelInferRequest(request).subarray(0, 100);
    assert.throws(() => readModelInferRequestHead(bytes), isWireFormatError);
  });
});
