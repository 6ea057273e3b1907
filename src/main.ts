// First: refuse a Node too old to run the proxy, with a clear message.
import './require-node';
// Then V8 flags, set before the other modules allocate.
import './v8-flags';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './observability';
import { startProxy, type Proxy } from './proxy';
import { trimHeap, trimHeapWhenIdle } from './heap-trim';

/**
 * How often the idle heap trim looks at the event loop: a burst's young
 * generation is given back 5-10 s after the burst (one quiet interval after a
 * busy one), at the cost of one full GC of a few ms per burst.
 */
const TRIM_CHECK_INTERVAL_MS = 5000;

/**
 * Process entry: configuration from the environment (and CONFIG_FILE), the
 * proxy, and the signal handling Kubernetes relies on. Nothing imports this file.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`triton-proxy: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled promise rejection', { error: String(reason) });
  });
  // Handlers go in before the proxy starts: a SIGTERM during start-up (a
  // rollout that changes its mind) must still end in a clean exit.
  const running: { proxy?: Proxy } = {};
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    const proxy = running.proxy;
    if (!proxy) {
      logger.info('signal received during start-up: exiting', { signal });
      process.exit(0);
    }
    logger.info('signal received: starting graceful shutdown', { signal });
    const { shutdownDelayMs, shutdownGraceMs } = config.lifecycle;
    setTimeout(
      () => {
        logger.error('shutdown did not finish in time: forcing exit');
        process.exit(1);
      },
      shutdownDelayMs + shutdownGraceMs + 5000,
    ).unref();
    proxy.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const proxy = await startProxy(config, { logger });
  running.proxy = proxy;
  // Start-up garbage and the young generation it grew go before traffic
  // arrives; later bursts' garbage goes when they are over.
  trimHeap();
  trimHeapWhenIdle(TRIM_CHECK_INTERVAL_MS);
  if (config.demo.backend) {
    const port = proxy.port();
    process.stdout.write(
      `\nDemo backend ready. Try an inference (model "simple": OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1):\n\n` +
        `curl -s localhost:${port}/v2/models/simple/infer -H 'content-type: application/json' -d '{"inputs":[` +
        `{"name":"INPUT0","datatype":"INT32","shape":[1,16],"data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]},` +
        `{"name":"INPUT1","datatype":"INT32","shape":[1,16],"data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}'\n\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `triton-proxy: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
