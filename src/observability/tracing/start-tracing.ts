import type { ExportFailureListener } from './export-failures';
import type { Tracer } from './request-trace';
import type { TracingSettings } from './settings';

/**
 * The OpenTelemetry tracer for `settings`, or undefined (tracing off). The
 * SDK is loaded here, on demand: a proxy without an OTLP endpoint never
 * loads it (a test checks that), and the request path, which only holds an
 * optional Tracer, costs nothing.
 */
export function startTracing(
  settings: TracingSettings | undefined,
  version: string,
  onExportFailure: ExportFailureListener,
): Tracer | undefined {
  if (settings === undefined) return undefined;
  // A plain require, not import(): the build is CommonJS, and the test runner
  // (tsx) resolves a dynamic import() through the ESM loader, which does not
  // find TypeScript sources. Either way the module is loaded only here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { OtelTracer } = require('./otel-tracer') as typeof import('./otel-tracer');
  return new OtelTracer(settings, version, onExportFailure);
}
