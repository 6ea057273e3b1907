import assert from 'node:assert/strict';
import { isProxyError } from '../../../src/errors';
import {
  AdmissionController,
  type AdmissionPriority,
  type AdmissionRejectReason,
  type Permit,
} from '../../../src/admission';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Tracked {
  name: string;
  permit?: Permit;
  error?: unknown;
}

describe('AdmissionController priorities', () => {
  const rejections: AdmissionRejectReason[] = [];
  const make = (maxQueue: number, modelMaxQueue = maxQueue) =>
    new AdmissionController({
      maxInflight: 1,
      maxQueue,
      modelMaxQueue,
      queueTimeoutMs: 10_000,
      hooks: { onReject: (reason) => rejections.push(reason) },
    });
  const ask = (
    admission: AdmissionController,
    name: string,
    priority: AdmissionPriority,
    model = 'm',
  ): Tracked => {
    const t: Tracked = { name };
    admission.acquire(model, 0, undefined, undefined, priority).then(
      (p) => (t.permit = p),
      (e: unknown) => (t.error = e),
    );
    return t;
  };

  beforeEach(() => {
    rejections.length = 0;
  });

  it('serves the queue high first, then normal, then low, each in arrival order', async () => {
    const admission = make(10);
    const holder = ask(admission, 'holder', 'low');
    await flush();
    const queued = [
      ask(admission, 'L1', 'low'),
      ask(admission, 'N1', 'normal'),
      ask(admission, 'L2', 'low'),
      ask(admission, 'H1', 'high'),
      ask(admission, 'N2', 'normal'),
      ask(admission, 'H2', 'high'),
    ];
    await flush();
    const order: string[] = [];
    let current = holder;
    for (let i = 0; i < queued.length; i++) {
      current.permit!.release();
      await flush();
      const next = queued.find((t) => t.permit !== undefined && !order.includes(t.name));
      assert.ok(next, 'a waiter was admitted');
      order.push(next.name);
      current = next;
    }
    current.permit!.release();
    assert.deepEqual(order, ['H1', 'H2', 'N1', 'N2', 'L1', 'L2']);
    assert.equal(admission.stats().queued, 0);
  });

  it('sheds a queued low request (429) to make room for a normal or high one when the queue is full', async () => {
    const admission = make(2);
    ask(admission, 'holder', 'normal');
    await flush();
    const l1 = ask(admission, 'L1', 'low');
    const l2 = ask(admission, 'L2', 'low');
    const n = ask(admission, 'N', 'normal');
    await flush();
    assert.ok(isProxyError(l2.error) && l2.error.code === 'OVERLOADED', 'newest low is shed');
    assert.match((l2.error as Error).message, /shed.*low priority/);
    assert.equal(l1.error, undefined);
    assert.equal(n.error, undefined, 'the normal request waits in its place');

    const l3 = ask(admission, 'L3', 'low');
    await flush();
    assert.ok(isProxyError(l3.error), 'a low request finds no place to take');
    const h = ask(admission, 'H', 'high');
    await flush();
    assert.ok(isProxyError(l1.error), 'the last low request gives way to a high one');
    assert.equal(h.error, undefined);
    const n2 = ask(admission, 'N2', 'normal');
    await flush();
    assert.ok(isProxyError(n2.error), 'with no low request left, a full queue refuses');
    assert.deepEqual(rejections, ['shed', 'queue_full', 'shed', 'queue_full']);
  });

  it('sheds the longest-waiting low request of any model when the global queue is full', async () => {
    const admission = make(2, 10);
    ask(admission, 'holder', 'normal', 'a');
    await flush();
    const l1 = ask(admission, 'L1', 'low', 'a');
    const l2 = ask(admission, 'L2', 'low', 'a');
    const n = ask(admission, 'N', 'normal', 'b');
    await flush();
    assert.ok(isProxyError(l1.error));
    assert.equal(l2.error, undefined);
    assert.equal(n.error, undefined);
  });
});
