import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { ProxyError, isProxyError } from '../../../src/errors';
import {
  CircuitBreaker,
  defaultIsServerFault,
  type BreakerState,
  type CircuitBreakerOptions,
} from '../../../src/resilience';

const RESET_MS = 100;

const serverFault = (): ProxyError =>
  new ProxyError('UPSTREAM_UNAVAILABLE', 'connection refused', { server: 'a', serverFault: true });

/** Calls fn under the breaker and returns what it threw (fails the test if it resolved). */
async function rejection(breaker: CircuitBreaker, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await breaker.execute(fn);
  } catch (error) {
    return error;
  }
  assert.fail('execute resolved but a rejection was expected');
}

async function failTimes(
  breaker: CircuitBreaker,
  times: number,
  error: () => unknown,
): Promise<void> {
  for (let i = 0; i < times; i++) await rejection(breaker, () => Promise.reject(error()));
}

describe('CircuitBreaker', () => {
  const breakers: CircuitBreaker[] = [];
  const make = (options: Partial<CircuitBreakerOptions> = {}): CircuitBreaker => {
    const breaker = new CircuitBreaker({
      server: 'a',
      errorThresholdPercentage: 50,
      volumeThreshold: 4,
      resetTimeout: RESET_MS,
      ...options,
    });
    breakers.push(breaker);
    return breaker;
  };
  const recordTransitions = (breaker: CircuitBreaker): string[] => {
    const seen: string[] = [];
    breaker.onStateChange((server, from, to) => seen.push(`${server}:${from}->${to}`));
    return seen;
  };

  afterEach(() => {
    for (const breaker of breakers.splice(0)) breaker.shutdown();
  });

  it('passes results and errors of a closed breaker through unchanged', async () => {
    const breaker = make();
    assert.equal(await breaker.execute(() => Promise.resolve(42)), 42);
    const error = serverFault();
    assert.equal(await rejection(breaker, () => Promise.reject(error)), error);
    assert.equal(breaker.state, 'closed');
  });

  it('stays closed below the volume threshold however many of the calls failed', async () => {
    const breaker = make({ volumeThreshold: 4 });
    await failTimes(breaker, 3, serverFault);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.isOpen(), false);
  });

  it('opens once server faults pass the threshold and then rejects without calling the server', async () => {
    const breaker = make();
    const transitions = recordTransitions(breaker);
    await failTimes(breaker, 4, serverFault);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.isOpen(), true);
    assert.deepEqual(transitions, ['a:closed->open']);

    let called = false;
    const error = await rejection(breaker, async () => {
      called = true;
    });
    assert.equal(called, false);
    assert.ok(isProxyError(error));
    assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.retryable, true);
    assert.equal(error.serverFault, false, 'a rejection must not count against the server again');
    assert.equal(error.server, 'a');
    assert.match(error.message, /'a'.*circuit open/);
  });

  it('does not open on a failure rate at or below the threshold', async () => {
    const breaker = make({ errorThresholdPercentage: 50 });
    for (let i = 0; i < 10; i++) {
      await breaker.execute(() => Promise.resolve('ok'));
      await rejection(breaker, () => Promise.reject(serverFault()));
    }
    assert.equal(breaker.state, 'closed');
  });

  it('never opens on client errors, which pass through untouched', async () => {
    const breaker = make({ volumeThreshold: 1 });
    const clientErrors = [
      new ProxyError('INVALID_REQUEST', 'shape mismatch', { server: 'a', grpcCode: 3 }),
      new ProxyError('MODEL_NOT_FOUND', 'unknown model', { server: 'a', grpcCode: 5 }),
    ];
    for (let i = 0; i < 50; i++) {
      const error = clientErrors[i % 2]!;
      assert.equal(await rejection(breaker, () => Promise.reject(error)), error);
    }
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.isOpen(), false);
  });

  it('counts unexpected non-ProxyError failures as server faults', async () => {
    const breaker = make();
    await failTimes(breaker, 4, () => new Error('socket hang up'));
    assert.equal(breaker.state, 'open');
  });

  it('does not count the caller aborting as a server fault', () => {
    const abort = new DOMException('The operation was aborted', 'AbortError');
    assert.equal(defaultIsServerFault(abort), false);
    assert.equal(defaultIsServerFault(new Error('boom')), true);
    assert.equal(defaultIsServerFault(serverFault()), true);
    assert.equal(defaultIsServerFault(new ProxyError('MODEL_NOT_READY', 'loading')), false);
  });

  it('uses a custom server-fault predicate when given one', async () => {
    const breaker = make({
      isServerFault: (err) => err instanceof Error && err.message === 'down',
    });
    await failTimes(breaker, 4, () => new Error('bad input'));
    assert.equal(breaker.state, 'closed');
    await failTimes(breaker, 10, () => new Error('down'));
    assert.equal(breaker.state, 'open');
  });

  it('half-opens after resetTimeout, lets exactly one probe through and closes when it succeeds', async () => {
    const breaker = make();
    const transitions = recordTransitions(breaker);
    await failTimes(breaker, 4, serverFault);
    await delay(RESET_MS + 30);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.isOpen(), false, 'a half-open breaker accepts a probe');

    let finishProbe!: (value: string) => void;
    const probe = breaker.execute(() => new Promise<string>((resolve) => (finishProbe = resolve)));
    assert.equal(breaker.isOpen(), true, 'only one probe at a time');
    const second = await rejection(breaker, () => Promise.resolve('second'));
    assert.ok(isProxyError(second) && second.code === 'UPSTREAM_UNAVAILABLE');
    assert.match(second.message, /half-open/);

    finishProbe('probe-ok');
    assert.equal(await probe, 'probe-ok');
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.isOpen(), false);
    assert.deepEqual(transitions, ['a:closed->open', 'a:open->half-open', 'a:half-open->closed']);
  });

  it('re-opens when the half-open probe fails and half-opens again after another resetTimeout', async () => {
    const breaker = make();
    const transitions = recordTransitions(breaker);
    await failTimes(breaker, 4, serverFault);
    await delay(RESET_MS + 30);
    await failTimes(breaker, 1, serverFault);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.isOpen(), true);
    await delay(RESET_MS + 30);
    assert.equal(breaker.state, 'half-open');
    assert.deepEqual(transitions, [
      'a:closed->open',
      'a:open->half-open',
      'a:half-open->open',
      'a:open->half-open',
    ]);
  });

  it('closes when the half-open probe is answered with a client error: the server did answer', async () => {
    const breaker = make();
    await failTimes(breaker, 4, serverFault);
    await delay(RESET_MS + 30);
    await failTimes(
      breaker,
      1,
      () => new ProxyError('INVALID_REQUEST', 'bad shape', { server: 'a' }),
    );
    assert.equal(breaker.state, 'closed');
  });

  it('judges a recovered server on fresh calls: one fault after closing does not re-open it', async () => {
    const breaker = make({ volumeThreshold: 4 });
    await failTimes(breaker, 4, serverFault);
    await delay(RESET_MS + 30);
    await breaker.execute(() => Promise.resolve('probe'));
    assert.equal(breaker.state, 'closed');
    await failTimes(breaker, 1, serverFault);
    assert.equal(breaker.state, 'closed');
  });

  it('stops notifying a listener after it unsubscribes', async () => {
    const breaker = make();
    const seen: BreakerState[] = [];
    const unsubscribe = breaker.onStateChange((_server, _from, to) => seen.push(to));
    unsubscribe();
    await failTimes(breaker, 4, serverFault);
    assert.equal(breaker.state, 'open');
    assert.deepEqual(seen, []);
  });

  it('settles the call that trips the breaker even when a listener throws', async () => {
    const breaker = make();
    breaker.onStateChange(() => {
      throw new Error('listener bug');
    });
    const seen: BreakerState[] = [];
    breaker.onStateChange((_server, _from, to) => seen.push(to));
    await failTimes(breaker, 4, serverFault);
    assert.equal(breaker.state, 'open');
    assert.deepEqual(seen, ['open'], 'later listeners still run');
  });

  it('refuses every call after shutdown, naming the removed server', async () => {
    const breaker = make();
    breaker.shutdown();
    assert.equal(breaker.isOpen(), true);
    const error = await rejection(breaker, () => Promise.resolve('late'));
    assert.ok(isProxyError(error) && error.code === 'UPSTREAM_UNAVAILABLE' && error.server === 'a');
    assert.match(error.message, /removed/);
  });
});
