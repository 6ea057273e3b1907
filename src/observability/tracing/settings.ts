import type { TraceSamplerName } from '../../config';

/** The tracing keys of the configuration (config.tracing) the tracer reads. */
export interface TracingConfig {
  otlpEndpoint: string;
  otlpTracesEndpoint: string;
  serviceName: string;
  sampler: TraceSamplerName;
  samplerArg: string;
  sdkDisabled: boolean;
  batchDelayMs: number;
  batchExportTimeoutMs: number;
  batchMaxQueueSize: number;
  batchMaxExportBatchSize: number;
}

/** The batch span processor's limits (the OTEL_BSP_* variables), in the SDK's own option names. */
export interface BatchSettings {
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

/** What the tracer is built from, once tracing is on. */
export interface TracingSettings {
  /** Where spans are POSTed (OTLP/HTTP, JSON). */
  tracesUrl: string;
  serviceName: string;
  sampler: TraceSamplerName;
  /** The ratio of the *traceidratio samplers, 0..1. */
  samplerArg: number;
  batch: BatchSettings;
}

/**
 * The tracer's settings, or undefined when tracing is off: no OTLP endpoint
 * is configured, or OTEL_SDK_DISABLED says so. As the OpenTelemetry spec
 * says, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is and
 * OTEL_EXPORTER_OTLP_ENDPOINT gets `v1/traces` appended. Throws (naming the
 * variable) when a value cannot be used.
 */
export function tracingSettings(config: TracingConfig): TracingSettings | undefined {
  if (config.sdkDisabled) return undefined;
  let tracesUrl: string;
  let variable: string;
  if (config.otlpTracesEndpoint !== '') {
    tracesUrl = config.otlpTracesEndpoint;
    variable = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
  } else if (config.otlpEndpoint !== '') {
    const base = config.otlpEndpoint;
    tracesUrl = `${base}${base.endsWith('/') ? '' : '/'}v1/traces`;
    variable = 'OTEL_EXPORTER_OTLP_ENDPOINT';
  } else {
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(tracesUrl);
  } catch {
    throw new Error(`${variable}: '${tracesUrl}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${variable}: '${tracesUrl}' must be an http:// or https:// URL (OTLP/HTTP)`);
  }
  let ratio = 1;
  if (config.sampler.endsWith('traceidratio') && config.samplerArg.trim() !== '') {
    ratio = Number(config.samplerArg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      throw new Error(
        `OTEL_TRACES_SAMPLER_ARG: '${config.samplerArg}' must be a ratio between 0 and 1`,
      );
    }
  }
  return {
    tracesUrl,
    serviceName: config.serviceName,
    sampler: config.sampler,
    samplerArg: ratio,
    batch: batchSettings(config),
  };
}

function batchSettings(config: TracingConfig): BatchSettings {
  if (config.batchMaxQueueSize < 1) {
    throw new Error('OTEL_BSP_MAX_QUEUE_SIZE: must be at least 1');
  }
  if (config.batchMaxExportBatchSize < 1) {
    throw new Error('OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be at least 1');
  }
  // The SDK would quietly lower it; a value that cannot take effect is refused instead.
  if (config.batchMaxExportBatchSize > config.batchMaxQueueSize) {
    throw new Error(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE: ${config.batchMaxExportBatchSize} is more than OTEL_BSP_MAX_QUEUE_SIZE (${config.batchMaxQueueSize})`,
    );
  }
  if (config.batchExportTimeoutMs < 1) {
    throw new Error('OTEL_BSP_EXPORT_TIMEOUT: must be at least 1 ms');
  }
  return {
    scheduledDelayMillis: config.batchDelayMs,
    exportTimeoutMillis: config.batchExportTimeoutMs,
    maxQueueSize: config.batchMaxQueueSize,
    maxExportBatchSize: config.batchMaxExportBatchSize,
  };
}
