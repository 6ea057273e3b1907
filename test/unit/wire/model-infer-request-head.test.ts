import assert from 'node:assert/strict';
import fc from 'fast-check';
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

  describe('over the pieces a message arrived in', () => {
    const small = encodeModelInferRequest({
      ...request,
      inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 8], parameters: {} }],
      rawInputContents: [Buffer.alloc(32, 7)],
    });

    /** `bytes` cut at the given points (any order, duplicates and empty pieces allowed). */
    function cut(bytes: Buffer, points: number[]): Buffer[] {
      const sorted = points.map((p) => p % (bytes.length + 1)).sort((a, b) => a - b);
      const parts: Buffer[] = [];
      let at = 0;
      for (const p of sorted) {
        parts.push(bytes.subarray(at, p));
        at = p;
      }
      parts.push(bytes.subarray(at));
      return parts;
    }

    it('reads the same head wherever the pieces are cut', () => {
      fc.assert(
        fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), (points) => {
          assert.deepEqual(
            readModelInferRequestHead(cut(small, points)),
            readModelInferRequestHead(small),
          );
        }),
        { numRuns: 2000 },
      );
    });

    it('joins only the head fields, not the tensors, of a large message in 16 KiB pieces', () => {
      const whole = encodeModelInferRequest(request);
      const parts: Buffer[] = [];
      // Cut inside the head fields too, as an unlucky first DATA frame would.
      parts.push(whole.subarray(0, 9));
      for (let i = 9; i < whole.length; i += 16384) parts.push(whole.subarray(i, i + 16384));
      const concat = Buffer.concat;
      let joined = 0;
      Buffer.concat = (list: readonly Uint8Array[], length?: number) => {
        const out = concat(list, length);
        joined += out.length;
        return out;
      };
      let head;
      try {
        head = readModelInferRequestHead(parts);
      } finally {
        Buffer.concat = concat;
      }
      assert.deepEqual(head, readModelInferRequestHead(whole));
      assert.ok(joined < 1024, `joined ${joined} bytes`);
    });

    it('throws the same wire format error as for the joined message', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 1, maxLength: 80 }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
          (bytes, points) => {
            const whole = Buffer.concat([small.subarray(0, 20), Buffer.from(bytes)]);
            let expected: unknown;
            try {
              expected = readModelInferRequestHead(whole);
            } catch (err) {
              expected = err;
            }
            let actual: unknown;
            try {
              actual = readModelInferRequestHead(cut(whole, points));
            } catch (err) {
              actual = err;
            }
            if (expected instanceof Error) {
              assert.ok(isWireFormatError(actual));
              assert.equal((actual as Error).message, expected.message);
            } else {
              assert.deepEqual(actual, expected);
            }
          },
        ),
        { numRuns: 2000 },
      );
    });
  });
});
