import { strict as assert } from 'node:assert';
import { Metrics } from '../../../src/observability';
import { parseStageBuckets, quantileBetween, stageQuantiles } from '../../../bench/stage-latency';

describe('bench stage latency from the proxy histogram', function () {
  it('reads p95 per stage from the observations between two scrapes of a real registry', async function () {
    const metrics = new Metrics({ modelLabelLimit: 4, defaultMetrics: false });
    const stage = metrics.stageDuration;
    // Before the case: slow parses that must not count.
    for (let i = 0; i < 100; i++) stage.labels('parse').observe(5);
    const before = parseStageBuckets(await metrics.registry.metrics());
    // During the case: 100 parses of 60-90 ms, 100 upstream calls of 2 ms.
    for (let i = 0; i < 100; i++) {
      stage.labels('parse').observe(0.06 + (i % 4) * 0.01);
      stage.labels('upstream').observe(0.002);
    }
    const after = parseStageBuckets(await metrics.registry.metrics());
    const s = stageQuantiles('case', before, after);
    assert.equal(s.count.parse, 100);
    assert.equal(s.count.upstream, 100);
    // Every parse falls in (0.05, 0.1]: rank 95 of 100 interpolates to 0.05 + 0.05 * 0.95.
    assert.ok(Math.abs(s.p95.parse! - 0.0975) < 1e-9, String(s.p95.parse));
    // Upstream in (0.001, 0.0025]: 0.001 + 0.0015 * 0.95.
    assert.ok(Math.abs(s.p95.upstream! - 0.002425) < 1e-9, String(s.p95.upstream));
    assert.equal(s.p95.encode, undefined);
  });

  it('answers the highest finite bound when the rank falls in +Inf, as histogram_quantile does', function () {
    const after = new Map([
      [0.1, 1],
      [1, 2],
      [Infinity, 100],
    ]);
    assert.deepEqual(quantileBetween(0.95, undefined, after), { value: 1, count: 100 });
    assert.equal(quantileBetween(0.95, after, after), undefined);
  });
});
