import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { trimHeap, trimHeapWhenIdle } from '../../../src/heap-trim';

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
}

/** Keeps many young objects alive across scavenges, which makes V8 grow the young generation. */
function growYoungGeneration(): void {
  let keep: object[] = [];
  for (let i = 0; i < 1_500_000; i++) {
    keep.push({ i, text: `item ${i}` });
    if (keep.length > 200_000) keep = [];
  }
}

describe('heap trimming', function () {
  this.timeout(20_000);

  it('shrinks a grown young generation back to its minimum', function () {
    growYoungGeneration();
    const grown = newSpaceBytes();
    trimHeap();
    const trimmed = newSpaceBytes();
    assert.ok(grown > 4 * 1024 * 1024, `young generation grew (${grown} bytes)`);
    assert.ok(trimmed <= 2 * 1024 * 1024, `young generation trimmed to ${trimmed} bytes`);
  });

  it('trims once after a busy period ends, not while idle throughout', async function () {
    let trims = 0;
    // Intervals are generous: only the order busy -> idle matters, not timing.
    const stop = trimHeapWhenIdle(200, () => trims++);
    try {
      // Whatever ran before this test may count as a first busy period.
      await new Promise((r) => setTimeout(r, 700));
      const settled = trims;
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(trims, settled, 'an idle process is not trimmed again and again');
      const busyUntil = Date.now() + 400;
      while (Date.now() < busyUntil) growYoungGeneration();
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal(trims, settled + 1, 'one trim once the busy period is over');
    } finally {
      stop();
    }
  });
});
