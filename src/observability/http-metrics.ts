import type { Registry } from 'prom-client';
import { LeanHistogram } from './lean-histogram';

export const HTTP_DURATION_METRIC = 'triton_proxy_http_request_duration_seconds';

// The names, help and buckets express-prom-bundle gave this histogram, so
// dashboards and alerts built on it keep working.
const LABELS = ['status_code', 'method', 'path', 'client'] as const;
const BUCKETS = [0.003, 0.03, 0.1, 0.3, 1.5, 10];

/**
 * Duration of every HTTP request by status, method, route template and
 * client. LeanHistogram keeps each label combination's child: the
 * per-request cost is one Map lookup and one lean observe, where
 * prom-client's labelled observe hashes a label object per call. Label
 * values are bounded by the caller (route templates, known clients), so the
 * children are too.
 */
export class HttpMetrics {
  private readonly histogram: LeanHistogram<(typeof LABELS)[number]>;

  constructor(registry: Registry) {
    this.histogram = new LeanHistogram({
      name: HTTP_DURATION_METRIC,
      help: `duration histogram of http responses labeled with: ${LABELS.join(', ')}`,
      labelNames: LABELS,
      buckets: BUCKETS,
      registers: [registry],
    });
  }

  observe(method: string, path: string, status: number, client: string, seconds: number): void {
    this.histogram.labels(String(status), method, path, client).observe(seconds);
  }
}
