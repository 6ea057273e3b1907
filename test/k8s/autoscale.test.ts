import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import * as path from 'node:path';
import { type FakeTriton, startFakeTriton } from '../../src/fake-triton';
import {
  CHART_DIR,
  KubeApi,
  REPO_ROOT,
  clusterEnv,
  eventually,
  runOk,
  sleep,
} from './support/cluster';
import { ChartRulesInPrometheus, type ActiveAlert } from './support/chart-rules';
import { PodProxies } from './support/pod-proxies';

const RELEASE = 'tp';
const VALUES_FILE = path.join(__dirname, 'autoscale-values.yaml');
const METRIC = 'triton_proxy_queue_depth';
/** Each inference takes this long in the fake Triton, so 4 slots per replica serve 20 req/s. */
const INFER_LATENCY_MS = 200;
/** Closed-loop clients: 30 over 2 replicas is 15 each, 11 of them queued (target 5). */
const CLIENTS = 30;
const SAMPLE_EVERY_MS = 2_000;
// Bounds are generous for a loaded 2-core machine: the pipeline is a 2 s scrape, the adapter,
// a 5 s HPA sync, scheduling and a proxy process start per new pod.
const SCALE_UP_WITHIN_MS = 120_000;
/** Load continues this long after the scale-up, shorter than the 45 s scale-down window. */
const LOAD_AFTER_SCALE_UP_MS = 25_000;
const SCALE_DOWN_WITHIN_MS = 180_000;

const INFER_BODY = JSON.stringify({
  inputs: [
    {
      name: 'INPUT0',
      datatype: 'INT32',
      shape: [1, 16],
      data: Array.from({ length: 16 }, (_, i) => i),
    },
    { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: Array(16).fill(1) },
  ],
});

interface Tally {
  ok: number;
  failed: number;
  statuses: Map<number, number>;
}

/** Closed-loop clients spreading requests round-robin over the ready proxies, like a Service. */
class ClosedLoopLoad {
  readonly tally: Tally = { ok: 0, failed: 0, statuses: new Map() };
  private running = false;
  private next = 0;
  private readonly loops: Promise<void>[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });

  constructor(private readonly targets: () => string[]) {}

  start(clients: number): void {
    this.running = true;
    for (let i = 0; i < clients; i++) this.loops.push(this.client());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
  }

  private async client(): Promise<void> {
    while (this.running) {
      const targets = this.targets();
      if (targets.length === 0) {
        await sleep(100);
        continue;
      }
      const url = targets[this.next++ % targets.length];
      const status = await this.infer(url);
      if (status === 200) this.tally.ok++;
      else {
        this.tally.failed++;
        this.tally.statuses.set(status, (this.tally.statuses.get(status) ?? 0) + 1);
        await sleep(100);
      }
    }
  }

  private infer(url: string): Promise<number> {
    return new Promise((resolve) => {
      const req = request(
        `${url}/v2/models/simple/infer`,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(INFER_BODY),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      // A proxy stopped with its pod: count it and carry on with the others.
      req.on('error', () => resolve(0));
      req.end(INFER_BODY);
    });
  }
}

interface Sample {
  seconds: number;
  phase: 'idle' | 'load' | 'after load';
  clients: number;
  metric: string;
  desired: number;
  replicas: number;
  scraped: number;
}

describe('HPA on triton_proxy_queue_depth scraped from real proxies', function () {
  const env = clusterEnv();
  const namespace = env.autoscaleNamespace;
  const kube = new KubeApi(process.env.KUBECONFIG!);
  let fake: FakeTriton | undefined;
  let proxies: PodProxies | undefined;
  let load: ClosedLoopLoad | undefined;

  after(async function () {
    await load?.stop();
    await proxies?.stop();
    await fake?.stop();
    kube.close();
  });

  it('scales the Deployment from 2 up under queueing load and back to 2 after it', async function () {
    fake = await startFakeTriton({
      host: '127.0.0.1',
      port: 0,
      latencyMs: (rpc) => (rpc === 'ModelInfer' ? INFER_LATENCY_MS : 0),
    });
    await runOk(
      env.helm,
      [
        'install',
        RELEASE,
        CHART_DIR,
        '-n',
        namespace,
        '--create-namespace',
        '-f',
        VALUES_FILE,
        '--wait',
        '--timeout',
        '180s',
      ],
      240_000,
    );
    const deploymentName = `${RELEASE}-triton-proxy`;
    const hpaPath = `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers/${deploymentName}`;
    const deploymentPath = `/apis/apps/v1/namespaces/${namespace}/deployments/${deploymentName}`;

    // The chart's alert rules (autoscale-values.yaml turns them on) evaluated by the suite's
    // Prometheus on the proxies' real series.
    const chartRules = new ChartRulesInPrometheus(
      env.prometheusUrl,
      path.join(env.runDir, 'prometheus', 'rules'),
    );
    const handedOver = await chartRules.load(kube, namespace, deploymentName);
    await eventually('Prometheus to load the chart rules', 30_000, async () =>
      (await chartRules.rules()).length === handedOver ? true : undefined,
    );

    proxies = new PodProxies({
      kube,
      namespace,
      selector: `app.kubernetes.io/instance=${RELEASE}`,
      tritonServers: `triton=${fake.address}`,
      runDir: env.runDir,
      pidFile: env.pidFile,
    });
    proxies.start();
    const p = proxies;

    // Idle: two proxies, scraped, and the metric served per pod through custom.metrics.k8s.io.
    await eventually('2 pods with ready proxies', 90_000, async () =>
      p.readyUrls().length === 2 ? true : undefined,
    );
    const metricPath = `/apis/custom.metrics.k8s.io/v1beta1/namespaces/${namespace}/pods/*/${METRIC}`;
    await eventually(`${METRIC} served for both pods`, 90_000, async () => {
      const list = await kube.get<{ items: Array<{ describedObject: { name: string } }> }>(
        metricPath,
      );
      const pods = new Set(list.items.map((i) => i.describedObject.name));
      return [...p.proxies.keys()].every((pod) => pods.has(pod)) && pods.size >= 2
        ? true
        : undefined;
    });

    const samples: Sample[] = [];
    const t0 = Date.now();
    let phase: Sample['phase'] = 'idle';
    let clients = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const hpa = await kube.get(hpaPath);
          const deployment = await kube.get(deploymentPath);
          const status = hpa.status as {
            desiredReplicas?: number;
            currentMetrics?: Array<{ pods?: { current: { averageValue: string } } }>;
          };
          samples.push({
            seconds: Math.round((Date.now() - t0) / 1000),
            phase,
            clients,
            metric: status.currentMetrics?.[0]?.pods?.current.averageValue ?? '-',
            desired: status.desiredReplicas ?? 0,
            replicas: Number(deployment.spec?.replicas ?? 0),
            scraped: p.readyUrls().length,
          });
        } catch {
          // one missed sample on a busy machine is fine
        }
        await sleep(SAMPLE_EVERY_MS);
      }
    })();
    const replicas = async (): Promise<number> =>
      Number((await kube.get(deploymentPath)).spec?.replicas ?? 0);

    try {
      await sleep(6_000);
      assert.equal(await replicas(), 2, 'idle at minReplicas');

      phase = 'load';
      clients = CLIENTS;
      load = new ClosedLoopLoad(() => p.readyUrls());
      load.start(CLIENTS);
      const scaledUpAt = Date.now();
      const peakSoFar = await eventually('the HPA to scale up', SCALE_UP_WITHIN_MS, async () => {
        const n = await replicas();
        return n > 2 ? n : undefined;
      });
      const upSeconds = Math.round((Date.now() - scaledUpAt) / 1000);
      // Keep the load while the new pods get proxies and take their share.
      await sleep(LOAD_AFTER_SCALE_UP_MS);
      // Inference answers take 200 ms upstream, over the 0.1 s budget of autoscale-values.yaml.
      const budgetAlerts = (alerts: ActiveAlert[]) =>
        alerts.filter((a) => a.labels.alertname === 'TritonProxyStageLatencyBudgetBurn');
      const active = await eventually(
        'the upstream latency-budget alert on the real series',
        60_000,
        async () => {
          const alerts = await chartRules.activeAlerts();
          return budgetAlerts(alerts).some((a) => a.labels.stage === 'upstream')
            ? alerts
            : undefined;
        },
        2_000,
      );
      phase = 'after load';
      clients = 0;
      await load.stop();
      const stoppedAt = Date.now();
      await eventually('the HPA to scale back to 2', SCALE_DOWN_WITHIN_MS, async () =>
        (await replicas()) === 2 ? true : undefined,
      );
      const downSeconds = Math.round((Date.now() - stoppedAt) / 1000);
      await eventually('the extra pods and their proxies to go', 60_000, async () =>
        p.proxies.size === 2 ? true : undefined,
      );
      await sleep(SAMPLE_EVERY_MS);

      const stagesOver = budgetAlerts(active).map((a) => `${a.labels.stage} (${a.state})`);
      console.log(
        `      chart alerts active under load: ${active.map((a) => a.labels.alertname).join(', ')}; stages over budget: ${stagesOver.join(', ')}`,
      );
      // Small requests parse and encode far inside their budgets.
      assert.ok(
        !budgetAlerts(active).some(
          (a) => a.labels.stage === 'parse' || a.labels.stage === 'encode',
        ),
        stagesOver.join(', '),
      );
      // Every rule evaluated on the real series without an error, and the budgets are series.
      const unhealthy = (await chartRules.rules()).filter((r) => r.health !== 'ok');
      assert.deepEqual(
        unhealthy.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`),
        [],
      );
      const budgets = await chartRules.query('triton_proxy:stage_latency_budget_seconds');
      assert.deepEqual(budgets.map((b) => b.metric.stage).sort(), [
        'encode',
        'parse',
        'queue',
        'upstream',
      ]);

      const peak = Math.max(peakSoFar, ...samples.map((s) => s.replicas));
      assert.ok(peak > 2 && peak <= 6, `peak replicas ${peak} within (2, maxReplicas 6]`);
      assert.equal(p.error, undefined, `pod proxies: ${p.error?.message}`);
      assert.ok(load.tally.ok > 0, 'load was served');
      const report = timelineMarkdown(samples, {
        upSeconds,
        downSeconds,
        peak,
        tally: load.tally,
      });
      console.log(report);
      writeFileSync(path.join(env.runDir, 'autoscale-timeline.md'), report);
      mkdirSync(path.join(REPO_ROOT, '.cache', 'k8s'), { recursive: true });
      writeFileSync(path.join(REPO_ROOT, '.cache', 'k8s', 'autoscale-timeline.md'), report);
    } finally {
      sampling = false;
      await sampler;
    }
  });
});

function timelineMarkdown(
  samples: readonly Sample[],
  summary: { upSeconds: number; downSeconds: number; peak: number; tally: Tally },
): string {
  const rows = samples.map(
    (s) =>
      `| ${s.seconds} | ${s.phase} | ${s.clients} | ${s.metric} | ${s.desired} | ${s.replicas} | ${s.scraped} |`,
  );
  const failures = [...summary.tally.statuses]
    .map(([status, n]) => `${n}×${status || 'conn'}`)
    .join(', ');
  return [
    `Scaled up ${summary.upSeconds} s after the load started, peak ${summary.peak} replicas; ` +
      `back to 2 ${summary.downSeconds} s after it stopped. Requests: ${summary.tally.ok} ok, ` +
      `${summary.tally.failed} failed${failures ? ` (${failures})` : ''}.`,
    '',
    '| s | phase | clients | queue depth / pod (HPA) | desired | replicas | proxies |',
    '| -: | --- | -: | -: | -: | -: | -: |',
    ...rows,
    '',
  ].join('\n');
}
