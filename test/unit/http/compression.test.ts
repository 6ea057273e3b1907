import assert from 'node:assert/strict';
import { negotiateEncoding } from '../../../src/http/compression';

describe('Accept-Encoding negotiation (as Triton chooses, plus * and case)', () => {
  const cases: Array<[header: string | undefined, coding: string | undefined]> = [
    [undefined, undefined],
    ['', undefined],
    ['gzip', 'gzip'],
    ['deflate', 'deflate'],
    // Equal weights: the first listed, as Triton picks.
    ['gzip, deflate', 'gzip'],
    ['deflate, gzip', 'deflate'],
    ['deflate, gzip, br', 'deflate'],
    // The highest weight wins.
    ['deflate;q=0.5, gzip;q=0.8', 'gzip'],
    ['gzip;q=0.2, deflate', 'deflate'],
    ['gzip; q=0.9 ,deflate;q=0.95', 'deflate'],
    // identity preferred, or nothing acceptable: no compression.
    ['gzip;q=0.5, identity', undefined],
    ['identity', undefined],
    ['gzip;q=0', undefined],
    ['gzip;q=0, deflate;q=0', undefined],
    ['br, zstd', undefined],
    // Malformed weights make an entry unusable.
    ['gzip;q=abc', undefined],
    ['gzip;q=2', undefined],
    ['gzip;q=-1, deflate', 'deflate'],
    // Case-insensitive names.
    ['GZip', 'gzip'],
    // `*`: any coding not listed, at its weight.
    ['*', 'gzip'],
    ['gzip;q=0, *', 'deflate'],
    ['gzip;q=0, deflate;q=0, *', undefined],
    ['*;q=0', undefined],
    ['identity, *;q=0.5', undefined],
    ['br, *;q=0.1', 'gzip'],
  ];
  for (const [header, coding] of cases) {
    it(`${header === undefined ? '(no header)' : JSON.stringify(header)} -> ${coding ?? 'identity'}`, () => {
      assert.equal(negotiateEncoding(header), coding);
    });
  }
});
