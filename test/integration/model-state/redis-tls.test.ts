import { strict as assert } from 'node:assert';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RedisModelStateStore, type RedisConnectionOptions } from '../../../src/model-state';
import { freePort, killRedisProcess, spawnRedisProcess } from '../../helpers/redis-server';
import { captureLogger, uniquePrefix, waitUntil } from '../../unit/model-state/support';

const run = promisify(execFile);

const timing = {
  connectTimeoutMs: 1_000,
  commandTimeoutMs: 500,
  keepAliveMs: 1_000,
  maxRetriesPerRequest: 1,
  reconnectBaseMs: 20,
  reconnectMaxMs: 100,
};

describe('Redis model-state store over TLS with a password', () => {
  let dir: string;
  let port: number;
  let ca: Buffer;
  let child: ChildProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'redis-tls-test-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    ca = await readFile(cert);
    port = await freePort();
    child = await spawnRedisProcess([
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      cert,
      '--tls-key-file',
      key,
      '--tls-ca-cert-file',
      cert,
      '--tls-auth-clients',
      'no',
      '--requirepass',
      'hunter2',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ]);
  });

  after(async () => {
    if (child !== undefined) await killRedisProcess(child);
    await rm(dir, { recursive: true, force: true });
  });

  async function open(
    connection: Partial<RedisConnectionOptions>,
    keyPrefix = uniquePrefix('tls'),
  ) {
    const logger = captureLogger();
    const store = new RedisModelStateStore({
      entryTtlMs: 5_000,
      resyncIntervalMs: 60_000,
      startTimeoutMs: 500,
      keyPrefix,
      logger,
      connection: {
        ...timing,
        url: `rediss://127.0.0.1:${port}`,
        tlsOptions: { ca },
        ...connection,
      },
    });
    await store.start();
    return { store, logger };
  }

  it('connects with rediss://, the CA and the password, and shares state', async () => {
    const prefix = uniquePrefix('tls');
    const { store } = await open({ password: 'hunter2', tls: true }, prefix);
    const peer = await open({ password: 'hunter2', tls: true }, prefix);
    try {
      assert.deepEqual(store.health(), { backend: 'redis', up: true });
      await store.markStatus('s1', 'm', '1', 'READY');
      await waitUntil(() => peer.store.snapshot().readyServers('m').length === 1, 1_000);
      assert.deepEqual(peer.store.snapshot().readyServers('m'), ['s1']);
    } finally {
      await Promise.all([store.close(), peer.store.close()]);
    }
  });

  it('stays down, without throwing, when the password is wrong', async () => {
    const { store, logger } = await open({ password: 'wrong', tls: true });
    try {
      assert.equal(store.health().up, false);
      await store.markStatus('s1', 'm', '1', 'READY');
      assert.deepEqual(store.snapshot().readyServers('m'), ['s1']);
      assert.ok(logger.at('warn').some((line) => line.startsWith('Redis not reachable at start')));
    } finally {
      await store.close();
    }
  });
});
