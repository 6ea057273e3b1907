import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type K8sObject,
  REPO_ROOT,
  type RenderOptions,
  at,
  ensureHelm,
  findObjects,
  helmTemplate,
  parseManifests,
  validateObject,
} from './support';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const ALERTS = [
  'TritonProxyBreakerOpen',
  'TritonProxyErrorRatioHigh',
  'TritonProxyNoReadyServer',
  'TritonProxyQueueSaturated',
  'TritonProxyRedisDown',
  'TritonProxyStageLatencyBudgetBurn',
];

/** GitHub's anchor for a Markdown heading. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe('the chart PrometheusRule', function () {
  let helm: string;

  before(function () {
    this.timeout(180_000);
    helm = ensureHelm();
  });

  function render(set: RenderOptions['set']): K8sObject[] {
    const run = helmTemplate(helm, { releaseName: 'proxy', namespace: 'inference', set });
    assert.ok(run.ok, run.stderr);
    return findObjects(parseManifests(run.stdout), 'PrometheusRule');
  }

  function rulesOf(objects: K8sObject[]): Rule[] {
    assert.equal(objects.length, 1);
    return (at(objects[0], 'spec', 'groups') as Array<{ rules: Rule[] }>).flatMap((g) => g.rules);
  }

  const alertNames = (rules: Rule[]) => [...new Set(rules.flatMap((r) => r.alert ?? []))].sort();

  it('is not rendered unless enabled', function () {
    assert.deepEqual(render({}), []);
  });

  it('renders every alert with Redis configured, and a schema-valid PrometheusRule', async function () {
    const objects = render({
      'prometheusRule.enabled': true,
      'externalRedis.enabled': true,
      'externalRedis.host': 'redis',
    });
    assert.deepEqual(alertNames(rulesOf(objects)), ALERTS);
    await validateObject(objects[0]);
  });

  it('leaves the Redis alert out without Redis, where the proxy exports no triton_proxy_redis_up', function () {
    const rules = rulesOf(render({ 'prometheusRule.enabled': true }));
    assert.deepEqual(
      alertNames(rules),
      ALERTS.filter((a) => a !== 'TritonProxyRedisDown'),
    );
    assert.ok(!rules.some((r) => r.expr.includes('triton_proxy_redis_up')));
  });

  it('fires on the Redis gauge being 0, never on it being absent', function () {
    const redis = rulesOf(
      render({
        'prometheusRule.enabled': true,
        'externalRedis.enabled': true,
        'externalRedis.host': 'redis',
      }),
    ).find((r) => r.alert === 'TritonProxyRedisDown');
    assert.ok(redis);
    assert.match(redis.expr, /triton_proxy_redis_up\{[^}]*\}\) == 0$/);
    assert.doesNotMatch(redis.expr, /absent/);
  });

  it('gives every alert a severity, summary, description and a runbook link to its README section', function () {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const anchors = new Set(
      [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((match) => anchorOf(match[1]!)),
    );
    const rules = rulesOf(
      render({
        'prometheusRule.enabled': true,
        'externalRedis.enabled': true,
        'externalRedis.host': 'redis',
      }),
    ).filter((r) => r.alert !== undefined);
    for (const rule of rules) {
      assert.ok(rule.labels?.severity, `${rule.alert} has a severity`);
      assert.ok(rule.for, `${rule.alert} has a for: duration`);
      assert.ok(rule.annotations?.summary && rule.annotations.description, `${rule.alert} texts`);
      const url = rule.annotations.runbook_url ?? '';
      assert.equal(url, `README.md#${rule.alert!.toLowerCase()}`);
      assert.ok(anchors.has(url.split('#')[1]!), `README.md has a section for ${rule.alert}`);
    }
  });

  it('selects the release by namespace and job by default, or by the selector from values', function () {
    const byDefault = rulesOf(render({ 'prometheusRule.enabled': true }));
    for (const rule of byDefault.filter((r) => r.alert)) {
      assert.match(rule.expr, /\{namespace="inference", job="proxy-triton-proxy"/, rule.alert);
    }
    const custom = rulesOf(
      render({ 'prometheusRule.enabled': true, 'prometheusRule.selector': 'service="edge"' }),
    );
    for (const rule of custom.filter((r) => r.alert)) {
      assert.match(rule.expr, /\{service="edge"/, rule.alert);
      assert.doesNotMatch(rule.expr, /job="proxy-triton-proxy"/, rule.alert);
    }
  });

  it('takes thresholds, budgets, durations and extra labels from values, and drops a disabled alert', function () {
    const rules = rulesOf(
      render({
        'prometheusRule.enabled': true,
        'prometheusRule.errorRatio.threshold': 1,
        'prometheusRule.latencyBudget.budgets.upstream': 2,
        'prometheusRule.latencyBudget.for': '1h',
        'prometheusRule.queueSaturation.enabled': false,
        'prometheusRule.additionalLabels.team': 'ml-platform',
        'prometheusRule.rateWindow': '10m',
      }),
    );
    assert.ok(!rules.some((r) => r.alert === 'TritonProxyQueueSaturated'));
    const errors = rules.find((r) => r.alert === 'TritonProxyErrorRatioHigh')!;
    assert.match(errors.expr, /\) > 1\n/);
    assert.match(errors.expr, /\[10m\]/);
    const upstream = rules.find(
      (r) => r.alert === 'TritonProxyStageLatencyBudgetBurn' && r.labels?.stage === 'upstream',
    )!;
    assert.match(upstream.expr, /stage="upstream"\}\[10m\]\)\)\) > 2\n/);
    assert.equal(upstream.for, '1h');
    const budget = rules.find(
      (r) =>
        r.record === 'triton_proxy:stage_latency_budget_seconds' && r.labels?.stage === 'upstream',
    )!;
    assert.equal(budget.expr, 'vector(2)');
    for (const rule of rules.filter((r) => r.alert)) {
      assert.equal(rule.labels?.team, 'ml-platform', rule.alert);
    }
  });
});
