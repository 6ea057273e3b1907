import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../src/fake-triton';
import { startFakes, startTestProxy, waitFor, type TestProxy } from '../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server';
import {
  NO_TOXIPROXY,
  startToxiproxy,
  toxiproxyAvailable,
  type Toxic,
  type Toxiproxy,
  type ToxiproxyProxy,
} from '../helpers/toxiproxy';
import { percentile, runLoad, sleep, type Sample } from '../integration/fleet/support';

/**
 * Real network faults (Toxiproxy) between the proxy and one of two fake
 * Tritons, and between the proxy and Redis. For every fault, inference must
 * see zero client-visible errors while a healthy server remains. Figures are
 * printed for the record (errors, p99 in steady state and under the fault,
 * time to recover after the fault is removed).
 */

const CLIENTS = 4;
const STEADY_MS = 1000;
const FAULT_MS = 2500;

/** The proxy's settings for a fleet where failures must be found in well under a second. */
const FAULT_READY_ENV: Record<string, string> = {
  TRITON_HEALTH_INTERVAL_MS: '200',
  TRITON_CONTROL_TIMEOUT_MS: '1000',
  TRITON_ATTEMPT_TIMEOUT_MS: '600',
  TRITON_REQUEST_TIMEOUT_MS: '8000',
  TRITON_INFER_PING_AFTER_MS: '300',
  TRITON_INFER_PING_TIMEOUT_MS: '500',
  TRITON_CONNECT_TIMEOUT_MS: '1000',
  BREAKER_VOLUME_THRESHOLD: '3',
  BREAKER_RESET_TIMEOUT_MS: '500',
  BREAKER_ROLLING_WINDOW_MS: '1000',
  RETRY_MAX_ATTEMPTS: '3',
  RETRY_BASE_DELAY_MS: '5',
  RECONCILE_INTERVAL_MS: '500',
  RESYNC_INTERVAL_MS: '1000',
  REDIS_CONNECT_TIMEOUT_MS: '500',
  REDIS_COMMAND_TIMEOUT_MS: '300',
};

function failures(samples: readonly Sample[]): string[] {
  return samples.filter((s) => s.status !== 200).map((s) => `${s.status} ${s.body ?? ''}`);
}

function p99(samples: readonly Sample[]): number {
  return percentile(
    samples.map((s) => s.latencyMs),
    99,
  );
}

interface Scenario {
  name: string;
  toxics: Toxic[];
  /** What "recovered" means once the toxics are gone. */
  recovered: (ctx: { proxy: TestProxy; faulty: FakeTriton; callsBefore: number }) => boolean;
}

const ON_TRITON: Scenario[] = [
  {
    name: 'latency 250 ms +-50 on the replies',
    toxics: [
      {
        name: 'lat',
        type: 'latency',
        stream: 'downstream',
        attributes: { latency: 250, jitter: 50 },
      },
    ],
    recovered: ({ faulty, callsBefore }) => faulty.callCount('ModelInfer') > callsBefore + 5,
  },
  {
    name: 'bandwidth 2 KB/s both ways',
    toxics: [
      { name: 'bw-down', type: 'bandwidth', stream: 'downstream', attributes: { rate: 2 } },
      { name: 'bw-up', type: 'bandwidth', stream: 'upstream', attributes: { rate: 2 } },
    ],
    recovered: ({ faulty, callsBefore }) => faulty.callCount('ModelInfer') > callsBefore + 5,
  },
  {
    name: 'reset_peer (TCP RST on every connection)',
    toxics: [{ name: 'rst', type: 'reset_peer', stream: 'upstream', attributes: { timeout: 0 } }],
    recovered: ({ faulty, callsBefore }) => faulty.callCount('ModelInfer') > callsBefore + 5,
  },
  {
    name: 'timeout 0 (black hole: data dropped, connection left open)',
    toxics: [
      { name: 'hole-up', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } },
      { name: 'hole-down', type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } },
    ],
    recovered: ({ faulty, callsBefore }) => faulty.callCount('ModelInfer') > callsBefore + 5,
  },
  {
    name: 'slicer (replies cut into ~16-byte pieces 200 us apart)',
    toxics: [
      {
        name: 'slice',
        type: 'slicer',
        stream: 'downstream',
        attributes: { average_size: 16, size_variation: 8, delay: 200 },
      },
    ],
    recovered: ({ faulty, callsBefore }) => faulty.callCount('ModelInfer') > callsBefore + 5,
  },
];

const ON_REDIS: Array<Omit<Scenario, 'recovered'>> = [
  {
    name: 'latency 500 ms on Redis',
    toxics: [{ name: 'rlat', type: 'latency', stream: 'downstream', attributes: { latency: 500 } }],
  },
  {
    name: 'black hole on Redis',
    toxics: [
      { name: 'rhole-up', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } },
      { name: 'rhole-down', type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } },
    ],
  },
  {
    name: 'reset_peer on Redis',
    toxics: [{ name: 'rrst', type: 'reset_peer', stream: 'upstream', attributes: { timeout: 0 } }],
  },
];

describe('real network faults through Toxiproxy: no client-visible errors while a healthy server remains', function () {
  this.timeout(60_000);
  let toxiproxy: Toxiproxy;
  let redis: RedisServerHandle;
  let fakes: FakeTriton[] = [];
  let links: ToxiproxyProxy[] = [];
  let redisLink: ToxiproxyProxy;
  let proxy: TestProxy;

  before(async function () {
    if (!toxiproxyAvailable()) this.skip();
    toxiproxy = await startToxiproxy();
    redis = await startRedisServer();
    fakes = await startFakes(2);
    links = await Promise.all(fakes.map((f, i) => toxiproxy.proxy(`triton${i}`, f.address)));
    redisLink = await toxiproxy.proxy('redis', `127.0.0.1:${redis.port}`);
    proxy = await startTestProxy({
      ...FAULT_READY_ENV,
      TRITON_SERVERS: links.map((l, i) => `t${i}=${l.listen}`).join(','),
      REDIS_URL: `redis://${redisLink.listen}`,
      REDIS_KEY_PREFIX: `faults-${Date.now()}:`,
    });
    await waitFor(() => proxy.proxy.fleet.readyCount() === 2, 5000, 'two ready servers');
    await waitFor(() => proxy.proxy.state.health().up, 5000, 'Redis up');
    // Connections up and code paths warm before anything is measured.
    await runLoad({ url: proxy.url, clients: CLIENTS, durationMs: 500 });
  });

  after(async () => {
    await proxy?.close();
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    await redis?.stop();
    await toxiproxy?.stop();
  });

  afterEach(async () => {
    for (const l of [...links, redisLink]) await l?.clear();
  });

  for (const scenario of ON_TRITON) {
    it(`Triton link, ${scenario.name}`, async () => {
      const { url } = proxy;
      const faulty = fakes[1]!;
      const steady = await runLoad({ url, clients: CLIENTS, durationMs: STEADY_MS });
      for (const toxic of scenario.toxics) await links[1]!.add(toxic);
      const during = await runLoad({ url, clients: CLIENTS, durationMs: FAULT_MS });
      await links[1]!.clear();
      const removedAt = performance.now();
      const callsBefore = faulty.callCount('ModelInfer');
      // Light traffic until the faulty server serves again (bounded).
      const after: Sample[] = [];
      let recoveredMs = NaN;
      while (performance.now() - removedAt < 15_000) {
        after.push(...(await runLoad({ url, clients: 2, durationMs: 100 })));
        if (scenario.recovered({ proxy, faulty, callsBefore })) {
          recoveredMs = performance.now() - removedAt;
          break;
        }
      }

      assert.deepEqual(failures(steady), [], 'steady state');
      assert.deepEqual(failures(during), [], 'no client-visible error during the fault');
      assert.deepEqual(failures(after), [], 'no client-visible error while recovering');
      assert.ok(during.length > 10, `${during.length} requests during the fault`);
      assert.ok(Number.isFinite(recoveredMs), 'the faulty server served again after the fault');
      console.log(
        `      ${scenario.name}: errors 0/${during.length}; p99 steady ${p99(steady).toFixed(0)} ms, ` +
          `under fault ${p99(during).toFixed(0)} ms (max ${Math.max(...during.map((s) => s.latencyMs)).toFixed(0)}); ` +
          `t1 serving again ${recoveredMs.toFixed(0)} ms after removal`,
      );
    });
  }

  for (const scenario of ON_REDIS) {
    it(`Redis link, ${scenario.name}`, async () => {
      const { url } = proxy;
      const steady = await runLoad({ url, clients: CLIENTS, durationMs: STEADY_MS });
      for (const toxic of scenario.toxics) await redisLink.add(toxic);
      const during = await runLoad({ url, clients: CLIENTS, durationMs: FAULT_MS });
      await redisLink.clear();
      const removedAt = performance.now();
      // Recovered: Redis up and a write through this replica reaches Redis.
      let recoveredMs = NaN;
      while (performance.now() - removedAt < 15_000) {
        if (proxy.proxy.state.health().up) {
          recoveredMs = performance.now() - removedAt;
          break;
        }
        await sleep(20);
      }
      const after = await runLoad({ url, clients: 2, durationMs: 300 });

      assert.deepEqual(failures(steady), [], 'steady state');
      assert.deepEqual(failures(during), [], 'no client-visible error during the Redis fault');
      assert.deepEqual(failures(after), [], 'no client-visible error after it');
      assert.ok(Number.isFinite(recoveredMs), 'Redis reachable again');
      console.log(
        `      ${scenario.name}: errors 0/${during.length}; p99 steady ${p99(steady).toFixed(0)} ms, ` +
          `under fault ${p99(during).toFixed(0)} ms; Redis up again ${recoveredMs.toFixed(0)} ms after removal`,
      );
    });
  }

  it('detects a black-holed inference connection and moves its traffic within the attempt timeout', async () => {
    const { url } = proxy;
    const hole: Toxic[] = [
      { name: 'bh-up', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } },
      { name: 'bh-down', type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } },
    ];
    for (const toxic of hole) await links[0]!.add(toxic);
    const during = await runLoad({ url, clients: CLIENTS, durationMs: 1500 });
    await links[0]!.clear();
    const slowest = Math.max(...during.map((s) => s.latencyMs));
    assert.deepEqual(failures(during), []);
    // Attempt timeout 600 ms, then a retry on t1; 3 s leaves room for a loaded machine.
    assert.ok(slowest < 3000, `slowest ${slowest.toFixed(0)} ms with a 600 ms attempt timeout`);
    console.log(
      `      black-holed inference connection: ${during.length} requests, 0 errors, max ${slowest.toFixed(0)} ms (attempt timeout 600 ms)`,
    );
  });
});

describe('fault suite prerequisites', () => {
  it('has a toxiproxy binary when run by scripts/test-faults.sh', function () {
    if (process.env.FAULTS_REQUIRED !== '1') this.skip();
    assert.ok(toxiproxyAvailable(), NO_TOXIPROXY);
  });
});
