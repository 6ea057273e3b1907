import { strict as assert } from 'node:assert';
import { RecentCalls } from '../../../src/observability';

describe('RecentCalls: calls, errors and p99 over a sliding window', () => {
  it('reports nothing (nulls, not zeros) before any call', () => {
    const w = new RecentCalls();
    assert.deepEqual(w.summary(1_000), {
      windowSeconds: 60,
      calls: 0,
      errors: 0,
      errorRatio: null,
      p99Seconds: null,
    });
  });

  it('counts calls and errors and gives the error ratio', () => {
    const w = new RecentCalls();
    for (let i = 0; i < 8; i++) w.record(0.01, false, 1_000 + i);
    for (let i = 0; i < 2; i++) w.record(0.01, true, 1_000 + i);
    const s = w.summary(2_000);
    assert.equal(s.calls, 10);
    assert.equal(s.errors, 2);
    assert.equal(s.errorRatio, 0.2);
  });

  it('gives p99 as the upper bound of its latency bucket, at most 20% above the true value', () => {
    const w = new RecentCalls();
    // 990 fast calls and 10 slow ones: the 99th percentile is still a fast one...
    for (let i = 0; i < 990; i++) w.record(0.005, false, 100);
    for (let i = 0; i < 10; i++) w.record(0.8, false, 100);
    const fast = w.summary(200).p99Seconds!;
    assert.ok(fast >= 0.005 && fast <= 0.005 * 1.2, `p99 ${fast}`);
    // ...and 11 slow ones out of 1001 make it a slow one.
    w.record(0.8, false, 100);
    const slow = w.summary(200).p99Seconds!;
    assert.ok(slow >= 0.8 && slow <= 0.8 * 1.2, `p99 ${slow}`);
  });

  it('forgets calls older than the window, one slot at a time', () => {
    const w = new RecentCalls({ windowMs: 60_000, slots: 12 });
    w.record(0.01, true, 0); // slot [0, 5 s)
    w.record(0.01, false, 30_000); // slot [30, 35 s)
    assert.equal(w.summary(59_999).calls, 2);
    // At 60 s the first slot has left the window; the second is still in.
    const later = w.summary(60_000);
    assert.equal(later.calls, 1);
    assert.equal(later.errors, 0);
    assert.equal(w.summary(95_000).calls, 0);
  });

  it('clears a reused slot before counting into it again', () => {
    const w = new RecentCalls({ windowMs: 10_000, slots: 2 });
    for (let i = 0; i < 5; i++) w.record(2, true, 1_000);
    // 10 s later the same ring slot holds a new period.
    w.record(0.001, false, 11_000);
    const s = w.summary(11_000);
    assert.equal(s.calls, 1);
    assert.equal(s.errors, 0);
    assert.ok(s.p99Seconds! < 0.01);
  });

  it('puts calls longer than the last bucket in the last bucket rather than losing them', () => {
    const w = new RecentCalls();
    w.record(3_600, false, 10);
    const s = w.summary(10);
    assert.equal(s.calls, 1);
    assert.ok(s.p99Seconds! >= 100, `p99 ${s.p99Seconds}`);
  });
});
