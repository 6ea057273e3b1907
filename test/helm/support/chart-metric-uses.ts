import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import {
  type MetricUse,
  metricUsesInAdapterRules,
  metricUsesInDashboard,
  metricUsesInManifests,
  recordedNamesInManifests,
} from './chart-metrics';
import { CHART_DIR, type RenderOptions, helmTemplate } from './helm';
import { parseManifests } from './manifests';

export const DASHBOARD_FILE = path.join(CHART_DIR, 'dashboards', 'triton-proxy.json');
export const ADAPTER_VALUES_FILE = path.join(
  CHART_DIR,
  'examples',
  'prometheus-adapter-values.yaml',
);

// One render per autoscaler (they cannot render together), each with the dashboard and every
// alert on (the Redis alert needs Redis configured).
const MONITORING = {
  'grafanaDashboard.enabled': true,
  'prometheusRule.enabled': true,
  'externalRedis.enabled': true,
  'externalRedis.host': 'redis',
} as const;
const RENDERS: readonly RenderOptions[] = [
  { valuesFiles: ['ci/hpa-values.yaml'], set: MONITORING },
  { valuesFiles: ['ci/keda-values.yaml'], set: MONITORING },
];

export interface ChartMetrics {
  uses: MetricUse[];
  /** Series the chart's own recording rules create. */
  recorded: Set<string>;
}

export function loadAdapterValues(): unknown {
  return yaml.load(fs.readFileSync(ADAPTER_VALUES_FILE, 'utf8'));
}

/**
 * Every metric the chart depends on: the HPA metric, KEDA query and alert rules as rendered by
 * helm, the dashboard as shipped (file) and as rendered (ConfigMap), and the prometheus-adapter
 * rules; and the series the chart's recording rules add. Compare the uses with
 * exportedNamesFromExposition(<a proxy's /metrics body>) plus those recorded names.
 */
export function collectChartMetrics(helm: string): ChartMetrics {
  const uses: MetricUse[] = [];
  const recorded = new Set<string>();
  for (const options of RENDERS) {
    const run = helmTemplate(helm, options);
    if (!run.ok) throw new Error(`helm template failed: ${run.stderr}`);
    const objects = parseManifests(run.stdout);
    uses.push(...metricUsesInManifests(objects));
    for (const name of recordedNamesInManifests(objects)) recorded.add(name);
  }
  const dashboard: unknown = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
  uses.push(...metricUsesInDashboard(dashboard, 'dashboards/triton-proxy.json'));
  uses.push(
    ...metricUsesInAdapterRules(loadAdapterValues(), 'examples/prometheus-adapter-values.yaml'),
  );
  return { uses, recorded };
}
