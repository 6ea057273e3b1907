import { strict as assert } from 'node:assert';
import { LocalState } from '../../../src/model-state/local-state';
import type { ModelStateEntry, ModelStateEvent, ModelStatus } from '../../../src/model-state';
import { captureLogger } from './support';

function entry(
  model: string,
  status: ModelStatus,
  updatedAt: number,
  updatedBy = 'r1',
  server = 's1',
): ModelStateEntry {
  return {
    server,
    model,
    version: '1',
    status,
    reason: '',
    updatedAt,
    updatedBy,
    expiresAt: Date.now() + 60_000,
  };
}

describe('LocalState (one replica view of the shared model state)', () => {
  let state: LocalState;
  let lookups: boolean[];

  beforeEach(() => {
    lookups = [];
    state = new LocalState(captureLogger(), { onLookup: (hit) => lookups.push(hit) });
  });

  afterEach(() => state.close());

  it('keeps the newest write whatever order writes arrive in', () => {
    state.applyServer('s1', [entry('m', 'READY', 200)]);
    state.applyServer('s1', [entry('m', 'UNAVAILABLE', 100)]);
    assert.equal(state.snapshot().status('s1', 'm', '1'), 'READY');
    state.applyServer('s1', [entry('m', 'UNAVAILABLE', 300)]);
    assert.equal(state.snapshot().status('s1', 'm', '1'), 'UNAVAILABLE');
  });

  it('breaks a timestamp tie by writer id, the same way on every replica', () => {
    const one = new LocalState(captureLogger(), {});
    const two = new LocalState(captureLogger(), {});
    const fromA = entry('m', 'READY', 500, 'replica-a');
    const fromB = entry('m', 'LOADING', 500, 'replica-b');
    one.applyServer('s1', [fromA]);
    one.applyServer('s1', [fromB]);
    two.applyServer('s1', [fromB]);
    two.applyServer('s1', [fromA]);
    assert.equal(one.snapshot().status('s1', 'm', '1'), 'LOADING');
    assert.equal(two.snapshot().status('s1', 'm', '1'), 'LOADING');
    one.close();
    two.close();
  });

  it('lets a replace remove only entries written at or before its observation time', () => {
    state.applyServer('s1', [entry('old', 'READY', 100), entry('new', 'LOADING', 300)]);
    const changes = state.applyServer('s1', [], { replaceAsOf: 200 });
    assert.deepEqual(changes, [
      { server: 's1', model: 'old', version: '1', previous: 'READY', current: undefined },
    ]);
    assert.equal(state.snapshot().status('s1', 'new', '1'), 'LOADING');
  });

  it('lets a resync remove only entries this replica learned before the shared copy was read', async () => {
    state.applyServer('s1', [entry('known', 'READY', 100)]);
    await new Promise((resolve) => setTimeout(resolve, 3));
    const readStartedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 3));
    // Arrived by message while the read was under way, with an old writer timestamp.
    state.applyServer('s1', [entry('arrived', 'READY', 50)]);
    state.applyServer('s1', [], { readStartedAt });
    assert.equal(state.snapshot().status('s1', 'known', '1'), undefined);
    assert.equal(state.snapshot().status('s1', 'arrived', '1'), 'READY');
  });

  it('sends one event per commit with every status change and none for a refresh', () => {
    const events: ModelStateEvent[] = [];
    state.onChange((event) => events.push(event));
    state.applyServer('s1', [entry('a', 'READY', 100)]);
    state.applyServer('s2', [entry('b', 'READY', 100, 'r1', 's2')]);
    state.commit('remote');
    state.applyServer('s1', [entry('a', 'READY', 200)]);
    state.commit('remote');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.origin, 'remote');
    assert.deepEqual(
      events[0]!.changes.map((change) => `${change.server}/${change.model}`),
      ['s1/a', 's2/b'],
    );
    assert.equal(state.snapshot().entry('s1', 'a', '1')?.updatedAt, 200, 'refresh still applied');
  });

  it('keeps the snapshot when a resync re-reads facts it already has', () => {
    const known = entry('a', 'READY', 100);
    state.applyServer('s1', [known]);
    const before = state.snapshot();
    state.applyServer('s1', [{ ...known }], { readStartedAt: 0 });
    state.commit('resync');
    assert.equal(state.snapshot(), before);
  });

  it('keeps a listener that throws from breaking the others', () => {
    const logger = captureLogger();
    const guarded = new LocalState(logger, {});
    let reached = false;
    guarded.onChange(() => {
      throw new Error('listener bug');
    });
    guarded.onChange(() => (reached = true));
    guarded.applyServer('s1', [entry('a', 'READY', 1)]);
    guarded.commit('local');
    assert.equal(reached, true);
    assert.deepEqual(logger.at('error'), ['model-state change listener threw']);
    guarded.close();
  });

  it('counts ready-server lookups as hits and misses', () => {
    state.applyServer('s1', [entry('a', 'READY', 1)]);
    state.snapshot().readyServers('a');
    state.snapshot().readyServers('a', '1');
    state.snapshot().readyServers('b');
    assert.deepEqual(lookups, [true, true, false]);
  });

  it('drops expired entries that arrive from elsewhere instead of installing them', () => {
    state.applyServer('s1', [{ ...entry('stale', 'READY', 1), expiresAt: Date.now() - 1 }]);
    assert.equal(state.snapshot().isKnown('stale'), false);
  });
});
