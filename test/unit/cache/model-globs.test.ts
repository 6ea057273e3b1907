import assert from 'node:assert/strict';
import { ModelPolicies } from '../../../src/cache';
import { loadConfig, parseModelGlobs } from '../../../src/config';

describe('CACHE_MODELS and COALESCE_MODELS', () => {
  it('reads globs with TTLs in ms, s, m and h', () => {
    assert.deepEqual(
      parseModelGlobs('embed-*:10m, classifier:30s,t:2h,x:500ms', 'CACHE_MODELS', {
        ttl: 'required',
      }),
      [
        { pattern: 'embed-*', ttlMs: 600_000 },
        { pattern: 'classifier', ttlMs: 30_000 },
        { pattern: 't', ttlMs: 7_200_000 },
        { pattern: 'x', ttlMs: 500 },
      ],
    );
  });

  it('refuses entries it cannot read, naming the key and the entry', () => {
    const load = (env: Record<string, string>) => () =>
      loadConfig({ env: { TRITON_SERVERS: 'a=h:1', ...env } });
    assert.throws(load({ CACHE_MODELS: 'embed' }), /CACHE_MODELS.*entry 1 "embed".*glob:ttl/);
    assert.throws(load({ CACHE_MODELS: 'embed:10' }), /CACHE_MODELS.*unit/);
    assert.throws(load({ CACHE_MODELS: 'a:1s,,b:2s' }), /entry 2.*empty/);
    assert.throws(load({ CACHE_MODELS: 'a:1s,a:2s' }), /listed twice/);
    assert.throws(load({ CACHE_MODELS: 'a:0s' }), /above zero/);
    assert.throws(load({ COALESCE_MODELS: 'x y' }), /COALESCE_MODELS.*whitespace/);
    assert.throws(load({ CACHE_SHARED: 'true', CACHE_MODELS: 'a:1s' }), /CACHE_SHARED.*Redis/);
  });

  it('coalesces the cached models by default, other globs when told, none when told', () => {
    const base = { TRITON_SERVERS: 'a=h:1', CACHE_MODELS: 'embed-*:10m' };
    const policies = (env: Record<string, string>) => {
      const c = loadConfig({ env: { ...base, ...env } }).cache;
      return new ModelPolicies(c.models, c.coalesceModels);
    };
    assert.deepEqual(policies({}).for('embed-a'), { ttlMs: 600_000, coalesce: true });
    assert.deepEqual(policies({}).for('other'), { ttlMs: undefined, coalesce: false });
    assert.deepEqual(policies({ COALESCE_MODELS: 'none' }).for('embed-a'), {
      ttlMs: 600_000,
      coalesce: false,
    });
    assert.deepEqual(policies({ COALESCE_MODELS: 'llm-*' }).for('llm-x'), {
      ttlMs: undefined,
      coalesce: true,
    });
    assert.equal(policies({ CACHE_MODELS: '' }).enabled, false);
  });
});
