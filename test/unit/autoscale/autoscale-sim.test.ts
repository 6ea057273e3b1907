import { strict as assert } from 'node:assert';
import {
  hpaSpecFromChartValues,
  queueCurve,
  queueDepthAt,
  simulate,
  splitLoad,
  type StepMeasurement,
} from '../../../scripts/autoscale-sim';
import { defaultBehavior } from '../../../scripts/lib/hpa';

function step(concurrency: number, queueDepth: number[]): StepMeasurement {
  return {
    concurrency,
    queueDepth,
    inflight: queueDepth.map(() => Math.min(concurrency, 4)),
    tally: { ok: 0, rejected: 0, failed: 0 },
    seconds: 8,
  };
}

/** A replica with 4 slots: everything above 4 concurrent requests waits. */
const saturating = queueCurve([
  step(4, [0, 0]),
  step(8, [4, 4]),
  step(16, [12, 12]),
  step(32, [28, 28]),
]);

describe('autoscaling simulation model', () => {
  it('pools repeated levels into one curve point and anchors it at zero load', () => {
    const curve = queueCurve([step(16, [11, 13]), step(32, [28]), step(16, [12, 12])]);
    assert.deepEqual(curve, [
      { concurrency: 0, queueDepth: 0 },
      { concurrency: 16, queueDepth: 12 },
      { concurrency: 32, queueDepth: 28 },
    ]);
  });

  it('interpolates queue depth linearly between measured concurrencies', () => {
    assert.equal(queueDepthAt(saturating, 6), 2);
    assert.equal(queueDepthAt(saturating, 10.5), 6.5);
    assert.equal(queueDepthAt(saturating, 32), 28);
    assert.equal(queueDepthAt(saturating, 2), 0);
  });

  it('spreads clients over pods as evenly as whole connections allow', () => {
    assert.deepEqual(splitLoad(32, 5), [7, 7, 6, 6, 6]);
    assert.deepEqual(splitLoad(3, 4), [1, 1, 1, 0]);
    assert.deepEqual(splitLoad(0, 2), [0, 0]);
  });

  it('scales out when per-pod queue depth passes the target and back in after the window', () => {
    const spec = {
      minReplicas: 2,
      maxReplicas: 10,
      targetAverageValue: 5,
      behavior: defaultBehavior(),
    };
    const rows = simulate(saturating, [8, 32, 0], spec, 120, 300);
    assert.equal(rows.length, (3 * 120 + 300) / 15);
    const burst = rows.find((r) => r.load === 32)!;
    assert.equal(burst.current, 2);
    assert.equal(burst.queuePerPod, 12); // 16 clients per pod, 4 in flight
    assert.equal(burst.desired, 5); // ceil(2 × 12 / 5)
    assert.ok(rows.filter((r) => r.load === 32).every((r) => r.desired >= 5));
    const quiet = rows.filter((r) => r.load === 0);
    assert.equal(quiet[0].current, rows[rows.indexOf(quiet[0]) - 1].desired);
    assert.equal(quiet.at(-1)!.desired, 2);
  });

  it("builds the HPA from the chart's autoscaling values", () => {
    const spec = hpaSpecFromChartValues({
      autoscaling: { minReplicas: 3, maxReplicas: 7, targetQueueDepth: '2500m', behavior: {} },
    });
    assert.equal(spec.minReplicas, 3);
    assert.equal(spec.maxReplicas, 7);
    assert.equal(spec.targetAverageValue, 2.5);
    assert.deepEqual(spec.behavior, defaultBehavior());
    assert.throws(() => hpaSpecFromChartValues({}), /no autoscaling section/);
  });
});
