import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { isProxyError, type ProxyError } from '../../../src/errors';
import {
  AdmissionController,
  isClientGoneError,
  type AdmissionOptions,
  type AdmissionRejectReason,
  type Permit,
} from '../../../src/admission';

/** Lets promise continuations run so settled acquires are visible. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Tracked {
  promise: Promise<Permit>;
  permit?: Permit;
  error?: unknown;
}

/** Records how an acquire settles without awaiting it. */
function track(promise: Promise<Permit>): Tracked {
  const tracked: Tracked = { promise };
  promise.then(
    (permit) => (tracked.permit = permit),
    (error: unknown) => (tracked.error = error),
  );
  return tracked;
}

/** Releases every permit granted so far; release is idempotent, so repeats are harmless. */
function releaseGranted(requests: Tracked[]): void {
  for (const r of requests) r.permit?.release();
}

function asProxyError(value: unknown): ProxyError {
  assert.ok(isProxyError(value), `expected a ProxyError, got ${String(value)}`);
  return value;
}

function controller(options: Partial<AdmissionOptions> = {}): AdmissionController {
  return new AdmissionController({
    maxInflight: 4,
    maxQueue: 4,
    queueTimeoutMs: 10_000,
    ...options,
  });
}

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

describe('AdmissionController', () => {
  let teardown = new AbortController();

  /** Acquires on behalf of a client that goes away when the test ends. */
  function request(admission: AdmissionController, model: string, bytes = 0): Tracked {
    return track(admission.acquire(model, bytes, teardown.signal));
  }

  beforeEach(() => {
    teardown = new AbortController();
    setMaxListeners(100, teardown.signal);
  });
  // Aborting rejects whatever a test left queued, so no queue timer outlives it.
  afterEach(() => teardown.abort());

  describe('limits and queueing', () => {
    it('admits up to the limit, queues up to the queue size and rejects exactly the excess with 429 and Retry-After', async () => {
      const admission = controller({ maxInflight: 4, maxQueue: 6, retryAfterSeconds: 3 });
      const burst = Array.from({ length: 20 }, () => request(admission, 'm', 10));
      await flush();

      const admitted = burst.filter((t) => t.permit !== undefined);
      const rejected = burst.filter((t) => t.error !== undefined);
      assert.equal(admitted.length, 4);
      assert.equal(rejected.length, 10);
      assert.deepEqual(
        burst.slice(10).map((t) => t.error !== undefined),
        Array(10).fill(true),
      );
      for (const t of rejected) {
        const error = asProxyError(t.error);
        assert.equal(error.code, 'OVERLOADED');
        assert.equal(error.status, 429);
        assert.equal(error.retryAfterSeconds, 3);
      }
      assert.equal(admission.stats().queued, 6);

      // Every queued request is served as slots free up.
      while (admission.stats().inflight > 0) {
        releaseGranted(burst);
        await flush();
      }
      assert.equal(burst.filter((t) => t.permit !== undefined).length, 10);
      assert.deepEqual(
        { inflight: admission.stats().inflight, queued: admission.stats().queued },
        { inflight: 0, queued: 0 },
      );
    });

    it('serves the queue of one model in arrival order', async () => {
      const admission = controller({ maxInflight: 1, maxQueue: 10 });
      const order: number[] = [];
      const first = await admission.acquire('m', 0);
      const waiting = Array.from({ length: 5 }, (_, i) =>
        admission.acquire('m', 0).then((permit) => {
          order.push(i);
          return permit;
        }),
      );
      let current = first;
      for (const next of waiting) {
        current.release();
        current = await next;
      }
      current.release();
      assert.deepEqual(order, [0, 1, 2, 3, 4]);
    });

    it('rejects a request with 429 after queueTimeoutMs in the queue and never gives it a slot', async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({
        maxInflight: 1,
        queueTimeoutMs: 40,
        hooks: { onReject: (reason) => rejects.push(reason) },
      });
      const holder = await admission.acquire('m', 0);
      const started = performance.now();
      const error = asProxyError(await admission.acquire('m', 0).catch((e: unknown) => e));
      const waited = performance.now() - started;

      assert.equal(error.code, 'OVERLOADED');
      assert.equal(error.retryAfterSeconds, 1);
      assert.ok(waited >= 35, `rejected after ${waited} ms`);
      assert.deepEqual(rejects, ['queue_timeout']);
      assert.equal(admission.stats().queued, 0);
      holder.release();
      assert.equal(admission.stats().inflight, 0);
    });

    it("rejects with 504 at the request's own deadline when it comes before the queue timeout", async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({
        maxInflight: 1,
        queueTimeoutMs: 10_000,
        hooks: { onReject: (reason) => rejects.push(reason) },
      });
      const holder = await admission.acquire('m', 0);
      const started = performance.now();
      const error = asProxyError(
        await admission.acquire('m', 0, undefined, Date.now() + 40).catch((e: unknown) => e),
      );
      const waited = performance.now() - started;

      assert.equal(error.code, 'UPSTREAM_TIMEOUT');
      assert.equal(error.status, 504);
      assert.equal(error.retryAfterSeconds, undefined);
      assert.ok(waited >= 35 && waited < 5_000, `rejected after ${waited} ms`);
      assert.deepEqual(rejects, ['deadline']);
      assert.equal(admission.stats().queued, 0);
      holder.release();
    });

    it('keeps the 429 queue timeout for a request whose deadline is later', async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({
        maxInflight: 1,
        queueTimeoutMs: 30,
        hooks: { onReject: (reason) => rejects.push(reason) },
      });
      const holder = await admission.acquire('m', 0);
      const error = asProxyError(
        await admission.acquire('m', 0, undefined, Date.now() + 60_000).catch((e: unknown) => e),
      );
      assert.equal(error.code, 'OVERLOADED');
      assert.deepEqual(rejects, ['queue_timeout']);
      holder.release();
    });

    it('does not time out a request that is admitted before its deadline', async () => {
      const admission = controller({ maxInflight: 1, queueTimeoutMs: 60 });
      const holder = await admission.acquire('m', 0);
      const queued = request(admission, 'm');
      setTimeout(() => holder.release(), 10);
      await queued.promise;
      await new Promise((resolve) => setTimeout(resolve, 80));
      assert.ok(queued.permit !== undefined);
      assert.equal(queued.error, undefined);
      assert.equal(admission.stats().inflight, 1);
    });

    it('rejects at once when the model queue is full even though the global queue has room', async () => {
      const admission = controller({
        maxInflight: 10,
        maxQueue: 10,
        modelMaxInflight: 1,
        modelMaxQueue: 1,
      });
      await admission.acquire('m', 0);
      const queued = request(admission, 'm');
      const error = asProxyError(await admission.acquire('m', 0).catch((e: unknown) => e));
      assert.equal(error.code, 'OVERLOADED');
      assert.match(error.message, /model 'm'/);
      await flush();
      assert.equal(queued.error, undefined);
      assert.equal(admission.stats().queued, 1);
    });
  });

  describe('client disconnect', () => {
    it('removes an aborted waiter at once, rejects it as client-gone and gives the slot to the next waiter', async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({ maxInflight: 1, hooks: { onReject: (r) => rejects.push(r) } });
      const holder = await admission.acquire('m', 0);
      const client = new AbortController();
      const gone = track(admission.acquire('m', 0, client.signal));
      const next = request(admission, 'm');
      assert.equal(admission.stats().queued, 2);

      client.abort();
      assert.equal(admission.stats().queued, 1, 'removed synchronously on abort');
      await flush();
      assert.ok(isClientGoneError(gone.error));
      assert.ok(isProxyError(gone.error));
      assert.deepEqual(rejects, ['client_gone']);

      holder.release();
      await flush();
      assert.ok(next.permit !== undefined);
      assert.equal(gone.permit, undefined);
      assert.equal(admission.stats().inflight, 1);
    });

    it('rejects an already-aborted request without taking a free slot', async () => {
      const admission = controller();
      const client = new AbortController();
      client.abort();
      const error = await admission.acquire('m', 0, client.signal).catch((e: unknown) => e);
      assert.ok(isClientGoneError(error));
      assert.equal(admission.stats().inflight, 0);
    });

    it('ignores an abort that arrives after admission (the caller owns the permit then)', async () => {
      const admission = controller({ maxInflight: 1 });
      const holder = await admission.acquire('m', 0);
      const client = new AbortController();
      const queued = admission.acquire('m', 0, client.signal);
      holder.release();
      const permit = await queued;
      client.abort();
      assert.equal(admission.stats().inflight, 1);
      permit.release();
      assert.equal(admission.stats().inflight, 0);
    });
  });

  describe('fairness between models', () => {
    it('keeps serving model B at once while model A is saturated and queueing', async () => {
      const admission = controller({ maxInflight: 10, maxQueue: 10, modelMaxInflight: 2 });
      await admission.acquire('a', 0);
      await admission.acquire('a', 0);
      const queuedA = request(admission, 'a');
      const b = request(admission, 'b');
      await flush();
      assert.equal(queuedA.permit, undefined);
      assert.ok(b.permit !== undefined);
      assert.equal(admission.stats().byModel.get('a')?.queued, 1);
    });

    it('gives a free global slot to another model when the earlier waiter is at its own model limit', async () => {
      const admission = controller({ maxInflight: 2, maxQueue: 10, modelMaxInflight: 1 });
      await admission.acquire('a', 0);
      const b = await admission.acquire('b', 0);
      const secondA = request(admission, 'a');
      const c = request(admission, 'c');
      b.release();
      await flush();
      assert.ok(c.permit !== undefined);
      assert.equal(secondA.permit, undefined);
    });

    it('hands freed global slots round-robin so a deep backlog on one model does not starve another', async () => {
      // No per-model limit below the global one, so model a stays in the rotation.
      const admission = controller({ maxInflight: 2, maxQueue: 10, modelMaxInflight: 10 });
      const holders = [await admission.acquire('a', 0), await admission.acquire('a', 0)];
      const backlog = Array.from({ length: 3 }, () => request(admission, 'a'));
      const b = request(admission, 'b');

      holders[0]!.release();
      await flush();
      assert.ok(backlog[0]!.permit !== undefined);
      holders[1]!.release();
      await flush();
      assert.ok(b.permit !== undefined, 'model b gets the second freed slot');
      assert.equal(backlog[1]!.permit, undefined);
    });

    it('enforces the global limit across models and queues beyond it', async () => {
      const admission = controller({ maxInflight: 3, maxQueue: 10 });
      const permits = await Promise.all(['a', 'b', 'c'].map((m) => admission.acquire(m, 0)));
      const d = request(admission, 'd');
      await flush();
      assert.equal(d.permit, undefined);
      assert.equal(admission.stats().inflight, 3);
      permits[1]!.release();
      await flush();
      assert.ok(d.permit !== undefined);
      assert.equal(admission.stats().inflight, 3);
    });

    it('applies per-model overrides instead of the defaults', async () => {
      const admission = controller({
        maxInflight: 10,
        maxQueue: 10,
        modelMaxInflight: 4,
        modelOverrides: { big: { maxInflight: 1, maxQueue: 0 } },
      });
      await admission.acquire('big', 0);
      const error = asProxyError(await admission.acquire('big', 0).catch((e: unknown) => e));
      assert.equal(error.code, 'OVERLOADED');
      const small = await Promise.all(
        Array.from({ length: 4 }, () => admission.acquire('small', 0)),
      );
      assert.equal(small.length, 4);
      assert.deepEqual(admission.stats().byModel.get('big'), {
        inflight: 1,
        queued: 0,
        maxInflight: 1,
        maxQueue: 0,
      });
    });
  });

  describe('byte cap', () => {
    it('queues a request whose bytes do not fit and admits it when bytes are released', async () => {
      const admission = controller({ maxInflightBytes: 100 });
      const first = await admission.acquire('a', 60);
      const second = request(admission, 'b', 50);
      await flush();
      assert.equal(second.permit, undefined);
      assert.equal(admission.stats().inflightBytes, 60);
      first.release();
      await flush();
      assert.ok(second.permit !== undefined);
      assert.equal(admission.stats().inflightBytes, 50);
    });

    it('does not let smaller later requests overtake a waiting large one', async () => {
      const admission = controller({ maxInflightBytes: 100 });
      const first = await admission.acquire('a', 60);
      const large = request(admission, 'b', 50);
      const small = request(admission, 'c', 10);
      await flush();
      assert.equal(small.permit, undefined, 'small request waits behind the large one');
      first.release();
      await flush();
      assert.ok(large.permit !== undefined);
      assert.ok(small.permit !== undefined);
      assert.equal(admission.stats().inflightBytes, 60);
    });

    it('lets the requests behind a large waiter run once that waiter disconnects', async () => {
      const admission = controller({ maxInflightBytes: 100 });
      await admission.acquire('a', 60);
      const client = new AbortController();
      const large = track(admission.acquire('b', 50, client.signal));
      const small = request(admission, 'c', 10);
      await flush();
      assert.equal(small.permit, undefined);
      client.abort();
      await flush();
      assert.ok(isClientGoneError(large.error));
      assert.ok(small.permit !== undefined);
      assert.equal(admission.stats().inflightBytes, 70);
    });

    it('rejects a request larger than the whole byte cap with 413 naming the limit', async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({
        maxInflightBytes: 100,
        hooks: { onReject: (r) => rejects.push(r) },
      });
      const error = asProxyError(await admission.acquire('m', 101).catch((e: unknown) => e));
      assert.equal(error.code, 'PAYLOAD_TOO_LARGE');
      assert.equal(error.status, 413);
      assert.match(error.message, /100 bytes/);
      assert.deepEqual(rejects, ['bytes']);
      assert.equal(admission.stats().inflight, 0);
    });
  });

  describe('permits', () => {
    it('releases a permit only once however often release is called', async () => {
      const admission = controller({ maxInflight: 1, maxInflightBytes: 100 });
      const permit = await admission.acquire('m', 30);
      const second = request(admission, 'm', 30);
      const third = request(admission, 'm', 30);
      permit.release();
      permit.release();
      permit.release();
      await flush();
      assert.ok(second.permit !== undefined);
      assert.equal(third.permit, undefined, 'a repeated release must not free a second slot');
      assert.equal(admission.stats().inflight, 1);
      assert.equal(admission.stats().inflightBytes, 30);
    });

    it('arms no timer when a request is admitted at once and clears the timer of a served waiter', async () => {
      const admission = controller({ maxInflight: 1 });
      // Measured with no await in between, so other timers cannot come or go.
      const before = activeTimeouts();
      const immediate = admission.acquire('m', 0);
      assert.equal(activeTimeouts(), before);
      const queued = admission.acquire('m', 0);
      assert.equal(activeTimeouts(), before + 1);
      const holder = await immediate;
      const whileQueued = activeTimeouts();
      holder.release();
      assert.equal(activeTimeouts(), whileQueued - 1);
      (await queued).release();
    });
  });

  describe('metric hooks', () => {
    it('reports queue depth and in-flight as they rise and fall back to zero', async () => {
      const queueDepths: number[] = [];
      const inflights: number[] = [];
      const modelDepths: Array<[string, number]> = [];
      const waits: number[] = [];
      const admission = controller({
        maxInflight: 2,
        maxQueue: 10,
        hooks: {
          onQueueChange: (model, depth, total) => {
            modelDepths.push([model, depth]);
            queueDepths.push(total);
          },
          onInflightChange: (_model, _forModel, total) => inflights.push(total),
          onQueueWait: (seconds) => waits.push(seconds),
        },
      });
      const tracked = Array.from({ length: 5 }, (_, i) => request(admission, i % 2 ? 'a' : 'b'));
      await flush();
      assert.deepEqual(queueDepths, [1, 2, 3]);
      while (admission.stats().inflight > 0) {
        releaseGranted(tracked);
        await flush();
      }
      assert.deepEqual(queueDepths, [1, 2, 3, 2, 1, 0]);
      assert.equal(Math.max(...inflights), 2);
      assert.equal(inflights.at(-1), 0);
      assert.deepEqual(modelDepths.at(-1)?.[1], 0);
      assert.equal(waits.length, 5, 'one queue-wait observation per admitted request');
      assert.deepEqual(waits.slice(0, 2), [0, 0]);
      assert.ok(waits.every((w) => w >= 0));
    });
  });

  describe('shutdown', () => {
    it('resolves drain at once when idle and after the last in-flight and queued requests finish', async () => {
      const admission = controller({ maxInflight: 1 });
      await admission.drain();
      const holder = await admission.acquire('m', 0);
      const queued = request(admission, 'm');
      let drained = false;
      const draining = admission.drain().then(() => (drained = true));
      holder.release();
      await flush();
      assert.equal(drained, false, 'a queued request is still to be served');
      queued.permit!.release();
      await draining;
      assert.equal(drained, true);
    });

    it('rejects new requests with 503 after stopAccepting but still serves the queued ones', async () => {
      const rejects: AdmissionRejectReason[] = [];
      const admission = controller({ maxInflight: 1, hooks: { onReject: (r) => rejects.push(r) } });
      const holder = await admission.acquire('m', 0);
      const queued = request(admission, 'm');
      admission.stopAccepting();

      const error = asProxyError(await admission.acquire('m', 0).catch((e: unknown) => e));
      assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
      assert.equal(error.status, 503);
      assert.deepEqual(rejects, ['shutting_down']);
      assert.equal(admission.stats().accepting, false);

      const drained = admission.drain();
      holder.release();
      await flush();
      assert.ok(queued.permit !== undefined);
      queued.permit.release();
      await drained;
    });
  });

  describe('bookkeeping', () => {
    it('keeps memory bounded when clients send many distinct model names', async () => {
      const admission = controller({ maxIdleModels: 16 });
      for (let i = 0; i < 1000; i++) (await admission.acquire(`unknown-${i}`, 0)).release();
      assert.ok(
        admission.stats().byModel.size <= 16,
        `${admission.stats().byModel.size} records kept`,
      );
    });

    it('rejects invalid options at construction, naming the option', () => {
      assert.throws(() => controller({ maxInflight: 0 }), /maxInflight/);
      assert.throws(() => controller({ maxQueue: -1 }), /maxQueue/);
      assert.throws(() => controller({ queueTimeoutMs: 0 }), /queueTimeoutMs/);
      assert.throws(
        () => controller({ modelOverrides: new Map([['m', { maxInflight: 1.5 }]]) }),
        /modelOverrides\.m\.maxInflight/,
      );
    });
  });
});
