export { ExportFailureReporter } from './export-failures';
export { startTracing } from './start-tracing';
export { tracingSettings } from './settings';
export type { TracingConfig, TracingSettings } from './settings';
export type {
  AttemptTrace,
  CarrierGetter,
  RequestTrace,
  ServerSpanStart,
  TraceStage,
  TracedFailure,
  Tracer,
  UpstreamRpc,
} from './request-trace';
