import assert from 'node:assert/strict';
import { MemoryModelStateStore, type ModelStateEvent } from '../../../src/model-state';
import { silentLogger } from '../../../src/observability';

describe('model generations', () => {
  it('go up when a model becomes ready or stops being ready, and only then', async () => {
    const store = new MemoryModelStateStore({ entryTtlMs: 60_000, logger: silentLogger });
    const events: ModelStateEvent[] = [];
    store.onChange((e) => events.push(e));
    assert.equal(store.snapshot().generation('m'), 0);
    await store.markStatus('s1', 'm', '1', 'READY');
    assert.equal(store.snapshot().generation('m'), 1);
    await store.markStatus('s1', 'm', '1', 'READY', 'refreshed');
    await store.markStatus('s2', 'other', '1', 'LOADING');
    assert.equal(store.snapshot().generation('m'), 1, 'a refresh is no change');
    await store.markStatus('s1', 'm', '', 'LOADING');
    assert.equal(store.snapshot().generation('m'), 1, 'loading next to a ready version');
    await store.markStatus('s1', 'm', '', 'READY');
    assert.equal(store.snapshot().generation('m'), 2, 'a reload through the proxy');
    await store.replaceServer('s1', []);
    assert.equal(store.snapshot().generation('m'), 3, 'gone from the server');
    assert.deepEqual(
      events.filter((e) => e.generationsChanged.length > 0).map((e) => e.generationsChanged),
      [['m'], ['m'], ['m']],
    );
    await store.close();
  });
});
