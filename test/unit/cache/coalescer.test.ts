import assert from 'node:assert/strict';
import { Coalescer } from '../../../src/cache';
import { isClientGoneError } from '../../../src/admission';
import { isProxyError } from '../../../src/errors';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}

const far = () => Date.now() + 60_000;

describe('coalescer', () => {
  it('runs one call for waiters of one key, and a new call once it is done', async () => {
    const c = new Coalescer<number>();
    let started = 0;
    const d = deferred<number>();
    const start = () => {
      started++;
      return d.promise;
    };
    const w = () => ({ signal: new AbortController().signal, deadline: far() });
    const a = c.run('k', w(), start, 'm');
    const b = c.run('k', w(), start, 'm');
    const other = c.run('other', w(), () => Promise.resolve(7), 'm');
    assert.deepEqual([a.joined, b.joined, other.joined], [false, true, false]);
    d.resolve(42);
    assert.deepEqual(await Promise.all([a.promise, b.promise, other.promise]), [42, 42, 7]);
    assert.equal(started, 1);
    assert.equal(c.size, 0);
    const again = c.run('k', w(), () => Promise.resolve(1), 'm');
    assert.equal(again.joined, false);
    assert.equal(await again.promise, 1);
  });

  it('lets a waiter leave without cancelling the call, and cancels it when the last one leaves', async () => {
    const c = new Coalescer<number>();
    let signal: AbortSignal | undefined;
    const d = deferred<number>();
    const start = (s: AbortSignal) => {
      signal = s;
      return d.promise;
    };
    const first = new AbortController();
    const second = new AbortController();
    const a = c.run('k', { signal: first.signal, deadline: far() }, start, 'm');
    const b = c.run('k', { signal: second.signal, deadline: far() }, start, 'm');
    first.abort();
    await assert.rejects(a.promise, (e) => isClientGoneError(e));
    assert.equal(signal!.aborted, false, 'one waiter left, the other still waits');
    second.abort();
    await assert.rejects(b.promise, (e) => isClientGoneError(e));
    assert.equal(signal!.aborted, true, 'nobody waits: the call is cancelled');
    assert.equal(c.size, 0, 'the next identical request starts afresh');
    d.reject(new Error('aborted'));
  });

  it('times out only the waiter whose deadline passed', async () => {
    const c = new Coalescer<number>();
    const d = deferred<number>();
    const start = () => d.promise;
    const short = c.run(
      'k',
      { signal: new AbortController().signal, deadline: Date.now() + 20 },
      start,
      'm',
    );
    const long = c.run('k', { signal: new AbortController().signal, deadline: far() }, start, 'm');
    await assert.rejects(short.promise, (e) => isProxyError(e) && e.code === 'UPSTREAM_TIMEOUT');
    d.resolve(5);
    assert.equal(await long.promise, 5);
  });

  it('gives a failure to every waiter once', async () => {
    const c = new Coalescer<number>();
    let calls = 0;
    const start = () => {
      calls++;
      return Promise.reject(new Error('boom'));
    };
    const w = () => ({ signal: new AbortController().signal, deadline: far() });
    const all = [c.run('k', w(), start, 'm'), c.run('k', w(), start, 'm')];
    for (const r of all) await assert.rejects(r.promise, /boom/);
    assert.equal(calls, 1);
  });
});
