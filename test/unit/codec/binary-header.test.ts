import assert from 'node:assert/strict';
import { readBinaryHeaderLength } from '../../../src/codec';
import { assertInvalid } from './support';

describe('readBinaryHeaderLength', () => {
  it('is undefined when the header is absent', () => {
    assert.equal(readBinaryHeaderLength(undefined), undefined);
  });

  it('reads a non-negative integer, zero included', () => {
    assert.equal(readBinaryHeaderLength('0'), 0);
    assert.equal(readBinaryHeaderLength('1234'), 1234);
    assert.equal(readBinaryHeaderLength(' 56 '), 56);
  });

  for (const bad of ['', '-1', '1.5', '12abc', 'abc', '1e3', '99999999999999999999', '12, 12']) {
    it(`refuses ${JSON.stringify(bad)}, naming the header`, () => {
      assertInvalid(
        () => readBinaryHeaderLength(bad),
        'Inference-Header-Content-Length',
        JSON.stringify(bad),
      );
    });
  }
});
