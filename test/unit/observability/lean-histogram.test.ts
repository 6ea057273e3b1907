import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { LeanHistogram } from '../../../src/observability/lean-histogram';

const BUCKETS = [0.001, 0.01, 0.1, 1];
// Below, on, between and above the bounds, and the same value twice.
const VALUES = [0, 0.0005, 0.001, 0.002, 0.01, 0.5, 1, 7, 0.002];

function pair(labelNames: string[]): {
  lean: LeanHistogram;
  plain: Histogram;
  registries: Registry[];
} {
  const registries = [new Registry(), new Registry()];
  const config = { name: 'h_seconds', help: 'help text', labelNames, buckets: BUCKETS };
  return {
    lean: new LeanHistogram({ ...config, registers: [registries[0]!] }),
    plain: new Histogram({ ...config, registers: [registries[1]!] }),
    registries,
  };
}

async function expositions(registries: Registry[]): Promise<[string, string]> {
  return [await registries[0]!.metrics(), await registries[1]!.metrics()];
}

describe('lean histogram', function () {
  it('exports exactly what a prom-client histogram exports for the same observations', async function () {
    const { lean, plain, registries } = pair(['stage', 'code']);
    const leanChildren = [lean.labels('parse', 'ok'), lean.labels({ stage: 'queue', code: 'ok' })];
    const plainChildren = [
      plain.labels('parse', 'ok'),
      plain.labels({ stage: 'queue', code: 'ok' }),
    ];
    for (const v of VALUES) {
      leanChildren[0]!.observe(v);
      plainChildren[0]!.observe(v);
      leanChildren[1]!.observe(v * 3);
      plainChildren[1]!.observe(v * 3);
    }
    // A second child of an existing label set adds to the same series.
    lean.labels('parse', 'ok').observe(0.05);
    plain.labels('parse', 'ok').observe(0.05);
    const [a, b] = await expositions(registries);
    assert.equal(a, b);
    assert.match(a, /h_seconds_count\{stage="parse",code="ok"\} 10/);
  });

  it('keeps counting after reset() and remove(), and observes without labels', async function () {
    const { lean, plain, registries } = pair(['stage']);
    const l = lean.labels('parse');
    const p = plain.labels('parse');
    l.observe(0.5);
    p.observe(0.5);
    lean.reset();
    plain.reset();
    l.observe(0.002);
    p.observe(0.002);
    lean.remove('parse');
    plain.remove('parse');
    l.observe(3);
    p.observe(3);
    const [a, b] = await expositions(registries);
    assert.equal(a, b);
    assert.match(a, /h_seconds_count\{stage="parse"\} 1/);

    const unlabelled = pair([]);
    for (const v of VALUES) {
      unlabelled.lean.observe(v);
      unlabelled.plain.observe(v);
    }
    const [c, d] = await expositions(unlabelled.registries);
    assert.equal(c, d);
  });

  it('hands out one child per label set, and a new one after the set was removed', async function () {
    const { lean, plain, registries } = pair(['stage', 'code']);
    const first = lean.labels('parse', 'ok');
    assert.equal(lean.labels('parse', 'ok'), first);
    assert.notEqual(lean.labels('parse', 'err'), first);
    lean.remove('parse', 'ok');
    const again = lean.labels('parse', 'ok');
    assert.notEqual(again, first);
    again.observe(0.2);
    plain.labels('parse', 'ok').observe(0.2);
    const [a, b] = await expositions(registries);
    assert.equal(a, b);
  });

  it('refuses what prom-client refuses: a value that is not a number, a wrong label count', function () {
    const { lean } = pair(['stage']);
    const child = lean.labels('parse');
    child.observe(0.1);
    assert.throws(() => child.observe(Number.NaN), TypeError);
    assert.throws(() => lean.labels('a', 'b'), /Invalid number of arguments/);
  });
});
