import assert from 'node:assert/strict';
import { ServedExtensions, TRITON_EXTENSIONS } from '../../../src/protocol';

describe('served extensions', () => {
  it("lists what was claimed, in Triton's order, once each", () => {
    const served = new ServedExtensions();
    served.serve('logging', 'statistics');
    served.serve('classification', 'statistics');
    assert.deepEqual(served.list(), ['classification', 'statistics', 'logging']);
  });

  it('lists only what the answering server lists too, when its list is known', () => {
    const served = new ServedExtensions();
    served.serve(...TRITON_EXTENSIONS.filter((e) => e !== 'trace'));
    assert.deepEqual(served.list(['trace', 'logging', 'unknown_ext']), ['logging']);
    assert.deepEqual(served.list([]), []);
  });
});
