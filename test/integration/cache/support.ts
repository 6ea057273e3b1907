import type { FakeTriton, FakeTritonOptions } from '../../../src/fake-triton';
import {
  httpRequest,
  serversEnv,
  startFakes,
  startTestProxy,
  type HttpAnswer,
  type TestProxy,
} from '../../helpers/proxy-harness';

export interface CacheSetup {
  fake: FakeTriton;
  proxy: TestProxy;
  url: string;
  close(): Promise<void>;
}

/**
 * One fake Triton and the real proxy in front of it, caching `simple` (and
 * whatever `env` adds). Retries are off so every call the proxy makes is
 * one call the fake counts.
 */
export async function startCached(
  env: Record<string, string> = {},
  fakeOptions: FakeTritonOptions = {},
): Promise<CacheSetup> {
  const [fake] = await startFakes(1, fakeOptions);
  const proxy = await startTestProxy({
    TRITON_SERVERS: serversEnv([fake!]),
    RETRY_MAX_ATTEMPTS: '1',
    BREAKER_VOLUME_THRESHOLD: '100000',
    CACHE_MODELS: 'simple:10m,identity:10m',
    // Loads and unloads through the proxy invalidate the cache in these stories.
    ALLOW_UNAUTHENTICATED_ADMIN: 'true',
    ...env,
  });
  return {
    fake: fake!,
    proxy,
    url: proxy.url,
    close: async () => {
      await proxy.close();
      await fake!.stop({ graceMs: 200 });
    },
  };
}

export function inferUrl(url: string, model: string): string {
  return `${url}/v2/models/${model}/infer`;
}

export const A = Array.from({ length: 16 }, (_, i) => i);
export const B = Array.from({ length: 16 }, () => 1);

export function simpleBody(a: number[] = A, b: number[] = B, extra: Record<string, unknown> = {}) {
  return {
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: a },
      { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: b },
    ],
    ...extra,
  };
}

export function postInfer(
  url: string,
  model: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return httpRequest(inferUrl(url, model), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

export function int32Bytes(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

/** Value of one Prometheus series in a /metrics text, 0 when absent. */
export async function metricValue(url: string, series: string): Promise<number> {
  const text = (await httpRequest(`${url}/metrics`)).text;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}
