export { createLogger, silentLogger } from './logger';
export type { Logger, LoggerOptions } from './logger';
export { Metrics, METRIC_PREFIX } from './metrics';
export type { Stage } from './metrics';
export { ModelLabels } from './model-labels';
