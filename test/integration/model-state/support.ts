import {
  RedisModelStateStore,
  type ModelStateMetrics,
  type RedisStoreOptions,
} from '../../../src/model-state';
import { captureLogger } from '../../unit/model-state/support';

export interface RedisStoreFixture {
  store: RedisModelStateStore;
  logger: ReturnType<typeof captureLogger>;
  upEvents: boolean[];
}

/** A Redis store tuned for fast tests: short timeouts, quick reconnects. */
export async function startRedisStore(
  url: string,
  keyPrefix: string,
  overrides: Partial<RedisStoreOptions> = {},
): Promise<RedisStoreFixture> {
  const logger = captureLogger();
  const upEvents: boolean[] = [];
  const metrics: ModelStateMetrics = { onRedisUp: (up) => upEvents.push(up) };
  const store = new RedisModelStateStore({
    entryTtlMs: 5_000,
    resyncIntervalMs: 1_000,
    keyPrefix,
    logger,
    metrics,
    connection: {
      url,
      connectTimeoutMs: 1_000,
      commandTimeoutMs: 500,
      keepAliveMs: 1_000,
      maxRetriesPerRequest: 1,
      reconnectBaseMs: 20,
      reconnectMaxMs: 100,
    },
    ...overrides,
  });
  await store.start();
  return { store, logger, upEvents };
}
