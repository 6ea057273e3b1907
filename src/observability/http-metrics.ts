import type { Registry } from 'prom-client';
import { LeanHistogram } from './lean-histogram';

export const HTTP_DURATION_METRIC = 'triton_proxy_http_request_duration_seconds';

// The names, help and buckets express-prom-bundle gave this histogram, so
// dashboards and alerts built on it keep working.
const LABELS = ['status_code', 'method', 'path', 'client'] as const;
const BUCKETS = [0.003, 0.03, 0.1, 0.3, 1.5, 10];

type Child = { observe(seconds: number): void };

/**
 * Duration of every HTTP request by status, method, route template and
 * client. Each label combination's child is looked up once and kept: the
 * per-request cost is one Map lookup and one lean observe (LeanHistogram),
 * where prom-client's labelled observe hashes a label object per call. Label values are bounded
 * by the caller (route templates, known clients), so the map is too.
 */
export class HttpMetrics {
  private readonly histogram: LeanHistogram<(typeof LABELS)[number]>;
  private readonly children = new Map<string, Child>();

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
    const key = `${status} ${method} ${client} ${path}`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.histogram.labels(String(status), method, path, client);
      this.children.set(key, child);
    }
    child.observe(seconds);
  }
}
