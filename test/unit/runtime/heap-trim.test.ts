import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { BurstEnd, trimHeap } from '../../../src/heap-trim';

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
  it('shrinks a grown young generation back to its minimum', function () {
    growYoungGeneration();
    const grown = newSpaceBytes();
    trimHeap();
    const trimmed = newSpaceBytes();
    assert.ok(grown > 4 * 1024 * 1024, `young generation grew (${grown} bytes)`);
    assert.ok(trimmed <= 2 * 1024 * 1024, `young generation trimmed to ${trimmed} bytes`);
  });

  it('trims once when a busy period ends, never while idle throughout', function () {
    const burst = new BurstEnd();
    const decide = (utilizations: number[]) => utilizations.map((u) => burst.next(u));
    assert.deepEqual(decide([0, 0.003, 0.02, 0]), [false, false, false, false]);
    // Busy, still warm, then quiet: one trim, and the interval after it is its own tail.
    assert.deepEqual(decide([0.4, 0.03, 0.005, 0.2, 0, 0]), [
      false,
      false,
      true,
      false,
      false,
      false,
    ]);
    assert.deepEqual(decide([0.9, 0.006]), [false, true]);
  });
});
