import { strict as assert } from 'node:assert';
import { ProxyError } from '../../../src/errors';
import { ErrorReporter, silentLogger } from '../../../src/observability';

describe('ErrorReporter: the last failed requests for the status page', () => {
  let clock = 0;
  const reporter = (limit: number) => new ErrorReporter(silentLogger, 1000, () => clock, limit);

  it('keeps only the last N failures, newest first, and counts every code since start', () => {
    clock = 1_000;
    const r = reporter(3);
    for (let i = 0; i < 5; i++) {
      clock += 10;
      r.report(new ProxyError('OVERLOADED', `queue full ${i}`), { requestId: `r${i}`, path: '/x' });
    }
    clock += 10;
    r.report(new ProxyError('MODEL_NOT_FOUND', "model 'nope' is unknown"), {
      requestId: 'r5',
      path: '/v2/models/nope/infer',
    });
    const s = r.summary();
    assert.deepEqual(
      s.recent.map((e) => e.requestId),
      ['r5', 'r4', 'r3'],
    );
    assert.equal(s.recent[0]!.code, 'MODEL_NOT_FOUND');
    assert.equal(s.recent[0]!.status, 404);
    assert.equal(s.recent[0]!.at, 1_060);
    assert.deepEqual(s.byCode, [
      { code: 'OVERLOADED', count: 5, lastAt: 1_050 },
      { code: 'MODEL_NOT_FOUND', count: 1, lastAt: 1_060 },
    ]);
  });

  it('returns copies: later failures do not change a summary already taken', () => {
    const r = reporter(1);
    r.report(new ProxyError('INTERNAL', 'first'), { requestId: 'a', path: '/' });
    const before = r.summary();
    r.report(new ProxyError('INTERNAL', 'second'), { requestId: 'b', path: '/' });
    assert.equal(before.recent[0]!.message, 'first');
    assert.equal(r.summary().recent[0]!.message, 'second');
  });

  it('cuts very long messages so the ring stays small', () => {
    const r = reporter(2);
    r.report(new ProxyError('INVALID_REQUEST', 'x'.repeat(10_000)), { requestId: 'a', path: '/' });
    assert.ok(r.summary().recent[0]!.message.length <= 301);
  });

  it('keeps counts but no list when the ring size is 0', () => {
    const r = reporter(0);
    r.report(new ProxyError('INTERNAL', 'boom'), { requestId: 'a', path: '/' });
    assert.deepEqual(r.summary().recent, []);
    assert.equal(r.summary().byCode[0]!.count, 1);
  });
});
