import assert from 'node:assert/strict';
import { ExponentialBackoff } from '../../../src/resilience';
import { seededRandom } from './seeded-random';

describe('ExponentialBackoff (full jitter)', () => {
  it('doubles the ceiling each retry until the cap', () => {
    const backoff = new ExponentialBackoff({ baseMs: 20, capMs: 1000 });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((retry) => backoff.ceiling(retry)),
      [20, 40, 80, 160, 320, 640, 1000, 1000],
    );
  });

  it('stays at the cap for retry counts whose power of two overflows', () => {
    const backoff = new ExponentialBackoff({ baseMs: 20, capMs: 1000, random: () => 0.5 });
    assert.equal(backoff.ceiling(5000), 1000);
    assert.equal(backoff.delay(5000), 500);
  });

  it('scales the random draw over [0, ceiling): zero and near-one give the bounds', () => {
    assert.equal(new ExponentialBackoff({ baseMs: 20, capMs: 1000, random: () => 0 }).delay(3), 0);
    const high = new ExponentialBackoff({ baseMs: 20, capMs: 1000, random: () => 0.999999 });
    assert.ok(high.delay(3) < 160 && high.delay(3) > 159.9);
  });

  it('keeps every delay within [0, min(cap, base * 2^retry))', () => {
    const backoff = new ExponentialBackoff({ baseMs: 25, capMs: 300, random: seededRandom(1) });
    for (let retry = 0; retry < 10; retry++) {
      const ceiling = Math.min(300, 25 * 2 ** retry);
      for (let i = 0; i < 500; i++) {
        const delay = backoff.delay(retry);
        assert.ok(
          delay >= 0 && delay < ceiling,
          `retry ${retry}: ${delay} outside [0, ${ceiling})`,
        );
      }
    }
  });

  it('spreads delays over the whole window instead of clustering near the ceiling', () => {
    const backoff = new ExponentialBackoff({ baseMs: 20, capMs: 1000, random: seededRandom(7) });
    const quarters = [0, 0, 0, 0];
    let sum = 0;
    const draws = 10_000;
    for (let i = 0; i < draws; i++) {
      const delay = backoff.delay(3); // ceiling 160
      quarters[Math.floor(delay / 40)]! += 1;
      sum += delay;
    }
    for (const count of quarters) assert.ok(count > 2200 && count < 2800, `quarters ${quarters}`);
    const mean = sum / draws;
    assert.ok(mean > 76 && mean < 84, `mean ${mean}`);
  });

  it('rejects a negative base or a cap below the base', () => {
    assert.throws(() => new ExponentialBackoff({ baseMs: -1, capMs: 10 }), /baseMs/);
    assert.throws(() => new ExponentialBackoff({ baseMs: 50, capMs: 10 }), /capMs/);
  });
});
