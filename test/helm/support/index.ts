export {
  type MetricSource,
  type MetricUse,
  adapterExposedNames,
  distinctMetricNames,
  exportedNamesFromExposition,
  metricNamesInGrafanaVariableQuery,
  metricNamesInPromQL,
  metricUsesInAdapterRules,
  metricUsesInDashboard,
  metricUsesInManifests,
  recordedNamesInManifests,
  unexportedMetricUses,
} from './chart-metrics';
export {
  ADAPTER_VALUES_FILE,
  type ChartMetrics,
  DASHBOARD_FILE,
  collectChartMetrics,
  loadAdapterValues,
} from './chart-metric-uses';
export {
  CHART_DIR,
  type HelmRun,
  REPO_ROOT,
  type RenderOptions,
  ensureHelm,
  helmLintStrict,
  helmTemplate,
  helmVersion,
} from './helm';
export { validateObject } from './k8s-models';
export { type K8sObject, at, findObject, findObjects, parseManifests } from './manifests';
