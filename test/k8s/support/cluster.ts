/**
 * Access to the local control plane scripts/test-k8s.sh starts: the API server over HTTPS with
 * the admin client certificate, and helm/kubectl as child processes. The script passes
 * everything through K8S_* environment variables; the suites refuse to run without them.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import * as path from 'node:path';
import { load as loadYaml } from 'js-yaml';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm', 'triton-proxy');

export interface ClusterEnv {
  helm: string;
  kubectl: string;
  runDir: string;
  pidFile: string;
  prometheusUrl: string;
  autoscaleNamespace: string;
}

export function clusterEnv(): ClusterEnv {
  const need = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run these suites through scripts/test-k8s.sh`);
    return value;
  };
  return {
    helm: need('K8S_HELM'),
    kubectl: need('K8S_KUBECTL'),
    runDir: need('K8S_RUN_DIR'),
    pidFile: need('K8S_PID_FILE'),
    prometheusUrl: need('K8S_PROMETHEUS_URL'),
    autoscaleNamespace: need('K8S_AUTOSCALE_NAMESPACE'),
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without blocking the event loop (the proxies share it). */
export function run(
  file: string,
  args: readonly string[],
  timeoutMs = 300_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: process.env },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr || (error && code !== 0 ? error.message : '') });
      },
    );
  });
}

/** Like run, but a non-zero exit throws with the command's output. */
export async function runOk(
  file: string,
  args: readonly string[],
  timeoutMs?: number,
): Promise<string> {
  const result = await run(file, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(
      `${path.basename(file)} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

interface KubeconfigFile {
  clusters: Array<{ cluster: { server: string; 'certificate-authority': string } }>;
  users: Array<{ user: { 'client-certificate': string; 'client-key': string } }>;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A minimal API-server client: GET, merge PATCH, POST, with the admin certificate. */
export class KubeApi {
  private readonly server: URL;
  private readonly agent: Agent;

  constructor(kubeconfigPath: string) {
    const config = loadYaml(readFileSync(kubeconfigPath, 'utf8')) as KubeconfigFile;
    const { cluster } = config.clusters[0];
    const { user } = config.users[0];
    this.server = new URL(cluster.server);
    this.agent = new Agent({
      keepAlive: true,
      ca: readFileSync(cluster['certificate-authority']),
      cert: readFileSync(user['client-certificate']),
      key: readFileSync(user['client-key']),
    });
  }

  close(): void {
    this.agent.destroy();
  }

  async get<T = KubeObject>(apiPath: string): Promise<T> {
    return (await this.call('GET', apiPath)) as T;
  }

  async list(apiPath: string): Promise<KubeObject[]> {
    return ((await this.call('GET', apiPath)) as { items: KubeObject[] }).items;
  }

  async mergePatch(apiPath: string, body: unknown): Promise<KubeObject> {
    return (await this.call('PATCH', apiPath, body, 'application/merge-patch+json')) as KubeObject;
  }

  async delete(apiPath: string): Promise<void> {
    await this.call('DELETE', apiPath);
  }

  async create(apiPath: string, body: unknown): Promise<KubeObject> {
    return (await this.call('POST', apiPath, body, 'application/json')) as KubeObject;
  }

  private call(
    method: string,
    apiPath: string,
    body?: unknown,
    contentType?: string,
  ): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.server.hostname,
          port: this.server.port,
          method,
          path: apiPath,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 0) >= 300) {
              reject(
                new KubeApiError(
                  `${method} ${apiPath}: ${res.statusCode} ${text}`,
                  res.statusCode ?? 0,
                ),
              );
              return;
            }
            resolve(text === '' ? {} : JSON.parse(text));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${apiPath}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  intervalMs = 500,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > end) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
