/**
 * Autoscaling simulation: what the chart's HPA would do with the proxy's own
 * queue metric under stepped load.
 *
 * 1. Measure. One real proxy replica runs in-process with small admission
 *    limits in front of a slow fake Triton. A closed-loop client holds the
 *    offered concurrency at each level of a stepped profile over keep-alive
 *    connections while /metrics is scraped every second for
 *    `triton_proxy_queue_depth` and `triton_proxy_inflight_requests`. The mean
 *    of each level gives the curve q(c): queue depth of one replica that
 *    carries c concurrent requests.
 * 2. Simulate. The same profile is replayed on a simulated clock with R
 *    replicas, starting at minReplicas. A level of C concurrent clients is
 *    split as evenly as keep-alive connections allow (C mod R pods carry
 *    ⌈C/R⌉, the rest ⌊C/R⌋); each pod reports q at its share (linear between
 *    measured levels) and the HPA algorithm (scripts/lib/hpa.ts) runs every
 *    15 simulated seconds on those values with the chart's minReplicas,
 *    maxReplicas, targetQueueDepth and behavior. Replicas it adds carry load
 *    from the next sync on (ready within 15 s, no cold start).
 *
 * Each measured step of --step-seconds stands for --sim-step-seconds of
 * simulated time: the default 8 s -> 120 s is a 15x compression, so one
 * scrape second stands for one HPA sync period.
 *
 * Run: npx tsx scripts/autoscale-sim.ts [--step-seconds 8] [--levels 2,8,16,32,16,4,0]
 *      [--latency-ms 50] [--model-max-inflight 4] [--sim-step-seconds 120]
 *      [--sim-tail-seconds 0] [--values helm/triton-proxy/values.yaml]
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load as loadYaml } from 'js-yaml';
import { loadConfig } from '../src/config';
import { startFakeTriton, type FakeTriton } from '../src/fake-triton';
import { silentLogger } from '../src/observability';
import { startProxy, type Proxy } from '../src/proxy';
import {
  DEFAULT_SYNC_PERIOD_SECONDS,
  HpaController,
  describeDecision,
  parseQuantity,
  resolveBehavior,
  type HpaSpec,
} from './lib/hpa';

export interface SimOptions {
  stepSeconds: number;
  levels: number[];
  latencyMs: number;
  modelMaxInflight: number;
  simStepSeconds: number;
  simTailSeconds: number;
  valuesPath: string;
}

function readOptions(argv: string[]): SimOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'step-seconds': { type: 'string', default: '8' },
      levels: { type: 'string', default: '2,8,16,32,16,4,0' },
      'latency-ms': { type: 'string', default: '50' },
      'model-max-inflight': { type: 'string', default: '4' },
      'sim-step-seconds': { type: 'string', default: '120' },
      'sim-tail-seconds': { type: 'string', default: '0' },
      values: {
        type: 'string',
        default: join(__dirname, '..', 'helm', 'triton-proxy', 'values.yaml'),
      },
    },
    strict: true,
  });
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new RangeError(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const levels = values.levels.split(',').map((l) => int('levels', l.trim(), 0));
  if (levels.length === 0) throw new RangeError('--levels needs at least one level');
  return {
    stepSeconds: int('step-seconds', values['step-seconds'], 2),
    levels,
    latencyMs: int('latency-ms', values['latency-ms'], 1),
    modelMaxInflight: int('model-max-inflight', values['model-max-inflight'], 1),
    simStepSeconds: int(
      'sim-step-seconds',
      values['sim-step-seconds'],
      DEFAULT_SYNC_PERIOD_SECONDS,
    ),
    simTailSeconds: int('sim-tail-seconds', values['sim-tail-seconds'], 0),
    valuesPath: values.values,
  };
}

/** The HPA the chart renders, from its values file. */
export function hpaSpecFromChartValues(values: unknown): HpaSpec {
  const autoscaling = (values as { autoscaling?: Record<string, unknown> } | null)?.autoscaling;
  if (!autoscaling) throw new Error('the values file has no autoscaling section');
  const { minReplicas, maxReplicas, targetQueueDepth, behavior } = autoscaling;
  if (typeof minReplicas !== 'number' || typeof maxReplicas !== 'number')
    throw new TypeError('autoscaling.minReplicas and maxReplicas must be numbers');
  if (typeof targetQueueDepth !== 'string' && typeof targetQueueDepth !== 'number')
    throw new TypeError('autoscaling.targetQueueDepth must be a quantity');
  return {
    minReplicas,
    maxReplicas,
    targetAverageValue: parseQuantity(targetQueueDepth),
    behavior: resolveBehavior(behavior),
  };
}

// ---- measurement -------------------------------------------------------------

/** `simple` (INT32 [1,16] add/sub), the request every client sends. */
const INFER_BODY = Buffer.from(
  JSON.stringify({
    inputs: [
      {
        name: 'INPUT0',
        datatype: 'INT32',
        shape: [1, 16],
        data: Array.from({ length: 16 }, (_, i) => i),
      },
      {
        name: 'INPUT1',
        datatype: 'INT32',
        shape: [1, 16],
        data: Array.from({ length: 16 }, () => 1),
      },
    ],
  }),
);

interface Exchange {
  status: number;
  body: string;
}

function exchange(
  agent: Agent,
  port: number,
  method: 'GET' | 'POST',
  path: string,
  body?: Buffer,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: body
          ? { 'content-type': 'application/json', 'content-length': String(body.length) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Tally {
  ok: number;
  rejected: number;
  failed: number;
}

/**
 * A closed loop: each active client sends the next request as soon as the
 * previous one answers, over its own keep-alive connection. Lowering the
 * concurrency lets surplus clients finish their request and stop.
 */
class ClosedLoopLoad {
  private readonly agent: Agent;
  private readonly clients: Array<{ active: boolean; done: Promise<void> }> = [];
  tally: Tally = { ok: 0, rejected: 0, failed: 0 };

  constructor(
    private readonly port: number,
    maxConcurrency: number,
  ) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: maxConcurrency,
      maxFreeSockets: maxConcurrency,
    });
  }

  setConcurrency(target: number): void {
    const running = this.clients.filter((c) => c.active);
    for (const client of running.slice(target)) client.active = false;
    for (let i = running.length; i < target; i++) {
      const client = { active: true, done: Promise.resolve() };
      client.done = this.run(client);
      this.clients.push(client);
    }
  }

  private async run(client: { active: boolean }): Promise<void> {
    while (client.active) {
      try {
        const { status } = await exchange(
          this.agent,
          this.port,
          'POST',
          '/v2/models/simple/infer',
          INFER_BODY,
        );
        if (status === 200) this.tally.ok++;
        else if (status === 429) this.tally.rejected++;
        else this.tally.failed++;
      } catch {
        this.tally.failed++;
        // A broken connection must not turn the loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  async stop(): Promise<void> {
    this.setConcurrency(0);
    await Promise.all(this.clients.map((c) => c.done));
    this.agent.destroy();
  }
}

function gauge(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`/metrics does not export ${name}`);
  return Number(match[1]);
}

export interface StepMeasurement {
  concurrency: number;
  /** Scrapes after the first second of the step (the first is left out as the settling second). */
  queueDepth: number[];
  inflight: number[];
  tally: Tally;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function measure(
  options: SimOptions,
  log: (line: string) => void,
): Promise<StepMeasurement[]> {
  let fake: FakeTriton | undefined;
  let proxy: Proxy | undefined;
  const scrapeAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    fake = await startFakeTriton({ host: '127.0.0.1', port: 0, latencyMs: options.latencyMs });
    const config = loadConfig({
      env: {
        PORT: '0',
        GRPC_PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'error',
        TRITON_SERVERS: `t0=${fake.address}`,
        TRITON_HEALTH_INTERVAL_MS: '1000',
        MODEL_MAX_INFLIGHT: String(options.modelMaxInflight),
        MODEL_MAX_QUEUE: '256',
        MAX_INFLIGHT: '512',
        MAX_QUEUE: '1024',
        QUEUE_TIMEOUT_MS: '10000',
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_GRACE_MS: '2000',
      },
    });
    proxy = await startProxy(config, { logger: silentLogger, defaultMetrics: false });
    const port = proxy.port();
    const readyBy = Date.now() + 10_000;
    while (!proxy.isReady().ready) {
      if (Date.now() > readyBy)
        throw new Error(`proxy not ready: ${proxy.isReady().reasons.join('; ')}`);
      await sleep(50);
    }
    const probe = await exchange(scrapeAgent, port, 'POST', '/v2/models/simple/infer', INFER_BODY);
    if (probe.status !== 200)
      throw new Error(`warm-up inference answered ${probe.status}: ${probe.body}`);

    const load = new ClosedLoopLoad(port, Math.max(...options.levels, 1));
    const steps: StepMeasurement[] = [];
    const start = performance.now();
    try {
      for (const [index, concurrency] of options.levels.entries()) {
        const stepStart = start + index * options.stepSeconds * 1000;
        load.tally = { ok: 0, rejected: 0, failed: 0 };
        load.setConcurrency(concurrency);
        const step: StepMeasurement = {
          concurrency,
          queueDepth: [],
          inflight: [],
          tally: load.tally,
          seconds: options.stepSeconds,
        };
        for (let s = 1; s <= options.stepSeconds; s++) {
          await sleep(stepStart + s * 1000 - performance.now());
          const metrics = await exchange(scrapeAgent, port, 'GET', '/metrics');
          if (s === 1) continue;
          step.queueDepth.push(gauge(metrics.body, 'triton_proxy_queue_depth'));
          step.inflight.push(gauge(metrics.body, 'triton_proxy_inflight_requests'));
        }
        steps.push(step);
        log(
          `  measured c=${String(concurrency).padStart(2)}: queue depth ${mean(step.queueDepth).toFixed(1)}, ` +
            `in flight ${mean(step.inflight).toFixed(1)}, ${step.tally.ok} ok, ${step.tally.rejected} rejected`,
        );
      }
    } finally {
      await load.stop();
    }
    return steps;
  } finally {
    scrapeAgent.destroy();
    await proxy?.close();
    await fake?.stop();
  }
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

// ---- the queue-depth curve and the simulation --------------------------------

export interface CurvePoint {
  concurrency: number;
  queueDepth: number;
}

/** Mean queue depth per measured concurrency (levels measured twice are pooled); no load, no queue. */
export function queueCurve(steps: readonly StepMeasurement[]): CurvePoint[] {
  const byLevel = new Map<number, number[]>();
  for (const step of steps)
    byLevel.set(step.concurrency, [...(byLevel.get(step.concurrency) ?? []), ...step.queueDepth]);
  if (!byLevel.has(0)) byLevel.set(0, [0]);
  return [...byLevel.entries()]
    .map(([concurrency, samples]) => ({ concurrency, queueDepth: mean(samples) }))
    .sort((a, b) => a.concurrency - b.concurrency);
}

/** q(c) by linear interpolation between measured levels, extended along the last segment. */
export function queueDepthAt(curve: readonly CurvePoint[], concurrency: number): number {
  if (curve.length === 1) return curve[0].queueDepth;
  let i = curve.findIndex((p) => p.concurrency >= concurrency);
  if (i <= 0) i = i === 0 ? 1 : curve.length - 1;
  const a = curve[i - 1];
  const b = curve[i];
  const slope = (b.queueDepth - a.queueDepth) / (b.concurrency - a.concurrency);
  return Math.max(0, a.queueDepth + slope * (concurrency - a.concurrency));
}

/** Per-pod concurrency when `total` clients spread as evenly as connections allow over `replicas`. */
export function splitLoad(total: number, replicas: number): number[] {
  const base = Math.floor(total / replicas);
  const extra = total % replicas;
  return Array.from({ length: replicas }, (_, i) => base + (i < extra ? 1 : 0));
}

export interface SimRow {
  timeSeconds: number;
  load: number;
  queuePerPod: number;
  current: number;
  proposal: number;
  desired: number;
  reason: string;
}

export function simulate(
  curve: readonly CurvePoint[],
  levels: readonly number[],
  spec: HpaSpec,
  simStepSeconds: number,
  simTailSeconds: number,
  syncPeriodSeconds = DEFAULT_SYNC_PERIOD_SECONDS,
): SimRow[] {
  const hpa = new HpaController(spec);
  const end = levels.length * simStepSeconds + simTailSeconds;
  const rows: SimRow[] = [];
  let replicas = spec.minReplicas;
  for (let t = 0; t < end; t += syncPeriodSeconds) {
    const load = levels[Math.min(levels.length - 1, Math.floor(t / simStepSeconds))];
    const podValues = splitLoad(load, replicas).map((c) => queueDepthAt(curve, c));
    const decision = hpa.sync({ timeSeconds: t, currentReplicas: replicas, podValues });
    rows.push({
      timeSeconds: t,
      load,
      queuePerPod: decision.averageValue,
      current: replicas,
      proposal: decision.proposal,
      desired: decision.desired,
      reason: describeDecision(decision),
    });
    replicas = decision.desired;
  }
  return rows;
}

// ---- output ------------------------------------------------------------------

function table(header: string[], rows: string[][], alignRight: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (alignRight[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (alignRight[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

function curveTable(steps: readonly StepMeasurement[]): string {
  const levels = [...new Set(steps.map((s) => s.concurrency))].sort((a, b) => a - b);
  const rows = levels.map((c) => {
    const same = steps.filter((s) => s.concurrency === c);
    const seconds = same.reduce((sum, s) => sum + s.seconds, 0);
    const ok = same.reduce((sum, s) => sum + s.tally.ok, 0);
    const rejected = same.reduce((sum, s) => sum + s.tally.rejected + s.tally.failed, 0);
    return [
      String(c),
      String(same.reduce((sum, s) => sum + s.queueDepth.length, 0)),
      mean(same.flatMap((s) => s.queueDepth)).toFixed(2),
      mean(same.flatMap((s) => s.inflight)).toFixed(2),
      (ok / seconds).toFixed(0),
      String(rejected),
    ];
  });
  return table(
    ['concurrency', 'scrapes', 'queue depth', 'in flight', 'req/s', '429/errors'],
    rows,
    [true, true, true, true, true, true],
  );
}

function simTable(rows: readonly SimRow[]): string {
  return table(
    ['time', 'offered load', 'queue depth / pod', 'current', 'formula', 'desired', 'reason'],
    rows.map((r) => [
      clock(r.timeSeconds),
      String(r.load),
      r.queuePerPod.toFixed(2),
      String(r.current),
      Number.isNaN(r.proposal) ? '-' : String(r.proposal),
      String(r.desired),
      r.reason,
    ]),
    [true, true, true, true, true, true, false],
  );
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const spec = hpaSpecFromChartValues(loadYaml(readFileSync(options.valuesPath, 'utf8')));
  const began = performance.now();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(
    `measuring one replica (MODEL_MAX_INFLIGHT=${options.modelMaxInflight}, fake Triton ${options.latencyMs} ms), ` +
      `${options.levels.length} steps of ${options.stepSeconds} s`,
  );
  const steps = await measure(options, log);
  const curve = queueCurve(steps);
  const rows = simulate(
    curve,
    options.levels,
    spec,
    options.simStepSeconds,
    options.simTailSeconds,
  );
  const { scaleUp, scaleDown } = spec.behavior;
  const policies = (rules: typeof scaleUp) =>
    rules.policies
      .map((p) => `${p.value}${p.type === 'Percent' ? ' %' : ' pods'}/${p.periodSeconds} s`)
      .join(', ');
  const out = [
    `Measured: one replica, MODEL_MAX_INFLIGHT=${options.modelMaxInflight}, fake Triton latency ${options.latencyMs} ms, ` +
      `${options.stepSeconds} s per level (first second of each level left out).`,
    '',
    curveTable(steps),
    '',
    `HPA: minReplicas ${spec.minReplicas}, maxReplicas ${spec.maxReplicas}, target averageValue ${spec.targetAverageValue}, ` +
      `tolerance 0.1, sync every ${DEFAULT_SYNC_PERIOD_SECONDS} s; scaleUp ${scaleUp.selectPolicy}(${policies(scaleUp)}) ` +
      `window ${scaleUp.stabilizationWindowSeconds} s; scaleDown ${scaleDown.selectPolicy}(${policies(scaleDown)}) ` +
      `window ${scaleDown.stabilizationWindowSeconds} s.`,
    `Simulated time: each level lasts ${options.simStepSeconds} s (measured for ${options.stepSeconds} s: ` +
      `${(options.simStepSeconds / options.stepSeconds).toFixed(0)}x compression), then ${options.simTailSeconds} s more at the last level.`,
    '',
    simTable(rows),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  log(`done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`autoscale-sim: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
