import { strict as assert } from 'node:assert';
import {
  buildRedisOptions,
  reconnectDelay,
  type RedisConnectionOptions,
} from '../../../src/model-state';

const timing: RedisConnectionOptions = {
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 500,
  keepAliveMs: 10_000,
  maxRetriesPerRequest: 1,
  reconnectBaseMs: 100,
  reconnectMaxMs: 5_000,
};

describe('Redis connection settings', () => {
  it('takes host, port, credentials and database from the URL', () => {
    const options = buildRedisOptions(
      { ...timing, url: 'redis://proxy:s%40cret@redis.internal:6380/2' },
      'replica-1:state',
    );
    assert.equal(options.host, 'redis.internal');
    assert.equal(options.port, 6380);
    assert.equal(options.username, 'proxy');
    assert.equal(options.password, 's@cret');
    assert.equal(options.db, 2);
    assert.equal(options.tls, undefined);
    assert.equal(options.connectionName, 'replica-1:state');
  });

  it('turns TLS on for rediss:// and for tls: true, merging extra TLS settings', () => {
    assert.deepEqual(buildRedisOptions({ ...timing, url: 'rediss://r:6379' }, 'x').tls, {});
    const options = buildRedisOptions(
      { ...timing, url: 'redis://r:6379', tls: true, tlsOptions: { servername: 'redis.example' } },
      'x',
    );
    assert.deepEqual(options.tls, { servername: 'redis.example' });
  });

  it('lets explicit password, username and db override the URL', () => {
    const options = buildRedisOptions(
      { ...timing, url: 'redis://u:p@r:6379/1', username: 'other', password: 'from-secret', db: 4 },
      'x',
    );
    assert.equal(options.username, 'other');
    assert.equal(options.password, 'from-secret');
    assert.equal(options.db, 4);
  });

  it('connects through sentinels to the named master, with TLS to both when asked', () => {
    const options = buildRedisOptions(
      {
        ...timing,
        sentinels: [
          { host: 'sentinel-0', port: 26379 },
          { host: 'sentinel-1', port: 26379 },
        ],
        sentinelName: 'mymaster',
        sentinelPassword: 'sp',
        password: 'mp',
        tls: true,
      },
      'x',
    );
    assert.deepEqual(options.sentinels, [
      { host: 'sentinel-0', port: 26379 },
      { host: 'sentinel-1', port: 26379 },
    ]);
    assert.equal(options.name, 'mymaster');
    assert.equal(options.sentinelPassword, 'sp');
    assert.equal(options.password, 'mp');
    assert.equal(options.enableTLSForSentinelMode, true);
    assert.deepEqual(options.sentinelTLS, {});
  });

  it('sets explicit timeouts, keepalive, retries and a fail-fast offline queue', () => {
    const options = buildRedisOptions({ ...timing, url: 'redis://r' }, 'x');
    assert.equal(options.port, 6379);
    assert.equal(options.connectTimeout, 2_000);
    assert.equal(options.commandTimeout, 500);
    assert.equal(options.keepAlive, 10_000);
    assert.equal(options.maxRetriesPerRequest, 1);
    assert.equal(options.enableOfflineQueue, false);
    assert.equal(options.lazyConnect, true);
    const delay = options.retryStrategy?.(3);
    assert.ok(typeof delay === 'number' && delay >= 200 && delay <= 400);
  });

  it('rejects a configuration that names no Redis, a foreign URL scheme or sentinels without a master name', () => {
    assert.throws(() => buildRedisOptions(timing, 'x'), /url or sentinels/);
    assert.throws(() => buildRedisOptions({ ...timing, url: 'http://r:6379' }, 'x'), /redis:\/\//);
    assert.throws(
      () => buildRedisOptions({ ...timing, sentinels: [{ host: 's', port: 26379 }] }, 'x'),
      /sentinelName/,
    );
  });

  it('backs off exponentially between half and all of each step, capped at the maximum', () => {
    assert.equal(
      reconnectDelay(1, 100, 5_000, () => 0),
      50,
    );
    assert.equal(
      reconnectDelay(1, 100, 5_000, () => 1),
      100,
    );
    assert.equal(
      reconnectDelay(4, 100, 5_000, () => 1),
      800,
    );
    assert.equal(
      reconnectDelay(30, 100, 5_000, () => 1),
      5_000,
    );
    assert.equal(
      reconnectDelay(30, 100, 5_000, () => 0),
      2_500,
    );
  });
});
