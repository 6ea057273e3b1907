import type { Logger } from '../logger';

/** What the exporter reports when a batch of spans could not be delivered. */
export type ExportFailureListener = (spans: number, error: Error | undefined) => void;

/**
 * Makes lost spans visible without flooding the log: every failed batch
 * counts its spans (`countDropped`, a metric), and a warning names the
 * collector's error at most once per interval, with the spans dropped since
 * the last warning. A collector that is down for an hour costs 60 lines, not
 * one per batch; the OpenTelemetry SDK itself reports export errors only to
 * its diagnostic logger, which is silent unless configured.
 */
export class ExportFailureReporter {
  private lastWarnAt = -Infinity;
  private droppedSinceWarn = 0;

  constructor(
    private readonly logger: Logger,
    private readonly countDropped: (spans: number) => void,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  readonly report: ExportFailureListener = (spans, error) => {
    this.countDropped(spans);
    this.droppedSinceWarn += spans;
    const at = this.now();
    if (at - this.lastWarnAt < this.intervalMs) return;
    this.logger.warn('trace export failed; spans dropped', {
      spansDropped: this.droppedSinceWarn,
      error: describe(error),
    });
    this.lastWarnAt = at;
    this.droppedSinceWarn = 0;
  };
}

/** The exporter's error with its code when it has one (the collector's HTTP status, or a Node error code). */
function describe(error: Error | undefined): string {
  if (error === undefined) return 'unknown error';
  const code = (error as { code?: unknown }).code;
  return code === undefined || String(error.message).includes(String(code))
    ? error.message
    : `${error.message} (${String(code)})`;
}
