import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import {
  DASHBOARD_FILE,
  type MetricUse,
  adapterExposedNames,
  collectChartMetrics,
  distinctMetricNames,
  ensureHelm,
  exportedNamesFromExposition,
  loadAdapterValues,
  metricNamesInGrafanaVariableQuery,
  metricNamesInPromQL,
  metricUsesInDashboard,
  unexportedMetricUses,
} from './support';
import { Metrics } from '../../src/observability';

/**
 * The proxy's metric families as its /metrics endpoint declares them (prom-client text format),
 * per the metrics contract. Replace with the body of a live scrape to check a running proxy.
 */
const PROXY_EXPOSITION = `
# HELP triton_proxy_queue_depth Requests waiting for admission in this replica.
# TYPE triton_proxy_queue_depth gauge
triton_proxy_queue_depth 0
# HELP triton_proxy_inflight_requests Requests admitted and not yet answered in this replica.
# TYPE triton_proxy_inflight_requests gauge
triton_proxy_inflight_requests 0
# HELP triton_proxy_queue_depth_by_model Requests waiting for admission, by model.
# TYPE triton_proxy_queue_depth_by_model gauge
# HELP triton_proxy_inflight_requests_by_model Requests in flight, by model.
# TYPE triton_proxy_inflight_requests_by_model gauge
# HELP triton_proxy_request_duration_seconds Request latency by model, route and outcome.
# TYPE triton_proxy_request_duration_seconds histogram
# HELP triton_proxy_retries_total Retries by reason.
# TYPE triton_proxy_retries_total counter
# HELP triton_proxy_upstream_attempts_total Upstream attempts by server and outcome.
# TYPE triton_proxy_upstream_attempts_total counter
# HELP triton_proxy_breaker_state Circuit breaker state per server (0 closed, 1 half-open, 2 open).
# TYPE triton_proxy_breaker_state gauge
# HELP triton_proxy_servers_ready Triton servers currently ready.
# TYPE triton_proxy_servers_ready gauge
triton_proxy_servers_ready 0
# HELP triton_proxy_servers_known Triton servers known to this replica.
# TYPE triton_proxy_servers_known gauge
triton_proxy_servers_known 0
# HELP triton_proxy_redis_up 1 when the shared state store is connected.
# TYPE triton_proxy_redis_up gauge
triton_proxy_redis_up 0
# HELP triton_proxy_rejections_total Requests refused by admission control, by reason.
# TYPE triton_proxy_rejections_total counter
# HELP triton_proxy_cache_requests_total Requests for cached models by result.
# TYPE triton_proxy_cache_requests_total counter
# HELP triton_proxy_cache_coalesced_total Requests that shared an identical request's upstream call.
# TYPE triton_proxy_cache_coalesced_total counter
# HELP triton_proxy_cache_evictions_total Cached answers evicted to stay within CACHE_MAX_BYTES.
# TYPE triton_proxy_cache_evictions_total counter
triton_proxy_cache_evictions_total 0
# HELP triton_proxy_cache_invalidations_total Cached models invalidated by a load, reload or unload.
# TYPE triton_proxy_cache_invalidations_total counter
triton_proxy_cache_invalidations_total 0
# HELP triton_proxy_cache_bytes Bytes held by the response cache per tier.
# TYPE triton_proxy_cache_bytes gauge
triton_proxy_cache_bytes{tier="memory"} 0
`;

function usesFrom(uses: readonly MetricUse[], source: MetricUse['source']): string[] {
  return distinctMetricNames(uses.filter((use) => use.source === source));
}

describe('metric names used by the chart', function () {
  describe('metricNamesInPromQL', function () {
    it('finds the metric inside aggregations, label matchers and ranges', function () {
      assert.deepEqual(
        metricNamesInPromQL(
          'sum by (model, le) (rate(triton_proxy_request_duration_seconds_bucket{namespace=~"$namespace", model=~"$model"}[$__rate_interval]))',
        ),
        ['triton_proxy_request_duration_seconds_bucket'],
      );
    });

    it('finds every metric of a binary expression and ignores functions, keywords and durations', function () {
      const names = metricNamesInPromQL(
        'histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le)) / on(pod) group_left b offset 1h30m and c > bool 0',
      );
      assert.deepEqual(names.sort(), ['a_bucket', 'b', 'c']);
    });

    it('ignores label names and values, including ones that look like metric names', function () {
      assert.deepEqual(
        metricNamesInPromQL(
          'label_replace(up_metric{job="x_total"}, "dst_label", "$1", "src", "(.*)")',
        ),
        ['up_metric'],
      );
    });

    it('reads a metric selected through __name__', function () {
      assert.deepEqual(metricNamesInPromQL('{__name__="triton_proxy_queue_depth", pod!=""}'), [
        'triton_proxy_queue_depth',
      ]);
    });
  });

  describe('metricNamesInGrafanaVariableQuery', function () {
    it('takes the selector of label_values(selector, label) but not the label', function () {
      assert.deepEqual(
        metricNamesInGrafanaVariableQuery(
          'label_values(triton_proxy_servers_known{namespace=~"$ns", a="b,c"}, job)',
        ),
        ['triton_proxy_servers_known'],
      );
    });

    it('finds no metric in label_values(label) and label_names()', function () {
      assert.deepEqual(metricNamesInGrafanaVariableQuery('label_values(namespace)'), []);
      assert.deepEqual(metricNamesInGrafanaVariableQuery('label_names()'), []);
    });
  });

  describe('exportedNamesFromExposition', function () {
    it('counts declared families without samples and expands histograms into their series', function () {
      const names = exportedNamesFromExposition(PROXY_EXPOSITION);
      assert.ok(names.has('triton_proxy_retries_total'));
      assert.ok(names.has('triton_proxy_request_duration_seconds_bucket'));
      assert.ok(names.has('triton_proxy_request_duration_seconds_count'));
      assert.ok(!names.has('triton_proxy_queue_depth_bucket'));
    });

    it('reads sample lines and OpenMetrics counter families', function () {
      const names = exportedNamesFromExposition(
        '# TYPE jobs counter\njobs_total 3\nother_metric{a="b"} 1\n',
      );
      assert.deepEqual([...names].sort(), ['jobs', 'jobs_total', 'other_metric']);
    });
  });

  describe('against the metrics the proxy exports', function () {
    let uses: MetricUse[] = [];
    let recorded = new Set<string>();
    /** The proxy's own registry: every family it declares, observed or not. */
    let available = new Set<string>();

    before(async function () {
      this.timeout(180_000);
      ({ uses, recorded } = collectChartMetrics(ensureHelm()));
      const metrics = new Metrics({ modelLabelLimit: 8 });
      // As with Redis configured: in memory mode the proxy exports no triton_proxy_redis_up,
      // and the chart renders the Redis alert only with Redis.
      metrics.exportRedisUp();
      available = exportedNamesFromExposition(await metrics.registry.metrics());
      // Series the chart's recording rules create (the budgets the dashboard draws).
      for (const name of recorded) available.add(name);
    });

    it('finds the metrics of the HPA, the KEDA query, the dashboard, the adapter and the alert rules', function () {
      assert.deepEqual(usesFrom(uses, 'hpa'), ['triton_proxy_queue_depth']);
      assert.deepEqual(usesFrom(uses, 'keda'), ['triton_proxy_queue_depth']);
      assert.deepEqual(usesFrom(uses, 'prometheus-adapter'), ['triton_proxy_queue_depth']);
      assert.ok(usesFrom(uses, 'dashboard').length >= 10, 'the dashboard was read');
      assert.deepEqual(usesFrom(uses, 'prometheus-rule'), [
        'triton_proxy_breaker_state',
        'triton_proxy_queue_depth',
        'triton_proxy_redis_up',
        'triton_proxy_rejections_total',
        'triton_proxy_request_duration_seconds_count',
        'triton_proxy_servers_ready',
        'triton_proxy_stage_duration_seconds_bucket',
        'triton_proxy_stage_duration_seconds_count',
      ]);
      assert.deepEqual([...recorded], ['triton_proxy:stage_latency_budget_seconds']);
    });

    it('uses only metrics the proxy exports or the chart records', function () {
      const missing = unexportedMetricUses(uses, available);
      assert.deepEqual(
        missing.map((use) => `${use.metric} (${use.source}: ${use.where})`),
        [],
      );
    });

    it('reports a metric the proxy does not export', function () {
      const typo: MetricUse = {
        metric: 'triton_proxy_queue_dept',
        source: 'dashboard',
        where: 'a panel',
      };
      const ruleTypo: MetricUse = {
        metric: 'triton_proxy_breaker_states',
        source: 'prometheus-rule',
        where: 'an alert',
      };
      assert.deepEqual(unexportedMetricUses([...uses, typo, ruleTypo], available), [
        typo,
        ruleTypo,
      ]);
    });

    it('has prometheus-adapter expose the metric name the HPA asks for', function () {
      assert.deepEqual(adapterExposedNames(loadAdapterValues()), usesFrom(uses, 'hpa'));
    });
  });

  describe('the Grafana dashboard', function () {
    const dashboard: unknown = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
    const panels = (
      dashboard as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> }
    ).panels;
    const exprs = panels.flatMap((panel) => panel.targets.map((target) => target.expr));

    it('charts request rate, errors, queue depth, in-flight, retries, breaker states and Redis health', function () {
      const used = new Set(distinctMetricNames(metricUsesInDashboard(dashboard)));
      for (const metric of [
        'triton_proxy_request_duration_seconds_count',
        'triton_proxy_queue_depth',
        'triton_proxy_inflight_requests',
        'triton_proxy_retries_total',
        'triton_proxy_breaker_state',
        'triton_proxy_redis_up',
        'triton_proxy_cache_requests_total',
        'triton_proxy_cache_bytes',
      ]) {
        assert.ok(used.has(metric), `the dashboard charts ${metric}`);
      }
      assert.ok(
        exprs.some((expr) => /outcome!="ok"/.test(expr)),
        'an error-rate query excludes ok outcomes',
      );
    });

    it('charts the p95 of each stage against its budget, cache coalescing by model and quota denials and tokens by client', function () {
      const used = new Set(distinctMetricNames(metricUsesInDashboard(dashboard)));
      for (const metric of [
        'triton_proxy_stage_duration_seconds_bucket',
        'triton_proxy:stage_latency_budget_seconds',
        'triton_proxy_cache_coalesced_total',
        'triton_proxy_rate_limited_total',
        'triton_proxy_quota_fallbacks_total',
        'triton_proxy_grpc_request_duration_seconds_count',
      ]) {
        assert.ok(used.has(metric), `the dashboard charts ${metric}`);
      }
      const byTitle = new Map(panels.map((panel) => [panel.title, panel.targets]));
      const budget = byTitle.get('Stage latency p95 vs budget') ?? [];
      assert.ok(
        budget.some((t) =>
          t.expr.startsWith(
            'histogram_quantile(0.95, sum by (stage, le) (rate(triton_proxy_stage_duration_seconds_bucket',
          ),
        ),
        'p95 by stage',
      );
      assert.ok(
        budget.some((t) =>
          /max by \(stage\) \(triton_proxy:stage_latency_budget_seconds/.test(t.expr),
        ),
      );
      assert.ok(
        (byTitle.get('Quota denials by client and budget') ?? []).some((t) =>
          t.expr.startsWith('sum by (client, policy) (rate(triton_proxy_rate_limited_total'),
        ),
      );
      assert.ok(
        (byTitle.get('Coalesced requests by model') ?? []).some((t) =>
          t.expr.startsWith('sum by (model) (rate(triton_proxy_cache_coalesced_total'),
        ),
      );
    });

    it('charts p50, p95 and p99 latency by model', function () {
      for (const quantile of ['0.5', '0.95', '0.99']) {
        assert.ok(
          exprs.some((expr) =>
            expr.startsWith(
              `histogram_quantile(${quantile}, sum by (model, le) (rate(triton_proxy_request_duration_seconds_bucket`,
            ),
          ),
          `p${quantile} by model`,
        );
      }
    });

    it('gives every panel a unique id and a title', function () {
      const ids = (dashboard as { panels: Array<{ id: number; title: string }> }).panels.map(
        (p) => p.id,
      );
      assert.equal(new Set(ids).size, ids.length);
      assert.ok(panels.every((panel) => panel.title.length > 0));
    });
  });
});
