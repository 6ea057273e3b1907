import type { WireModelStatistics, WireStatisticDuration } from './wire';

/**
 * Per model version inference statistics, shaped like Triton's
 * ModelStatistics (core src/tritonserver.cc, TRITONSERVER_ServerModelStatistics).
 * The fake runs no queue and no separate input/output stage, so compute_infer
 * carries the whole execution time.
 */
export class VersionStatistics {
  private successCount = 0;
  private successNs = 0;
  private failCount = 0;
  private failNs = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private lastInferenceMs = 0;
  private readonly batches = new Map<number, { count: number; ns: number }>();

  recordSuccess(batchSize: number, durationNs: number): void {
    this.successCount++;
    this.successNs += durationNs;
    this.inferenceCount += batchSize;
    this.executionCount++;
    this.lastInferenceMs = Date.now();
    const batch = this.batches.get(batchSize);
    if (batch === undefined) this.batches.set(batchSize, { count: 1, ns: durationNs });
    else {
      batch.count++;
      batch.ns += durationNs;
    }
  }

  recordFailure(durationNs: number): void {
    this.failCount++;
    this.failNs += durationNs;
  }

  get successes(): number {
    return this.successCount;
  }

  get failures(): number {
    return this.failCount;
  }

  toWire(name: string, version: string): WireModelStatistics {
    const zero: WireStatisticDuration = { count: 0, ns: 0 };
    const success = { count: this.successCount, ns: this.successNs };
    return {
      name,
      version,
      last_inference: this.lastInferenceMs,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success,
        fail: { count: this.failCount, ns: this.failNs },
        queue: { count: this.successCount, ns: 0 },
        compute_input: { count: this.successCount, ns: 0 },
        compute_infer: success,
        compute_output: { count: this.successCount, ns: 0 },
        cache_hit: zero,
        cache_miss: zero,
      },
      batch_stats: [...this.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([batchSize, { count, ns }]) => ({
          batch_size: batchSize,
          compute_input: { count, ns: 0 },
          compute_infer: { count, ns },
          compute_output: { count, ns: 0 },
        })),
    };
  }
}
