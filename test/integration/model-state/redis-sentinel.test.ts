import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { RedisModelStateStore, redisKeys } from '../../../src/model-state';
import {
  freePort,
  killRedisProcess,
  spawnRedisProcess,
  startRedisServer,
  type RedisServerHandle,
} from '../../helpers/redis-server';
import { captureLogger, uniquePrefix } from '../../unit/model-state/support';

/** A real Sentinel (redis-server --sentinel) watching the test's Redis as master "primary". */
async function startSentinel(masterPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-sentinel-test-'));
  const port = await freePort();
  const config = join(dir, 'sentinel.conf');
  await writeFile(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor primary 127.0.0.1 ${masterPort} 1`,
      'sentinel down-after-milliseconds primary 5000',
      '',
    ].join('\n'),
  );
  const child = await spawnRedisProcess([config, '--sentinel'], '+monitor master primary');
  return {
    port,
    stop: async () => {
      await killRedisProcess(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('Redis model-state store through Sentinel', () => {
  let redis: RedisServerHandle;
  let sentinel: { port: number; stop(): Promise<void> } | undefined;

  before(async function () {
    redis = await startRedisServer();
    if (!redis.canRestart) {
      // An external REDIS_URL may not be reachable by a Sentinel we start here.
      this.skip();
    }
    sentinel = await startSentinel(redis.port);
  });

  after(async () => {
    await sentinel?.stop();
    if (redis?.canRestart) await redis.stop();
  });

  it('finds the master through Sentinel and shares state through it', async () => {
    const prefix = uniquePrefix('sentinel');
    const store = new RedisModelStateStore({
      entryTtlMs: 5_000,
      resyncIntervalMs: 60_000,
      keyPrefix: prefix,
      logger: captureLogger(),
      connection: {
        sentinels: [{ host: '127.0.0.1', port: sentinel!.port }],
        sentinelName: 'primary',
        connectTimeoutMs: 2_000,
        commandTimeoutMs: 1_000,
        keepAliveMs: 1_000,
        maxRetriesPerRequest: 1,
        reconnectBaseMs: 20,
        reconnectMaxMs: 200,
      },
    });
    const raw = new Redis(redis.url);
    try {
      await store.start();
      assert.deepEqual(store.health(), { backend: 'redis', up: true });
      await store.markStatus('s1', 'resnet', '1', 'READY', 'via sentinel');
      const stored = await raw.hget(
        redisKeys(prefix).server('s1'),
        JSON.stringify(['resnet', '1']),
      );
      assert.equal(JSON.parse(stored ?? '{}').reason, 'via sentinel');
    } finally {
      raw.disconnect();
      await store.close();
    }
  });
});
