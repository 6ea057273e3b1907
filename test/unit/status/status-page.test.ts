import { strict as assert } from 'node:assert';
import type { UpstreamSnapshot } from '../../../src/fleet';
import { MemoryModelStateStore } from '../../../src/model-state';
import { ErrorReporter, silentLogger } from '../../../src/observability';
import { ProxyError } from '../../../src/errors';
import {
  collectStatus,
  escapeHtml,
  renderStatusPage,
  type StatusSources,
} from '../../../src/status';

const HOSTILE = `<img src=x onerror="alert('x')">&`;

function server(over: Partial<UpstreamSnapshot>): UpstreamSnapshot {
  return {
    name: 'a',
    address: '10.0.0.1:8001',
    group: 'default',
    ready: true,
    draining: false,
    breaker: 'closed',
    inflight: 0,
    recent: { windowSeconds: 60, calls: 0, errors: 0, errorRatio: null, p99Seconds: null },
    ...over,
  };
}

async function sources(over: Partial<StatusSources> = {}): Promise<StatusSources> {
  const store = new MemoryModelStateStore({ entryTtlMs: 60_000, logger: silentLogger });
  await store.update([
    { server: 'a', model: 'resnet', version: '1', status: 'READY' },
    { server: 'a', model: 'resnet', version: '2', status: 'LOADING' },
    { server: 'b', model: 'resnet', version: '1', status: 'UNAVAILABLE', reason: 'OOM' },
    { server: 'b', model: HOSTILE, version: '', status: 'READY' },
  ]);
  const errors = new ErrorReporter(silentLogger, 1000, () => 1_700_000_000_000);
  errors.report(new ProxyError('MODEL_NOT_FOUND', `unknown model '${HOSTILE}'`), {
    requestId: 'req-1',
    path: '/v2/models/x/infer',
  });
  return {
    version: '9.9.9',
    replicaId: 'replica-1',
    startedAt: 1_700_000_000_000 - 3_723_000,
    now: () => 1_700_000_000_000,
    isReady: () => ({ ready: false, reasons: ['no Triton server is ready'] }),
    stateHealth: () => ({ backend: 'redis', up: false }),
    replicas: () =>
      Promise.resolve([
        { id: 'replica-1', lastSeenAt: 1_700_000_000_000, self: true },
        { id: 'replica-2', lastSeenAt: 1_699_999_995_000, self: false },
      ]),
    servers: () => [
      server({
        name: 'b',
        address: HOSTILE,
        ready: false,
        breaker: 'open',
        inflight: 2,
        recent: { windowSeconds: 60, calls: 10, errors: 4, errorRatio: 0.4, p99Seconds: 0.01234 },
      }),
      server({ name: 'a' }),
    ],
    staleServers: () => ['b'],
    modelState: () => store.snapshot(),
    admission: () => ({
      inflight: 3,
      queued: 7,
      inflightBytes: 2048,
      accepting: true,
      byModel: new Map([['resnet', { inflight: 3, queued: 7, maxInflight: 3, maxQueue: 10 }]]),
      rejected: { queue_full: 5, queue_timeout: 1 },
    }),
    cacheResults: () => Promise.resolve(new Map([['resnet', { hit: 3, miss: 1, bypass: 2 }]])),
    errors: () => errors.summary(),
    ...over,
  };
}

describe('status snapshot', () => {
  it('describes the replica: version, uptime, readiness, state mode, Redis health, replicas seen', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(s.replica, {
      id: 'replica-1',
      version: '9.9.9',
      startedAt: new Date(1_700_000_000_000 - 3_723_000).toISOString(),
      uptimeSeconds: 3723,
      ready: false,
      notReadyReasons: ['no Triton server is ready'],
      state: { mode: 'redis', redisUp: false },
      replicasSeen: [
        { id: 'replica-1', lastSeenAt: new Date(1_700_000_000_000).toISOString(), self: true },
        { id: 'replica-2', lastSeenAt: new Date(1_699_999_995_000).toISOString(), self: false },
      ],
    });
  });

  it('says Redis is not used (null) in memory mode rather than down', async () => {
    const s = await collectStatus(
      await sources({ stateHealth: () => ({ backend: 'memory', up: true }) }),
    );
    assert.deepEqual(s.replica.state, { mode: 'memory', redisUp: null });
  });

  it('lists servers by name with health, breaker, in flight, staleness, recent error ratio and p99 in ms', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(
      s.servers.map((x) => x.name),
      ['a', 'b'],
    );
    const b = s.servers[1]!;
    assert.equal(b.health, 'not ready');
    assert.equal(b.breaker, 'open');
    assert.equal(b.inflight, 2);
    assert.equal(b.stale, true);
    assert.deepEqual(b.recent, {
      windowSeconds: 60,
      calls: 10,
      errors: 4,
      errorRatio: 0.4,
      p99Ms: 12.3,
    });
    assert.equal(s.servers[0]!.stale, false);
  });

  it('builds the model x server matrix with the best status per cell, every version, and stale servers marked', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(s.models.servers, ['a', 'b']);
    const resnet = s.models.rows.find((r) => r.model === 'resnet')!;
    assert.equal(resnet.cells.a!.status, 'READY');
    assert.deepEqual(
      resnet.cells.a!.versions.map((v) => `${v.version}:${v.status}`),
      ['1:READY', '2:LOADING'],
    );
    assert.equal(resnet.cells.a!.stale, false);
    assert.equal(resnet.cells.b!.status, 'UNAVAILABLE');
    assert.equal(resnet.cells.b!.versions[0]!.reason, 'OOM');
    assert.equal(resnet.cells.b!.stale, true);
    const other = s.models.rows.find((r) => r.model === HOSTILE)!;
    assert.equal(other.cells.a, undefined);
  });

  it('reports admission (queue, in flight, bytes, shed by reason) and the cache hit ratio by model', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(s.admission, {
      accepting: true,
      queued: 7,
      inflight: 3,
      inflightBytes: 2048,
      rejected: { queue_full: 5, queue_timeout: 1 },
      byModel: [{ model: 'resnet', inflight: 3, queued: 7, maxInflight: 3, maxQueue: 10 }],
    });
    assert.deepEqual(s.cache, {
      enabled: true,
      models: [{ model: 'resnet', hits: 3, misses: 1, bypassed: 2, hitRatio: 0.75 }],
    });
    const off = await collectStatus(await sources({ cacheResults: undefined }));
    assert.deepEqual(off.cache, { enabled: false });
  });

  it('carries the last errors with their codes', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(s.errors.byCode, [
      { code: 'MODEL_NOT_FOUND', count: 1, lastAt: new Date(1_700_000_000_000).toISOString() },
    ]);
    assert.equal(s.errors.recent[0]!.requestId, 'req-1');
    assert.equal(s.errors.recent[0]!.status, 404);
    assert.equal(s.errors.recent[0]!.server, null);
  });

  it('is plain JSON: serializing and parsing it gives it back unchanged', async () => {
    const s = await collectStatus(await sources());
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
});

describe('status page HTML', () => {
  it('escapes the five HTML-special characters', () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('escapes every name, address and message that comes from configuration, Triton or requests', async () => {
    const html = renderStatusPage(await collectStatus(await sources()), { refreshSeconds: 5 });
    assert.ok(!html.includes('<img'), 'no injected element survives');
    assert.ok(!html.includes(`onerror="`), 'no injected attribute survives');
    assert.ok(html.includes('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;'));
  });

  it('is a self-contained page for phones: viewport, inline style only, no script, meta refresh', async () => {
    const html = renderStatusPage(await collectStatus(await sources()), { refreshSeconds: 7 });
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<meta name="viewport" content="width=device-width,initial-scale=1">/);
    assert.match(html, /<meta http-equiv="refresh" content="7">/);
    assert.match(html, /<style>/);
    assert.ok(!/<script|<link|src=["']?http/i.test(html), 'no script and no external asset');
    assert.match(html, /class="scroll"/, 'wide tables scroll inside their box on a narrow screen');
    const still = renderStatusPage(await collectStatus(await sources()), { refreshSeconds: 0 });
    assert.ok(!still.includes('http-equiv="refresh"'));
  });

  it('shows the not-ready server, the open breaker, the queue, the shed counts, the cache and the errors', async () => {
    const html = renderStatusPage(await collectStatus(await sources()), { refreshSeconds: 5 });
    const row = /<tr class="row-bad" data-server="b">(.*?)<\/tr>/.exec(html)?.[1] ?? '';
    assert.match(row, /not ready/);
    assert.match(row, /badge bad">open</);
    assert.match(row, /stale/);
    assert.match(row, /40%/);
    assert.match(row, /12\.3 ms/);
    assert.match(html, /<title>1 down · triton-proxy status<\/title>/);
    assert.match(html, /queued <b data-field="queued">7<\/b>/);
    assert.match(html, /queue_full 5, queue_timeout 1/);
    assert.match(html, /2\.0 KiB/);
    assert.match(html, /<td class="num">75%<\/td>/);
    assert.match(html, /MODEL_NOT_FOUND/);
    assert.match(html, /replica-2/);
    assert.match(html, /up 1h 2m/);
    assert.match(html, /Redis <span class="badge bad">down/);
  });
});
