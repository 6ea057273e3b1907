import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import {
  REPO_ROOT,
  type RenderOptions,
  at,
  ensureHelm,
  findObject,
  helmTemplate,
  parseManifests,
} from '../helm/support';

/** The promtool unit tests: series in, alerts expected to fire or stay quiet. */
const UNIT_TESTS = path.join(__dirname, 'alerts.promtool.yaml');

/**
 * promtool from the Prometheus module the k8s suite builds Prometheus from
 * (scripts/k8s/ensure-k8s-tools.sh promtool; cached under .cache/k8s/bin).
 */
function ensurePromtool(): string {
  const out = execFileSync(
    'bash',
    [path.join(REPO_ROOT, 'scripts', 'k8s', 'ensure-k8s-tools.sh'), 'promtool'],
    { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = out.trim().split('\n');
  return path.join(lines[lines.length - 1]!, 'promtool');
}

// The release the unit tests' series belong to: job="proxy-triton-proxy", namespace="inference".
const RELEASE: RenderOptions = {
  releaseName: 'proxy',
  namespace: 'inference',
};
const WITH_REDIS = {
  'prometheusRule.enabled': true,
  'externalRedis.enabled': true,
  'externalRedis.host': 'redis',
} as const;

interface Run {
  ok: boolean;
  output: string;
}

describe('the chart alert rules under promtool', function () {
  let promtool: string;
  let helm: string;
  let dir: string;

  before(function () {
    // A cold build of promtool takes minutes on 2 cores; after the k8s suite's Prometheus
    // build it is mostly Go build-cache hits.
    this.timeout(30 * 60_000);
    promtool = ensurePromtool();
    helm = ensureHelm();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triton-proxy-rules-'));
  });

  after(function () {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Renders the chart's PrometheusRule and writes its groups as a Prometheus rule file. */
  function renderRuleFile(set: RenderOptions['set'], name = 'rendered-rules.yaml'): string {
    const run = helmTemplate(helm, { ...RELEASE, set });
    assert.ok(run.ok, run.stderr);
    const rule = findObject(parseManifests(run.stdout), 'PrometheusRule');
    const file = path.join(dir, name);
    fs.writeFileSync(file, yaml.dump({ groups: at(rule, 'spec', 'groups') }));
    return file;
  }

  function promtoolRun(args: readonly string[]): Run {
    const result = spawnSync(promtool, args, { cwd: dir, encoding: 'utf8' });
    if (result.error) throw result.error;
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
  }

  /** promtool test rules with the unit tests beside the given rule file (their rule_files name). */
  function unitTest(): Run {
    fs.copyFileSync(UNIT_TESTS, path.join(dir, 'alerts.promtool.yaml'));
    return promtoolRun(['test', 'rules', 'alerts.promtool.yaml']);
  }

  it('passes promtool check rules with every alert on, with and without Redis', function () {
    const all = promtoolRun(['check', 'rules', renderRuleFile(WITH_REDIS)]);
    assert.ok(all.ok, all.output);
    // 6 alert kinds, the budget alert once per stage (4), and 4 budget recording rules.
    assert.match(all.output, /SUCCESS: 13 rules found/);
    const memoryMode = promtoolRun([
      'check',
      'rules',
      renderRuleFile({ 'prometheusRule.enabled': true }, 'memory-mode-rules.yaml'),
    ]);
    assert.ok(memoryMode.ok, memoryMode.output);
    assert.match(memoryMode.output, /SUCCESS: 12 rules found/);
  });

  it('fires each alert on the series that should fire it and stays quiet on the others', function () {
    renderRuleFile(WITH_REDIS);
    const run = unitTest();
    assert.ok(run.ok, run.output);
    assert.match(run.output, /SUCCESS/);
  });

  it('follows a budget set in values: a higher parse budget no longer fires on the same series', function () {
    renderRuleFile({ ...WITH_REDIS, 'prometheusRule.latencyBudget.budgets.parse': 1 });
    const run = unitTest();
    assert.ok(!run.ok, 'the unit tests must fail when the budget changes what fires');
    assert.match(run.output, /alertname: TritonProxyStageLatencyBudgetBurn/);
    assert.doesNotMatch(run.output, /alertname: TritonProxyBreakerOpen/);
  });

  it('follows a for: duration set in values: a breaker held open for 10 minutes no longer fires with for: 30m', function () {
    renderRuleFile({ ...WITH_REDIS, 'prometheusRule.breakerOpen.for': '30m' });
    const run = unitTest();
    assert.ok(!run.ok, 'the unit tests must fail when the for: duration changes what fires');
    assert.match(run.output, /alertname: TritonProxyBreakerOpen/);
  });

  it('rejects, in promtool check rules, an outcome pattern from values that is not a valid regex', function () {
    const file = renderRuleFile(
      { ...WITH_REDIS, 'prometheusRule.errorRatio.outcomes': 'INTERNAL|(' },
      'broken-rules.yaml',
    );
    const run = promtoolRun(['check', 'rules', file]);
    assert.ok(!run.ok, run.output);
    assert.match(run.output, /error parsing regexp|missing closing \)/);
  });
});
