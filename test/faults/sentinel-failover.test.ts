import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { FakeTriton } from '../../src/fake-triton';
import {
  serversEnv,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../helpers/proxy-harness';
import { freePort, killRedisProcess, spawnRedisProcess } from '../helpers/redis-server';
import { percentile, runLoad, type Sample } from '../integration/fleet/support';

const MASTER_NAME = 'faults';
const SENTINEL_BIN = process.env.REDIS_SENTINEL_BIN ?? 'redis-sentinel';

/** redis-sentinel (the Debian package's binary) with its own writable config; killed on exit. */
async function startSentinel(dir: string, masterPort: number): Promise<ChildProcess> {
  const port = await freePort();
  const config = join(dir, `sentinel-${port}.conf`);
  await writeFile(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn(SENTINEL_BIN, [config], { stdio: ['ignore', 'pipe', 'pipe'] });
  process.on('exit', () => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`redis-sentinel did not start: ${output}`)),
      10_000,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('+monitor master')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-sentinel exited with ${code}: ${output}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  (child as ChildProcess & { port?: number }).port = port;
  return child;
}

function sentinelPort(child: ChildProcess): number {
  return (child as ChildProcess & { port?: number }).port!;
}

function redisArgs(port: number, dir: string, extra: string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    ...extra,
  ];
}

describe('Redis Sentinel failover with real redis-server and redis-sentinel processes', function () {
  this.timeout(90_000);
  let dir: string;
  let master: ChildProcess | undefined;
  let replica: ChildProcess | undefined;
  const sentinels: ChildProcess[] = [];
  let fakes: FakeTriton[] = [];
  const replicas: TestProxy[] = [];

  before(async function () {
    if (process.env.TOXIPROXY_BIN === undefined) this.skip();
    dir = await mkdtemp(join(tmpdir(), 'sentinel-failover-'));
    const masterPort = await freePort();
    const replicaPort = await freePort();
    master = await spawnRedisProcess(redisArgs(masterPort, await mkdtemp(join(dir, 'm-'))));
    replica = await spawnRedisProcess(
      redisArgs(replicaPort, await mkdtemp(join(dir, 'r-')), [
        '--replicaof',
        '127.0.0.1',
        String(masterPort),
      ]),
    );
    const probe = new Redis(replicaPort, '127.0.0.1', { lazyConnect: true });
    await probe.connect();
    await waitFor(
      async () => /master_link_status:up/.test(await probe.info('replication')),
      10_000,
      'replica in sync',
    );
    probe.disconnect();
    for (let i = 0; i < 3; i++) sentinels.push(await startSentinel(dir, masterPort));
    fakes = await startFakes(2);
  });

  after(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.close()));
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    for (const c of [...sentinels, master, replica]) if (c) await killRedisProcess(c);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps serving through a master failover and both replicas share state again through the new master', async () => {
    const env = {
      TRITON_SERVERS: serversEnv(fakes),
      REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${sentinelPort(s)}`).join(','),
      REDIS_SENTINEL_NAME: MASTER_NAME,
      REDIS_KEY_PREFIX: `sentinel-failover-${Date.now()}:`,
      REDIS_CONNECT_TIMEOUT_MS: '500',
      REDIS_COMMAND_TIMEOUT_MS: '300',
      RESYNC_INTERVAL_MS: '1000',
      RECONCILE_INTERVAL_MS: '500',
      TRITON_HEALTH_INTERVAL_MS: '200',
    };
    const a = await startTestProxy({ ...env, REPLICA_ID: 'a' });
    const b = await startTestProxy({ ...env, REPLICA_ID: 'b' });
    replicas.push(a, b);
    for (const r of [a, b]) {
      await waitFor(() => r.proxy.state.health().up, 10_000, 'Redis up through Sentinel');
      await waitFor(() => r.proxy.fleet.readyCount() === 2, 5000, 'servers ready');
    }

    const steady = await runLoad({ url: a.url, clients: 4, durationMs: 1000 });
    await killRedisProcess(master!);
    master = undefined;
    const killedAt = performance.now();
    // Traffic through both replicas until both are back on the new master (bounded).
    const during: Sample[] = [];
    let backMs = NaN;
    while (performance.now() - killedAt < 30_000) {
      const [x, y] = await Promise.all([
        runLoad({ url: a.url, clients: 2, durationMs: 250 }),
        runLoad({ url: b.url, clients: 2, durationMs: 250 }),
      ]);
      during.push(...x, ...y);
      const downSeen = performance.now() - killedAt > 1500;
      if (downSeen && a.proxy.state.health().up && b.proxy.state.health().up) {
        backMs = performance.now() - killedAt;
        break;
      }
    }
    assert.ok(Number.isFinite(backMs), 'both replicas reconnected to the promoted master');

    // A change on A reaches B through the new master's pub/sub.
    await a.proxy.state.markStatus('t0', 'after-failover', '', 'READY', 'written after failover');
    await waitFor(
      () => b.proxy.state.snapshot().status('t0', 'after-failover') === 'READY',
      5000,
      'B sees a change A wrote after the failover',
    );
    const failed = during.filter((s) => s.status !== 200).map((s) => `${s.status} ${s.body}`);
    assert.deepEqual(failed, [], 'no client-visible error through the failover');
    console.log(
      `      sentinel failover: errors 0/${during.length}; p99 steady ${percentile(
        steady.map((s) => s.latencyMs),
        99,
      ).toFixed(0)} ms, during ${percentile(
        during.map((s) => s.latencyMs),
        99,
      ).toFixed(0)} ms; both replicas on the new master ${backMs.toFixed(0)} ms after the kill`,
    );
  });
});
