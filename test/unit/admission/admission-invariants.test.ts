import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isProxyError } from '../../../src/errors';
import { AdmissionController, isClientGoneError, type Permit } from '../../../src/admission';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const MODELS = ['a', 'b', 'c'] as const;

type Step =
  | { kind: 'acquire'; model: number; bytes: number; abortable: boolean }
  | { kind: 'release'; pick: number }
  | { kind: 'abort'; pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('acquire' as const),
    model: fc.integer({ min: 0, max: MODELS.length - 1 }),
    bytes: fc.integer({ min: 0, max: 60 }),
    abortable: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
);

const limits = fc.record({
  maxInflight: fc.integer({ min: 1, max: 4 }),
  maxQueue: fc.integer({ min: 0, max: 6 }),
  modelMaxInflight: fc.integer({ min: 1, max: 4 }),
  modelMaxQueue: fc.integer({ min: 0, max: 6 }),
  maxInflightBytes: fc.option(fc.integer({ min: 60, max: 150 }), { nil: undefined }),
});

interface Request {
  seq: number;
  model: string;
  bytes: number;
  client: AbortController | undefined;
  state: 'pending' | 'admitted' | 'released' | 'rejected';
  permit?: Permit;
  error?: unknown;
}

describe('AdmissionController invariants under random traffic', () => {
  it('never exceeds a limit, stays work-conserving, keeps per-model FIFO and ends empty', async () => {
    await fc.assert(
      fc.asyncProperty(limits, fc.array(step, { maxLength: 40 }), async (config, steps) => {
        const cap = config.maxInflightBytes ?? Number.POSITIVE_INFINITY;
        const hookTotals = { queued: 0, inflight: 0 };
        const admission = new AdmissionController({
          ...config,
          queueTimeoutMs: 60_000,
          hooks: {
            onQueueChange: (_m, _d, total) => (hookTotals.queued = total),
            onInflightChange: (_m, _i, total) => (hookTotals.inflight = total),
          },
        });
        const requests: Request[] = [];
        const admittedOrder = new Map<string, number[]>();

        const check = (): void => {
          const stats = admission.stats();
          const live = requests.filter((r) => r.state === 'admitted');
          const waiting = requests.filter((r) => r.state === 'pending');
          assert.equal(stats.inflight, live.length);
          assert.equal(stats.queued, waiting.length);
          assert.equal(
            stats.inflightBytes,
            live.reduce((sum, r) => sum + r.bytes, 0),
          );
          assert.deepEqual(hookTotals, { queued: stats.queued, inflight: stats.inflight });
          assert.ok(stats.inflight <= config.maxInflight);
          assert.ok(stats.queued <= config.maxQueue);
          assert.ok(stats.inflightBytes <= cap);

          const heads: Request[] = [];
          for (const model of MODELS) {
            const own = live.filter((r) => r.model === model).length;
            const queue = waiting.filter((r) => r.model === model);
            assert.ok(own <= config.modelMaxInflight);
            assert.ok(queue.length <= config.modelMaxQueue);
            if (queue.length > 0 && own < config.modelMaxInflight) heads.push(queue[0]!);
          }
          // A free global slot with a runnable head is only allowed while the byte cap holds it back.
          if (stats.inflight < config.maxInflight && heads.length > 0) {
            assert.ok(
              heads.some((head) => stats.inflightBytes + head.bytes > cap),
              'a waiter could run but was left queued',
            );
          }
          for (const order of admittedOrder.values()) {
            assert.deepEqual(
              order,
              [...order].sort((x, y) => x - y),
              'per-model FIFO broken',
            );
          }
        };

        const acquire = (model: string, bytes: number, abortable: boolean): void => {
          const client = abortable ? new AbortController() : undefined;
          const request: Request = { seq: requests.length, model, bytes, client, state: 'pending' };
          requests.push(request);
          admission.acquire(model, bytes, client?.signal).then(
            (permit) => {
              assert.equal(request.state, 'pending', 'a request settled twice');
              request.state = 'admitted';
              request.permit = permit;
              admittedOrder.set(model, [...(admittedOrder.get(model) ?? []), request.seq]);
            },
            (error: unknown) => {
              assert.equal(request.state, 'pending', 'a request settled twice');
              request.state = 'rejected';
              request.error = error;
            },
          );
        };

        for (const s of steps) {
          if (s.kind === 'acquire') {
            acquire(MODELS[s.model]!, s.bytes, s.abortable);
          } else if (s.kind === 'release') {
            const live = requests.filter((r) => r.state === 'admitted');
            const target = live[s.pick % Math.max(live.length, 1)];
            if (target !== undefined) {
              target.permit!.release();
              target.state = 'released';
            }
          } else {
            const abortable = requests.filter((r) => r.state === 'pending' && r.client);
            abortable[s.pick % Math.max(abortable.length, 1)]?.client!.abort();
          }
          await flush();
          check();
        }

        for (const r of requests) {
          if (r.state === 'rejected') {
            assert.ok(isProxyError(r.error));
            if (r.client?.signal.aborted) assert.ok(isClientGoneError(r.error));
            else assert.equal(r.error.code, 'OVERLOADED');
          }
        }

        // Releasing everything serves every waiter and leaves the controller empty.
        const drained = admission.drain();
        while (requests.some((r) => r.state === 'admitted')) {
          for (const r of requests) {
            if (r.state === 'admitted') {
              r.permit!.release();
              r.state = 'released';
            }
          }
          await flush();
          check();
        }
        assert.ok(requests.every((r) => r.state === 'released' || r.state === 'rejected'));
        await drained;
        const stats = admission.stats();
        assert.deepEqual([stats.inflight, stats.queued, stats.inflightBytes], [0, 0, 0]);
      }),
      { numRuns: 150 },
    );
  });
});
