import type { Logger } from '../../../src/model-state';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  meta: Record<string, unknown> | undefined;
}

/** A logger that keeps its lines, so tests can assert what operators would see. */
export function captureLogger(): Logger & {
  lines: LogLine[];
  at(level: LogLine['level']): string[];
} {
  const lines: LogLine[] = [];
  const log =
    (level: LogLine['level']) =>
    (message: string, meta?: Record<string, unknown>): void => {
      lines.push({ level, message, meta });
    };
  return {
    lines,
    at: (level) => lines.filter((line) => line.level === level).map((line) => line.message),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the condition holds; returns how long it took, or throws after timeoutMs. */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  what = 'condition',
): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > timeoutMs) {
      throw new Error(`${what} not reached within ${timeoutMs} ms`);
    }
    await sleep(2);
  }
  return performance.now() - started;
}

let counter = 0;

/** A key prefix no other test uses, so tests can share one Redis (or REDIS_URL). */
export function uniquePrefix(name: string): string {
  counter += 1;
  return `test:${name}:${process.pid}:${counter}:${Date.now()}:`;
}
