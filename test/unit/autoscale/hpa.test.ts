import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import {
  HpaController,
  defaultBehavior,
  describeDecision,
  parseQuantity,
  podsMetricProposal,
  resolveBehavior,
  type HpaBehavior,
  type HpaSpec,
  type ScalingRules,
} from '../../../scripts/lib/hpa';

const instantDown: ScalingRules = {
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
};
const unlimitedUp: ScalingRules = {
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [{ type: 'Percent', value: 1000, periodSeconds: 15 }],
};

function spec(
  overrides: Partial<Omit<HpaSpec, 'behavior'>> & { behavior?: Partial<HpaBehavior> } = {},
): HpaSpec {
  return {
    minReplicas: 2,
    maxReplicas: 10,
    targetAverageValue: 5,
    ...overrides,
    behavior: { scaleUp: unlimitedUp, scaleDown: instantDown, ...overrides.behavior },
  };
}

/** Every pod reports the same value, as an even load split gives. */
function even(replicas: number, value: number): number[] {
  return Array.from({ length: replicas }, () => value);
}

describe('HPA replica calculation for a Pods metric with an AverageValue target', () => {
  it('proposes ceil(current × average / target)', () => {
    assert.equal(podsMetricProposal(even(2, 12), 2, 5).replicas, 5); // 2 × 2.4 = 4.8
    assert.equal(podsMetricProposal(even(4, 2.5), 4, 5).replicas, 2); // 4 × 0.5 = 2
    assert.equal(podsMetricProposal([1, 9], 2, 5).replicas, 2); // average 5: exactly on target
  });

  it('averages uneven pods before dividing by the target', () => {
    const p = podsMetricProposal([0, 0, 30], 3, 5);
    assert.equal(p.averageValue, 10);
    assert.equal(p.replicas, 6);
  });

  it('keeps the current count while the ratio is within 10 % of 1, both ends included', () => {
    for (const average of [4.5, 5, 5.5]) {
      const p = podsMetricProposal(even(10, average), 10, 5);
      assert.equal(p.withinTolerance, true, `average ${average}`);
      assert.equal(p.replicas, 10);
    }
    assert.equal(podsMetricProposal(even(10, 5.55), 10, 5).replicas, 12); // ratio 1.11
    assert.equal(podsMetricProposal(even(10, 4.45), 10, 5).replicas, 9); // ratio 0.89
  });

  it('honours a custom tolerance', () => {
    assert.equal(podsMetricProposal(even(10, 5.55), 10, 5, 0.2).replicas, 10);
    assert.equal(podsMetricProposal(even(10, 5.55), 10, 5, 0).replicas, 12);
  });

  it('reads values in truncated milli-units, as the custom metrics API serves them', () => {
    const p = podsMetricProposal([0.0009, 0.0009], 2, 5);
    assert.equal(p.averageValue, 0);
    assert.equal(p.replicas, 0);
  });

  it('refuses to decide without any pod reporting the metric', () => {
    assert.throws(() => podsMetricProposal([], 2, 5), /no pod reported/);
  });
});

describe('HPA controller: min/max, policies and stabilization windows', () => {
  it('scales up to the proposal when policies allow it', () => {
    const hpa = new HpaController(spec());
    const d = hpa.sync({ timeSeconds: 0, currentReplicas: 2, podValues: even(2, 12) });
    assert.equal(d.proposal, 5);
    assert.equal(d.desired, 5);
    assert.equal(d.action, 'scale up');
    assert.deepEqual(d.limitedBy, []);
  });

  it('clamps a large proposal to maxReplicas', () => {
    const hpa = new HpaController(spec());
    const d = hpa.sync({ timeSeconds: 0, currentReplicas: 4, podValues: even(4, 100) });
    assert.equal(d.proposal, 80);
    assert.equal(d.desired, 10);
    assert.deepEqual(d.limitedBy, ['maxReplicas']);
  });

  it('clamps a zero proposal to minReplicas', () => {
    const hpa = new HpaController(spec());
    hpa.sync({ timeSeconds: 0, currentReplicas: 6, podValues: even(6, 5) });
    const d = hpa.sync({ timeSeconds: 15, currentReplicas: 6, podValues: even(6, 0) });
    assert.equal(d.proposal, 0);
    assert.equal(d.desired, 2);
    assert.deepEqual(d.limitedBy, ['minReplicas']);
    assert.equal(describeDecision(d), 'scale down, limited by minReplicas');
  });

  it('brings a count outside min/max back into range without reading the metric', () => {
    const hpa = new HpaController(spec());
    const high = hpa.sync({ timeSeconds: 0, currentReplicas: 14, podValues: even(14, 50) });
    assert.equal(high.desired, 10);
    assert.ok(Number.isNaN(high.proposal));
    const low = new HpaController(spec()).sync({
      timeSeconds: 0,
      currentReplicas: 1,
      podValues: even(1, 0),
    });
    assert.equal(low.desired, 2);
    assert.equal(low.action, 'scale up');
  });

  it('with selectPolicy Max, scales up by the larger of the Percent and Pods policies', () => {
    const up: ScalingRules = defaultBehavior().scaleUp; // 100 % or 4 pods per 15 s
    const big = { minReplicas: 1, maxReplicas: 100, behavior: { scaleUp: up } };
    const fromTwo = new HpaController(spec(big)).sync({
      timeSeconds: 0,
      currentReplicas: 2,
      podValues: even(2, 100),
    });
    assert.equal(fromTwo.desired, 6); // 2 + 4 pods beats 2 × 2
    assert.deepEqual(fromTwo.limitedBy, ['scale-up policy']);
    const fromTen = new HpaController(spec(big)).sync({
      timeSeconds: 0,
      currentReplicas: 10,
      podValues: even(10, 100),
    });
    assert.equal(fromTen.desired, 20); // 10 × 2 beats 10 + 4
  });

  it('with selectPolicy Min, scales up by the smaller of the policies', () => {
    const up: ScalingRules = { ...defaultBehavior().scaleUp, selectPolicy: 'Min' };
    const d = new HpaController(
      spec({ minReplicas: 1, maxReplicas: 100, behavior: { scaleUp: up } }),
    ).sync({ timeSeconds: 0, currentReplicas: 10, podValues: even(10, 100) });
    assert.equal(d.desired, 14);
  });

  it('counts earlier scale-ups inside a policy period against its budget', () => {
    const up: ScalingRules = {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }],
    };
    const hpa = new HpaController(spec({ maxReplicas: 50, behavior: { scaleUp: up } }));
    const load = (replicas: number) => even(replicas, 100);
    assert.equal(hpa.sync({ timeSeconds: 0, currentReplicas: 2, podValues: load(2) }).desired, 6);
    const held = hpa.sync({ timeSeconds: 15, currentReplicas: 6, podValues: load(6) });
    assert.equal(held.desired, 6);
    assert.equal(describeDecision(held), 'held by scale-up policy');
    assert.equal(hpa.sync({ timeSeconds: 45, currentReplicas: 6, podValues: load(6) }).desired, 6);
    // The event at t=0 leaves the 60 s period at t=60 (strictly older than the cutoff).
    assert.equal(hpa.sync({ timeSeconds: 60, currentReplicas: 6, podValues: load(6) }).desired, 10);
  });

  it('scales down by at most the Percent policy per period, rounding the new count down', () => {
    const down: ScalingRules = {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }],
    };
    const hpa = new HpaController(spec({ minReplicas: 1, behavior: { scaleDown: down } }));
    hpa.sync({ timeSeconds: 0, currentReplicas: 10, podValues: even(10, 5) });
    const first = hpa.sync({ timeSeconds: 15, currentReplicas: 10, podValues: even(10, 0) });
    assert.equal(first.desired, 5);
    assert.deepEqual(first.limitedBy, ['scale-down policy']);
    assert.equal(
      hpa.sync({ timeSeconds: 30, currentReplicas: 5, podValues: even(5, 0) }).desired,
      5,
    );
    // 5 × 50 % = 2.5 pods allowed to stay: the controller truncates to 2.
    assert.equal(
      hpa.sync({ timeSeconds: 75, currentReplicas: 5, podValues: even(5, 0) }).desired,
      2,
    );
  });

  it('never scales in a direction whose selectPolicy is Disabled', () => {
    const down: ScalingRules = { ...instantDown, selectPolicy: 'Disabled' };
    const hpa = new HpaController(spec({ behavior: { scaleDown: down } }));
    const d = hpa.sync({ timeSeconds: 0, currentReplicas: 8, podValues: even(8, 0) });
    assert.equal(d.desired, 8);
    assert.deepEqual(d.limitedBy, ['scale-down policy']);
  });

  it('scales down only to the highest recommendation of the scale-down window', () => {
    const down: ScalingRules = { ...instantDown, stabilizationWindowSeconds: 300 };
    const hpa = new HpaController(spec({ behavior: { scaleDown: down } }));
    assert.equal(
      hpa.sync({ timeSeconds: 0, currentReplicas: 2, podValues: even(2, 20) }).desired,
      8,
    );
    // Demand falls: the recommendation of 8 from t=0 holds the count for 300 s.
    const held = hpa.sync({ timeSeconds: 15, currentReplicas: 8, podValues: even(8, 0) });
    assert.equal(held.proposal, 0);
    assert.equal(held.desired, 8);
    assert.equal(describeDecision(held), 'held by stabilization window');
    // A middling recommendation inside the window becomes the floor once 8 ages out.
    hpa.sync({ timeSeconds: 150, currentReplicas: 8, podValues: even(8, 2.5) }); // proposes 4
    assert.equal(
      hpa.sync({ timeSeconds: 285, currentReplicas: 8, podValues: even(8, 0) }).desired,
      8,
    );
    const partial = hpa.sync({ timeSeconds: 300, currentReplicas: 8, podValues: even(8, 0) });
    assert.equal(partial.desired, 4);
    assert.equal(describeDecision(partial), 'scale down, limited by stabilization');
    assert.equal(
      hpa.sync({ timeSeconds: 450, currentReplicas: 4, podValues: even(4, 0) }).desired,
      2,
    );
  });

  it('holds the count found at the first sync for the scale-down window', () => {
    const down: ScalingRules = { ...instantDown, stabilizationWindowSeconds: 60 };
    const hpa = new HpaController(spec({ behavior: { scaleDown: down } }));
    assert.equal(
      hpa.sync({ timeSeconds: 0, currentReplicas: 6, podValues: even(6, 0) }).desired,
      6,
    );
    assert.equal(
      hpa.sync({ timeSeconds: 45, currentReplicas: 6, podValues: even(6, 0) }).desired,
      6,
    );
    assert.equal(
      hpa.sync({ timeSeconds: 60, currentReplicas: 6, podValues: even(6, 0) }).desired,
      2,
    );
  });

  it('scales up only to the lowest recommendation of the scale-up window', () => {
    const up: ScalingRules = { ...unlimitedUp, stabilizationWindowSeconds: 60 };
    const hpa = new HpaController(spec({ behavior: { scaleUp: up } }));
    assert.equal(
      hpa.sync({ timeSeconds: 0, currentReplicas: 2, podValues: even(2, 5) }).desired,
      2,
    );
    const burst = hpa.sync({ timeSeconds: 15, currentReplicas: 2, podValues: even(2, 20) });
    assert.equal(burst.proposal, 8);
    assert.equal(burst.desired, 2);
    assert.equal(describeDecision(burst), 'held by stabilization window');
    assert.equal(
      hpa.sync({ timeSeconds: 45, currentReplicas: 2, podValues: even(2, 20) }).desired,
      2,
    );
    // The within-target recommendation from t=0 leaves the window at t=60; the lowest is then 8.
    assert.equal(
      hpa.sync({ timeSeconds: 60, currentReplicas: 2, podValues: even(2, 20) }).desired,
      8,
    );
  });

  it('names minReplicas, not the window, when the minimum alone holds the count', () => {
    const down: ScalingRules = { ...instantDown, stabilizationWindowSeconds: 300 };
    const hpa = new HpaController(spec({ behavior: { scaleDown: down } }));
    const d = hpa.sync({ timeSeconds: 0, currentReplicas: 2, podValues: even(2, 0) });
    assert.equal(d.desired, 2);
    assert.deepEqual(d.limitedBy, ['minReplicas']);
    assert.equal(describeDecision(d), 'held by minReplicas');
  });

  it('reports a ratio within tolerance as no change, whatever the windows hold', () => {
    const hpa = new HpaController(spec());
    const d = hpa.sync({ timeSeconds: 0, currentReplicas: 4, podValues: even(4, 5.4) });
    assert.equal(d.desired, 4);
    assert.deepEqual(d.limitedBy, ['tolerance']);
    assert.equal(describeDecision(d), 'within tolerance');
  });

  it('rejects specs the API server would reject', () => {
    assert.throws(() => new HpaController(spec({ minReplicas: 0 })), /minReplicas/);
    assert.throws(() => new HpaController(spec({ maxReplicas: 1 })), /maxReplicas/);
    assert.throws(() => new HpaController(spec({ targetAverageValue: 0 })), /target/);
  });
});

describe('HPA inputs: quantities and behavior', () => {
  it('parses Kubernetes quantities', () => {
    assert.equal(parseQuantity('5'), 5);
    assert.equal(parseQuantity('500m'), 0.5);
    assert.equal(parseQuantity('1.5k'), 1500);
    assert.equal(parseQuantity('2Ki'), 2048);
    assert.equal(parseQuantity('1e3'), 1000);
    assert.equal(parseQuantity(7), 7);
    assert.throws(() => parseQuantity('five'), /not a Kubernetes quantity/);
    assert.throws(() => parseQuantity('5 pods'), /not a Kubernetes quantity/);
  });

  it('fills what a behavior leaves out with the API defaults', () => {
    const b = resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 60 } });
    assert.deepEqual(b.scaleUp, defaultBehavior().scaleUp);
    assert.equal(b.scaleDown.stabilizationWindowSeconds, 60);
    assert.deepEqual(b.scaleDown.policies, defaultBehavior().scaleDown.policies);
    assert.deepEqual(resolveBehavior(undefined), defaultBehavior());
  });

  it('rejects a malformed behavior instead of simulating the defaults', () => {
    assert.throws(
      () =>
        resolveBehavior({ scaleUp: { policies: [{ type: 'Pod', value: 4, periodSeconds: 15 }] } }),
      /type must be Pods or Percent/,
    );
    assert.throws(() => resolveBehavior({ scaleDown: { selectPolicy: 'max' } }), /selectPolicy/);
    assert.throws(
      () => resolveBehavior({ scaleDown: { stabilizationWindowSeconds: '300' } }),
      /stabilizationWindowSeconds/,
    );
  });

  it("reads the chart's default autoscaling behavior", () => {
    const values = loadYaml(
      readFileSync(
        join(__dirname, '..', '..', '..', 'helm', 'triton-proxy', 'values.yaml'),
        'utf8',
      ),
    ) as { autoscaling: { behavior: unknown; targetQueueDepth: string } };
    const b = resolveBehavior(values.autoscaling.behavior);
    assert.equal(b.scaleUp.selectPolicy, 'Max');
    assert.equal(b.scaleDown.stabilizationWindowSeconds, 300);
    assert.ok(b.scaleUp.policies.length > 0 && b.scaleDown.policies.length > 0);
    assert.ok(parseQuantity(values.autoscaling.targetQueueDepth) > 0);
  });
});
