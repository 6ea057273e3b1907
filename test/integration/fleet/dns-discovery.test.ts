import { strict as assert } from 'node:assert';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import type { Upstream } from '../../../src/fleet';
import {
  postJson,
  simpleRequest,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { inferUrl, runLoad, scrapeMetric, sleep } from './support';

const BODY = simpleRequest(new Array<number>(16).fill(5), new Array<number>(16).fill(2));
const IPS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const nameOf = (ip: string): string => `dns-${ip}`;

/**
 * DNS discovery builds `ip:port` from one port, as a headless Service's A
 * records do; so the fakes share a port on three loopback addresses.
 */
async function startFakesOnLoopbacks(): Promise<FakeTriton[]> {
  const first = await startFakeTriton({ host: IPS[0], port: 0, name: 'pod-a' });
  const rest = await Promise.all(
    IPS.slice(1).map((ip, i) =>
      startFakeTriton({ host: ip, port: first.port, name: `pod-${'bc'[i]}` }),
    ),
  );
  return [first, ...rest];
}

describe('DNS discovery of a headless Service (resolver stub, fakes on 127.0.0.1-3)', () => {
  let fakes: FakeTriton[] = [];
  let proxy: TestProxy | undefined;
  let answer: string[] = [];
  let failLookups = false;
  const lookups: string[] = [];

  beforeEach(async () => {
    fakes = await startFakesOnLoopbacks();
    answer = [IPS[0]!];
    failLookups = false;
    lookups.length = 0;
    proxy = await startTestProxy(
      {
        TRITON_DISCOVERY_DNS: `triton-headless.ml.svc.cluster.local:${fakes[0]!.port}`,
        TRITON_DISCOVERY_INTERVAL_MS: '100',
        TRITON_HEALTH_INTERVAL_MS: '100',
        // How long a removed server may drain.
        SHUTDOWN_GRACE_MS: '3000',
      },
      {
        resolver: async (host) => {
          lookups.push(host);
          if (failLookups)
            throw Object.assign(new Error(`queryA ESERVFAIL ${host}`), { code: 'ESERVFAIL' });
          return [...answer];
        },
      },
    );
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    fakes = [];
  });

  const fleet = () => proxy!.proxy.fleet;
  const names = () =>
    fleet()
      .servers.map((s) => s.name)
      .sort();

  /** Sends requests until one is in flight on `server`; returns them all. */
  async function pinOneOn(server: Upstream): Promise<Array<Promise<{ status: number }>>> {
    const sent: Array<Promise<{ status: number }>> = [];
    for (let i = 0; i < 40 && server.outstanding === 0; i++) {
      sent.push(postJson(inferUrl(proxy!.url), BODY));
      await sleep(20);
    }
    assert.ok(server.outstanding > 0, `a request is in flight on ${server.name}`);
    return sent;
  }

  it('adds the addresses the Service gains and serves through them, without a restart', async () => {
    await waitFor(() => fleet().readyCount() === 1, 3000, 'first pod ready');
    assert.deepEqual(names(), [nameOf(IPS[0]!)]);
    assert.ok(lookups.every((h) => h === 'triton-headless.ml.svc.cluster.local'));
    assert.equal((await postJson(inferUrl(proxy!.url), BODY)).status, 200);

    answer = [...IPS];
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready');
    assert.deepEqual(names(), IPS.map(nameOf));
    for (const f of fakes) f.resetCounters();
    const samples = await runLoad({ url: proxy!.url, clients: 6, durationMs: 600 });
    assert.ok(samples.every((s) => s.status === 200));
    const counts = fakes.map((f) => f.callCount('ModelInfer'));
    assert.ok(
      counts.every((n) => n > 0),
      `every pod serves traffic: ${counts.join(' / ')}`,
    );
    assert.equal(await scrapeMetric(proxy!.url, 'triton_proxy_servers_known'), 3);
  });

  it('drops every metric series of an address the Service lost, once it has drained', async () => {
    answer = [...IPS];
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready');
    const samples = await runLoad({ url: proxy!.url, clients: 6, durationMs: 400 });
    assert.ok(samples.every((s) => s.status === 200));
    const gone = nameOf(IPS[1]!);
    const series = async () =>
      (await (await fetch(`${proxy!.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l.includes(`server="${gone}"`));
    assert.ok((await series()).length > 0, 'the server had series while it served');

    answer = [IPS[0]!, IPS[2]!];
    await waitFor(async () => (await series()).length === 0, 4000, `series of ${gone} removed`);
    const text = await (await fetch(`${proxy!.url}/metrics`)).text();
    assert.match(text, new RegExp(`server="${nameOf(IPS[0]!)}"`), 'remaining servers keep theirs');
  });

  it('drains a removed address: its in-flight request completes, it gets no new ones, then it is closed', async () => {
    answer = [...IPS];
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready');
    const leaving = fleet().get(nameOf(IPS[1]!))!;
    fakes[1]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 800 : 0));
    const inFlight = await pinOneOn(leaving);

    answer = [IPS[0]!, IPS[2]!];
    await waitFor(() => fleet().get(leaving.name) === undefined, 2000, 'pod b removed');
    assert.equal(leaving.draining, true);
    assert.ok(leaving.outstanding > 0, 'still draining when removed');
    const callsOnLeaving = fakes[1]!.callCount('ModelInfer');
    const during = await runLoad({ url: proxy!.url, clients: 4, durationMs: 300 });
    assert.ok(during.every((s) => s.status === 200));
    assert.equal(
      fakes[1]!.callCount('ModelInfer'),
      callsOnLeaving,
      'no new request reaches a draining server',
    );

    const results = await Promise.all(inFlight);
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
      'the in-flight request on the removed pod completed',
    );
    await waitFor(
      async () => (await scrapeMetric(proxy!.url, 'triton_proxy_servers_known')) === 2,
      2000,
      'two servers known',
    );
    // Closed: its breaker refuses calls and health polling stopped.
    await waitFor(() => leaving.outstanding === 0, 2000, 'drained');
    await sleep(50);
    await assert.rejects(
      leaving.call('ServerReady', {}, { deadline: Date.now() + 500 }),
      /removed from the fleet/,
    );
    const polls = fakes[1]!.callCount('ServerReady');
    await sleep(300);
    assert.equal(
      fakes[1]!.callCount('ServerReady'),
      polls,
      'no more health checks to a closed server',
    );
    const metrics = await (await fetch(`${proxy!.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /breaker_state\{server="dns-127\.0\.0\.2"\}/);
  });

  it('keeps the current servers while lookups fail', async () => {
    answer = [...IPS];
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready');
    failLookups = true;
    const before = lookups.length;
    await waitFor(() => lookups.length >= before + 3, 2000, 'several failed lookups');
    assert.deepEqual(names(), IPS.map(nameOf), 'a DNS outage does not empty the fleet');
    assert.equal((await postJson(inferUrl(proxy!.url), BODY)).status, 200);
  });

  it('keeps metrics of an address that comes back while its old entry still drains', async () => {
    answer = [...IPS];
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready');
    const old = fleet().get(nameOf(IPS[1]!))!;
    fakes[1]!.setLatency((rpc) => (rpc === 'ModelInfer' ? 600 : 0));
    const inFlight = await pinOneOn(old);
    answer = [IPS[0]!, IPS[2]!];
    await waitFor(() => fleet().get(old.name) === undefined, 2000, 'pod b removed');
    answer = [...IPS];
    await waitFor(() => fleet().get(old.name) !== undefined, 2000, 'pod b back');
    fakes[1]!.setLatency(0);
    await Promise.all(inFlight);
    await waitFor(() => old.outstanding === 0, 2000, 'old entry drained');
    await sleep(50);
    const metrics = await (await fetch(`${proxy!.url}/metrics`)).text();
    assert.match(
      metrics,
      /triton_proxy_breaker_state\{server="dns-127\.0\.0\.2"\} 0/,
      'the new entry keeps its breaker gauge',
    );
    await waitFor(() => fleet().readyCount() === 3, 3000, 'three pods ready again');
    assert.equal((await postJson(inferUrl(proxy!.url), BODY)).status, 200);
  });
});
