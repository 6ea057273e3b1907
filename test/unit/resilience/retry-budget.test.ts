import assert from 'node:assert/strict';
import { RetryBudget } from '../../../src/resilience';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

function acquireAll(budget: RetryBudget, limit = 10_000): number {
  let granted = 0;
  while (granted < limit && budget.tryAcquireRetry()) granted++;
  return granted;
}

describe('RetryBudget', () => {
  it('allows retries up to the ratio of recent requests and refuses the next one', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 0, now: clock.now });
    for (let i = 0; i < 100; i++) budget.recordRequest();
    assert.equal(acquireAll(budget), 20);
    assert.equal(budget.tryAcquireRetry(), false);
  });

  it('grants new retries as new requests arrive', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0.5, minRetriesPerSecond: 0, now: clock.now });
    for (let i = 0; i < 4; i++) budget.recordRequest();
    assert.equal(acquireAll(budget), 2);
    budget.recordRequest();
    budget.recordRequest();
    assert.equal(acquireAll(budget), 1);
  });

  it('lets low traffic retry through the per-second floor', () => {
    const clock = manualClock();
    const budget = new RetryBudget({
      ratio: 0.1,
      minRetriesPerSecond: 1,
      windowMs: 10_000,
      now: clock.now,
    });
    budget.recordRequest(); // 0.1 of one request alone would allow nothing
    assert.equal(acquireAll(budget), 10);
  });

  it('refuses every retry with a zero ratio and a zero floor', () => {
    const budget = new RetryBudget({ ratio: 0, minRetriesPerSecond: 0 });
    for (let i = 0; i < 50; i++) budget.recordRequest();
    assert.equal(budget.tryAcquireRetry(), false);
  });

  it('forgets requests and retries once their bucket leaves the window', () => {
    const clock = manualClock();
    const budget = new RetryBudget({
      ratio: 0.2,
      minRetriesPerSecond: 0,
      windowMs: 10_000,
      buckets: 10,
      now: clock.now,
    });
    for (let i = 0; i < 100; i++) budget.recordRequest();
    assert.equal(acquireAll(budget), 20);

    clock.advance(10_000);
    assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, allowed: 0 });
    assert.equal(budget.tryAcquireRetry(), false, 'expired requests grant nothing');

    for (let i = 0; i < 10; i++) budget.recordRequest();
    assert.equal(acquireAll(budget), 2, 'expired retries no longer count against the budget');
  });

  it('slides bucket by bucket: only the oldest bucket expires', () => {
    const clock = manualClock(0);
    const budget = new RetryBudget({
      ratio: 0.2,
      minRetriesPerSecond: 0,
      windowMs: 10_000,
      buckets: 10,
      now: clock.now,
    });
    for (let i = 0; i < 50; i++) budget.recordRequest(); // bucket at t=0
    clock.advance(5_000);
    for (let i = 0; i < 50; i++) budget.recordRequest(); // bucket at t=5s
    assert.equal(budget.snapshot().requests, 100);
    assert.equal(acquireAll(budget), 20); // spent in the t=5s bucket

    clock.advance(5_000); // t=10s: the t=0 bucket is out
    assert.equal(budget.snapshot().requests, 50);
    assert.equal(budget.tryAcquireRetry(), false, '20 retries still in window exceed 0.2 * 50');

    clock.advance(5_000); // t=15s: the t=5s bucket and its retries are out too
    assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, allowed: 0 });
  });

  it('clears the whole window after a long idle gap', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, minRetriesPerSecond: 0, now: clock.now });
    for (let i = 0; i < 30; i++) budget.recordRequest();
    acquireAll(budget);
    clock.advance(3_600_000);
    assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, allowed: 0 });
  });

  it('rejects a negative ratio, a negative floor and a bucket count below one', () => {
    assert.throws(() => new RetryBudget({ ratio: -0.1, minRetriesPerSecond: 0 }), /ratio/);
    assert.throws(() => new RetryBudget({ ratio: 0.2, minRetriesPerSecond: -1 }), /minRetries/);
    assert.throws(
      () => new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 1, buckets: 0 }),
      /buckets/,
    );
  });
});
