/**
 * Stands in for the kubelet of a kwok node, for one Deployment: for every Running pod it starts
 * one real proxy process (dist/src/main.js) on 127.0.0.1, configured from the pod's own
 * ConfigMap (what the chart renders), and annotates the pod with the proxy's address so
 * Prometheus scrapes it as that pod. When the pod goes away, its proxy is stopped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { type KubeApi, type KubeObject, REPO_ROOT, sleep } from './cluster';

export const ADDRESS_ANNOTATION = 'triton-proxy.test/local-address';

export interface PodProxy {
  pod: string;
  url: string;
  child: ChildProcess;
  ready: boolean;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`proxy at ${url} not ready after ${timeoutMs} ms`);
}

export interface PodProxiesOptions {
  kube: KubeApi;
  namespace: string;
  /** Label selector of the Deployment's pods. */
  selector: string;
  /** TRITON_SERVERS for every proxy (the fake Triton). */
  tritonServers: string;
  /** Where proxy logs go, and the PID file scripts/test-k8s.sh cleans up from. */
  runDir: string;
  pidFile: string;
}

export class PodProxies {
  readonly proxies = new Map<string, PodProxy>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private envFromConfigMap: Record<string, string> | undefined;
  /** The first error of the sync loop; the test checks it. */
  error: Error | undefined;

  constructor(private readonly options: PodProxiesOptions) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.sync();
        } catch (error) {
          this.error ??= error as Error;
        }
        await sleep(500);
      }
    })();
  }

  /** URLs of the proxies whose pods are live and whose process is ready. */
  readyUrls(): string[] {
    return [...this.proxies.values()].filter((p) => p.ready).map((p) => p.url);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.proxies.keys()].map((pod) => this.stopProxy(pod)));
  }

  private async sync(): Promise<void> {
    const { kube, namespace, selector } = this.options;
    const pods = await kube.list(`/api/v1/namespaces/${namespace}/pods?labelSelector=${selector}`);
    const live = new Map<string, KubeObject>();
    for (const pod of pods) {
      if (!pod.metadata.deletionTimestamp && pod.status?.phase === 'Running')
        live.set(pod.metadata.name, pod);
    }
    for (const pod of this.proxies.keys()) {
      if (!live.has(pod)) await this.stopProxy(pod);
    }
    const starts = [...live.values()]
      .filter((pod) => !this.proxies.has(pod.metadata.name))
      .map((pod) => this.startProxy(pod));
    await Promise.all(starts);
  }

  /** The proxy's environment exactly as the chart renders it for the container (its ConfigMap). */
  private async chartEnv(pod: KubeObject): Promise<Record<string, string>> {
    if (this.envFromConfigMap) return this.envFromConfigMap;
    const containers = (pod.spec?.containers ?? []) as Array<{
      name: string;
      envFrom?: Array<{ configMapRef?: { name: string } }>;
    }>;
    const proxy = containers.find((c) => c.name === 'proxy');
    const name = proxy?.envFrom?.find((e) => e.configMapRef)?.configMapRef?.name;
    if (!name) throw new Error(`pod ${pod.metadata.name} has no envFrom ConfigMap`);
    const configMap = await this.options.kube.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${this.options.namespace}/configmaps/${name}`,
    );
    this.envFromConfigMap = configMap.data;
    return configMap.data;
  }

  private async startProxy(pod: KubeObject): Promise<void> {
    const name = pod.metadata.name;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const logFile = path.join(this.options.runDir, `proxy-${name}.log`);
    const logFd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist', 'src', 'main.js')], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        ...(await this.chartEnv(pod)),
        // Where this process listens and which Triton it reaches replace the cluster's
        // Service names; the rest (limits, logging, ...) is the chart's ConfigMap.
        HOST: '127.0.0.1',
        PORT: String(port),
        TRITON_SERVERS: this.options.tritonServers,
        TRITON_DISCOVERY_DNS: '',
        // Every pod would take the chart's gRPC front-end port on the one shared host.
        GRPC_PORT: '0',
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_GRACE_MS: '2000',
      },
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    appendFileSync(this.options.pidFile, `${child.pid}\n`);
    const proxy: PodProxy = { pod: name, url, child, ready: false };
    this.proxies.set(name, proxy);
    await waitReady(url, child, 30_000);
    await this.options.kube.mergePatch(
      `/api/v1/namespaces/${this.options.namespace}/pods/${name}`,
      {
        metadata: { annotations: { [ADDRESS_ANNOTATION]: `127.0.0.1:${port}` } },
      },
    );
    proxy.ready = true;
  }

  private async stopProxy(pod: string): Promise<void> {
    const proxy = this.proxies.get(pod);
    if (!proxy) return;
    proxy.ready = false;
    this.proxies.delete(pod);
    const { child } = proxy;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
