export { createLogger, silentLogger } from './logger';
export type { Logger, LoggerOptions } from './logger';
export { Metrics, METRIC_PREFIX } from './metrics';
export { HttpMetrics, HTTP_DURATION_METRIC } from './http-metrics';
export type { Stage } from './metrics';
export { ModelLabels } from './model-labels';
export { ErrorReporter } from './error-reporter';
export type { ErrorSummary, RecentError } from './error-reporter';
export { acceptRequestId, parseTraceparent } from './request-id';
export { ExportFailureReporter, startTracing, tracingSettings } from './tracing';
export type {
  AttemptTrace,
  CarrierGetter,
  RequestTrace,
  TracedFailure,
  Tracer,
  TracingConfig,
  TracingSettings,
  UpstreamRpc,
} from './tracing';
export { RecentCalls } from './recent-calls';
export type { RecentCallsOptions, RecentCallsSummary } from './recent-calls';
