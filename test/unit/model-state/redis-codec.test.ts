import { strict as assert } from 'node:assert';
import { parseMessage } from '../../../src/model-state/redis-codec';

const entry = {
  server: 's1',
  model: 'm',
  version: '1',
  status: 'READY',
  reason: '',
  updatedAt: 1,
  updatedBy: 'r',
  expiresAt: 2,
};

describe('model-state change messages', () => {
  it('reads entry, failure and failure-cleared messages', () => {
    assert.deepEqual(
      parseMessage(
        JSON.stringify({
          kind: 'entries',
          origin: 'r',
          server: 's1',
          replaceAsOf: 5,
          entries: [entry],
        }),
      ),
      { kind: 'entries', origin: 'r', server: 's1', replaceAsOf: 5, entries: [entry] },
    );
    const failure = {
      model: 'm',
      version: '',
      server: 's1',
      reason: 'oom',
      code: 'UPSTREAM_UNAVAILABLE',
      failedAt: 1,
      until: 2,
      failedBy: 'r',
    };
    assert.deepEqual(parseMessage(JSON.stringify({ kind: 'failure', origin: 'r', failure })), {
      kind: 'failure',
      origin: 'r',
      failure,
    });
    assert.deepEqual(
      parseMessage(
        JSON.stringify({ kind: 'failure-cleared', origin: 'r', model: 'm', version: '' }),
      ),
      { kind: 'failure-cleared', origin: 'r', model: 'm', version: '' },
    );
  });

  for (const [name, raw] of [
    ['not JSON', '{'],
    ['an unknown kind', JSON.stringify({ kind: 'other', origin: 'r' })],
    [
      'no origin',
      JSON.stringify({ kind: 'entries', server: 's1', replaceAsOf: null, entries: [] }),
    ],
    [
      'an unknown status',
      JSON.stringify({
        kind: 'entries',
        origin: 'r',
        server: 's1',
        replaceAsOf: null,
        entries: [{ ...entry, status: 'MAYBE' }],
      }),
    ],
    [
      'an entry of another server',
      JSON.stringify({
        kind: 'entries',
        origin: 'r',
        server: 's2',
        replaceAsOf: null,
        entries: [entry],
      }),
    ],
    [
      'a failure with an unknown error code',
      JSON.stringify({
        kind: 'failure',
        origin: 'r',
        failure: {
          model: 'm',
          version: '',
          server: 's',
          reason: '',
          code: 'NOPE',
          failedAt: 1,
          until: 2,
          failedBy: 'r',
        },
      }),
    ],
  ] as const) {
    it(`ignores a message with ${name}`, () => {
      assert.equal(parseMessage(raw), undefined);
    });
  }
});
