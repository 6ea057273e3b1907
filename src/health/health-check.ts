import { ConfigError, loadConfig, type Config, type TritonServerConfig } from '../config';
import { TritonClient, loadInferenceService } from '../triton';
import { systemResolver, DnsDiscovery, type Resolver } from '../fleet';
import { RedisModelStateStore, redisConnectionFromSettings } from '../model-state';
import { silentLogger } from '../observability';

export interface HealthRow {
  component: string;
  target: string;
  status: 'ok' | 'fail';
  detail: string;
}

async function checkServer(
  config: Config,
  server: TritonServerConfig,
  timeoutMs: number,
): Promise<HealthRow> {
  const t = config.triton;
  const client = new TritonClient(
    server.name,
    server.address,
    loadInferenceService(),
    {
      maxMessageBytes: t.maxMessageBytes,
      keepaliveTimeMs: t.keepaliveTimeMs,
      keepaliveTimeoutMs: t.keepaliveTimeoutMs,
      flowControlWindowBytes: t.flowControlWindowBytes,
      connectTimeoutMs: t.connectTimeoutMs,
      channelsPerServer: 1,
      inferTransport: t.inferTransport,
    },
    server.tls,
  );
  const deadline = Date.now() + timeoutMs;
  const row = { component: 'triton', target: `${server.name} (${server.address})` };
  try {
    await client.waitForReady(deadline);
    const ready = await client.call<{ ready: boolean }>('ServerReady', {}, { deadline });
    if (!ready.ready) return { ...row, status: 'fail', detail: 'reachable, ServerReady=false' };
    const index = await client
      .call<{ models: Array<{ state: string }> }>(
        'RepositoryIndex',
        { repository_name: '', ready: true },
        { deadline },
      )
      .then((r) => `${r.models.length} model(s) ready`)
      .catch(() => 'ready (repository index not available)');
    return { ...row, status: 'ok', detail: index };
  } catch (err) {
    return {
      ...row,
      status: 'fail',
      detail: (err as Error).message.split('\n')[0] ?? 'unreachable',
    };
  } finally {
    client.close();
  }
}

async function checkRedis(config: Config, timeoutMs: number): Promise<HealthRow> {
  const s = config.state;
  const target = s.redisSentinels || s.redisUrl.replace(/\/\/[^@]*@/, '//***@');
  const store = new RedisModelStateStore({
    entryTtlMs: s.entryTtlMs,
    logger: silentLogger,
    connection: {
      ...redisConnectionFromSettings(config.state),
      connectTimeoutMs: Math.min(s.connectTimeoutMs, timeoutMs),
    },
    keyPrefix: s.keyPrefix,
    resyncIntervalMs: s.resyncIntervalMs,
  });
  try {
    await Promise.race([store.start(), new Promise((r) => setTimeout(r, timeoutMs))]);
    const up = store.health().up;
    return {
      component: 'state',
      target: `redis ${target}`,
      status: up ? 'ok' : 'fail',
      detail: up ? 'reachable' : 'unreachable',
    };
  } finally {
    await store.close();
  }
}

/** Checks configuration, every Triton server and the state store; one row each. */
export async function runHealthCheck(
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; resolver?: Resolver } = {},
): Promise<HealthRow[]> {
  const timeoutMs = options.timeoutMs ?? 3000;
  let config: Config;
  try {
    config = loadConfig({ env: options.env });
  } catch (err) {
    if (err instanceof ConfigError)
      return [{ component: 'config', target: 'environment', status: 'fail', detail: err.message }];
    throw err;
  }
  const rows: HealthRow[] = [
    { component: 'config', target: 'environment', status: 'ok', detail: 'valid' },
  ];
  const servers = [...config.triton.servers];
  if (config.triton.discoveryDns !== '') {
    const target = config.triton.discoveryDns;
    const host = target.slice(0, target.lastIndexOf(':'));
    const port = target.slice(target.lastIndexOf(':') + 1);
    try {
      const ips = await (options.resolver ?? systemResolver)(host);
      rows.push({
        component: 'discovery',
        target,
        status: ips.length > 0 ? 'ok' : 'fail',
        detail: `${ips.length} address(es)`,
      });
      for (const ip of ips) {
        servers.push({
          name: DnsDiscovery.serverName(ip),
          address: `${ip}:${port}`,
          group: 'default',
          labels: {},
          weight: 1,
          tls: undefined,
        });
      }
    } catch (err) {
      rows.push({ component: 'discovery', target, status: 'fail', detail: (err as Error).message });
    }
  }
  rows.push(...(await Promise.all(servers.map((s) => checkServer(config, s, timeoutMs)))));
  if (config.state.redisUrl !== '' || config.state.redisSentinels !== '')
    rows.push(await checkRedis(config, timeoutMs));
  else
    rows.push({
      component: 'state',
      target: 'memory',
      status: 'ok',
      detail: 'in-memory (single replica)',
    });
  return rows;
}

export function formatHealthTable(rows: readonly HealthRow[]): string {
  const head = ['COMPONENT', 'TARGET', 'STATUS', 'DETAIL'];
  const cells = rows.map((r) => [r.component, r.target, r.status.toUpperCase(), r.detail]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(head), ...cells.map(line)].join('\n');
}
