import assert from 'node:assert/strict';
import { ExportFailureReporter } from '../../../src/observability';
import { silentLogger } from '../../../src/observability';

describe('ExportFailureReporter', () => {
  function reporter(intervalMs = 60_000) {
    let now = 1_000;
    const warnings: Array<Record<string, unknown> | undefined> = [];
    const counted: number[] = [];
    const logger = {
      ...silentLogger,
      warn: (_m: string, meta?: Record<string, unknown>) => warnings.push(meta),
    };
    const r = new ExportFailureReporter(
      logger,
      (n) => counted.push(n),
      intervalMs,
      () => now,
    );
    return { r, warnings, counted, advance: (ms: number) => (now += ms) };
  }

  it('counts every failed batch, and warns at once for the first with its error', () => {
    const { r, warnings, counted } = reporter();
    r.report(12, new Error('Bad Request (400)'));
    assert.deepEqual(counted, [12]);
    assert.deepEqual(warnings, [{ spansDropped: 12, error: 'Bad Request (400)' }]);
  });

  it('warns at most once per interval, then with every span dropped since the last warning', () => {
    const { r, warnings, counted, advance } = reporter(60_000);
    r.report(5, new Error('ECONNREFUSED'));
    advance(10_000);
    r.report(7, new Error('ECONNREFUSED'));
    advance(49_999);
    r.report(1, undefined);
    assert.equal(warnings.length, 1);
    advance(1);
    r.report(2, new Error('timeout'));
    assert.deepEqual(counted, [5, 7, 1, 2]);
    assert.deepEqual(warnings, [
      { spansDropped: 5, error: 'ECONNREFUSED' },
      { spansDropped: 10, error: 'timeout' },
    ]);
  });

  it("adds the error's code (the collector's HTTP status) to its message", () => {
    const { r, warnings } = reporter();
    r.report(3, Object.assign(new Error('Bad Request'), { code: 400 }));
    assert.deepEqual(warnings, [{ spansDropped: 3, error: 'Bad Request (400)' }]);
  });

  it('names an unknown error when the exporter gives none', () => {
    const { r, warnings } = reporter();
    r.report(1, undefined);
    assert.deepEqual(warnings, [{ spansDropped: 1, error: 'unknown error' }]);
  });
});
