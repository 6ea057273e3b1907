import { randomBytes } from 'node:crypto';
import {
  simpleModel,
  startFakeTriton,
  type FakeTriton,
  type ModelDefinition,
} from '../../../src/fake-triton';
import type { ModelStateSnapshot } from '../../../src/model-state';
import {
  postJson,
  serversEnv,
  simpleRequest,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';

/**
 * Short intervals so a story plays out in a second or two: reconcile and
 * resync often, entries live a few seconds, Redis trouble is noticed fast.
 */
export const FAST_STATE: Record<string, string> = {
  RECONCILE_INTERVAL_MS: '300',
  RESYNC_INTERVAL_MS: '500',
  STATE_TTL_MS: '4000',
  TRITON_HEALTH_INTERVAL_MS: '150',
  // Room for event-loop lag: fakes, replicas and clients share one busy process.
  TRITON_CONTROL_TIMEOUT_MS: '1500',
  REDIS_CONNECT_TIMEOUT_MS: '1000',
  REDIS_COMMAND_TIMEOUT_MS: '500',
  RETRY_MAX_ATTEMPTS: '3',
  RETRY_BASE_DELAY_MS: '5',
};

/** A key prefix of its own per test, so leftovers of one test never leak into the next. */
export function uniquePrefix(): string {
  return `shared-state-${randomBytes(4).toString('hex')}:`;
}

/** Fakes whose repositories hold the given models each (fresh definitions per fake). */
export async function startFleet(
  repositories: ReadonlyArray<() => ModelDefinition[]>,
): Promise<FakeTriton[]> {
  return Promise.all(
    repositories.map((models, i) =>
      startFakeTriton({ host: '127.0.0.1', port: 0, name: `fake${i}`, models: models() }),
    ),
  );
}

/** A model with the `simple` signature under another name, loaded or not at start. */
export function model(name: string, loaded = true, loadDelayMs = 0): ModelDefinition {
  return simpleModel({ name, loaded, loadDelayMs });
}

/**
 * One proxy replica over the fleet; with `redisUrl` it shares state through
 * it under `prefix`. Resolves once every fake is ready and its repository has
 * been read, so "unknown model" already means unknown to the fleet.
 */
export async function startReplica(
  fakes: readonly FakeTriton[],
  options: { redisUrl?: string; prefix?: string; replicaId: string; env?: Record<string, string> },
): Promise<TestProxy> {
  const env: Record<string, string> = {
    TRITON_SERVERS: serversEnv(fakes),
    REPLICA_ID: options.replicaId,
    ...FAST_STATE,
    // Loads and unloads through the proxy are part of these stories.
    ALLOW_UNAUTHENTICATED_ADMIN: 'true',
    ...options.env,
  };
  if (options.redisUrl !== undefined) {
    env.REDIS_URL = options.redisUrl;
    env.REDIS_KEY_PREFIX = options.prefix ?? uniquePrefix();
  }
  const replica = await startTestProxy(env);
  await waitFor(
    () => replica.proxy.fleet.readyCount() === fakes.length,
    5000,
    `${options.replicaId}: every fake ready`,
  );
  await waitFor(
    () =>
      replica.proxy.fleet.servers.every(
        (s) => replica.proxy.state.snapshot().entriesForServer(s.name).length > 0,
      ),
    5000,
    `${options.replicaId}: every repository read`,
  );
  return replica;
}

const SIMPLE_BODY = simpleRequest(
  Array.from({ length: 16 }, (_, i) => i),
  Array.from({ length: 16 }, () => 1),
);

export interface InferAnswer {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** One `simple`-shaped inference request for `model` through a replica. */
export function infer(url: string, modelName: string): Promise<InferAnswer> {
  return postJson(`${url}/v2/models/${modelName}/infer`, SIMPLE_BODY);
}

/** The shared facts of a snapshot, without timestamps or writers: what routing decides on. */
export function statusView(snapshot: ModelStateSnapshot): string[] {
  return snapshot
    .entries()
    .map((e) => `${e.server}/${e.model}/${e.version}=${e.status}`)
    .sort();
}

export function modelCalls(
  fakes: readonly FakeTriton[],
  rpc: 'ModelInfer' | 'RepositoryModelLoad',
  modelName: string,
): number[] {
  return fakes.map((f) => f.callCount(rpc, modelName));
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** The value of an unlabelled sample on /metrics, e.g. `triton_proxy_redis_up`. */
export async function scrapeGauge(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface StreamResult {
  ok: number;
  /** "status body" of every request that did not answer 200. */
  failures: string[];
}

/**
 * Closed-loop clients spread over the replicas, each sending the next
 * request as soon as the previous one answered, until `until` resolves.
 */
export async function steadyStream(
  urls: readonly string[],
  modelName: string,
  clientsPerUrl: number,
  until: Promise<unknown>,
): Promise<StreamResult> {
  let stop = false;
  void until.finally(() => (stop = true));
  const result: StreamResult = { ok: 0, failures: [] };
  const client = async (url: string): Promise<void> => {
    while (!stop) {
      const answer = await infer(url, modelName).catch((error: unknown) => ({
        status: 0,
        json: { error: String(error) },
        headers: new Headers(),
      }));
      if (answer.status === 200) result.ok += 1;
      else result.failures.push(`${answer.status} ${JSON.stringify(answer.json)}`);
    }
  };
  await Promise.all(
    urls.flatMap((url) => Array.from({ length: clientsPerUrl }, () => client(url))),
  );
  return result;
}
