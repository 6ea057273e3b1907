import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import {
  type MetricUse,
  metricUsesInAdapterRules,
  metricUsesInDashboard,
  metricUsesInManifests,
} from './chart-metrics';
import { CHART_DIR, type RenderOptions, helmTemplate } from './helm';
import { parseManifests } from './manifests';

export const DASHBOARD_FILE = path.join(CHART_DIR, 'dashboards', 'triton-proxy.json');
export const ADAPTER_VALUES_FILE = path.join(
  CHART_DIR,
  'examples',
  'prometheus-adapter-values.yaml',
);

// One render per autoscaler (they cannot render together), each with the dashboard on.
const RENDERS: readonly RenderOptions[] = [
  { valuesFiles: ['ci/hpa-values.yaml'], set: { 'grafanaDashboard.enabled': true } },
  { valuesFiles: ['ci/keda-values.yaml'], set: { 'grafanaDashboard.enabled': true } },
];

export function loadAdapterValues(): unknown {
  return yaml.load(fs.readFileSync(ADAPTER_VALUES_FILE, 'utf8'));
}

/**
 * Every metric the chart depends on: the HPA metric and KEDA query as rendered by helm, the
 * dashboard as shipped (file) and as rendered (ConfigMap), and the prometheus-adapter rules.
 * Compare the result with exportedNamesFromExposition(<a proxy's /metrics body>).
 */
export function collectChartMetricUses(helm: string): MetricUse[] {
  const uses: MetricUse[] = [];
  for (const options of RENDERS) {
    const run = helmTemplate(helm, options);
    if (!run.ok) throw new Error(`helm template failed: ${run.stderr}`);
    uses.push(...metricUsesInManifests(parseManifests(run.stdout)));
  }
  const dashboard: unknown = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
  uses.push(...metricUsesInDashboard(dashboard, 'dashboards/triton-proxy.json'));
  uses.push(
    ...metricUsesInAdapterRules(loadAdapterValues(), 'examples/prometheus-adapter-values.yaml'),
  );
  return uses;
}
