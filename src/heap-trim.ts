import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let collect: GcFunction | undefined;

/** V8's gc(), taken from a fresh context so the proxy's own global gets no `gc`. */
function gcFunction(): GcFunction {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as GcFunction;
  }
  return collect;
}

/**
 * One memory-reducing full GC. Loading the modules grows the young
 * generation to its maximum (2 x 16 MiB semi-spaces) and leaves start-up
 * garbage in the old one; V8 keeps both resident until the next full GC,
 * which an idle proxy does not run. This one shrinks the young generation to
 * 1 MiB (it grows again under load) and bases the old generation's next
 * limit on what is live: idle RSS 100 -> 78 MB. A few milliseconds of pause,
 * so only at start and when idle.
 */
export function trimHeap(): void {
  gcFunction()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * Trims the heap once after each busy period: every `intervalMs` the event
 * loop's utilisation over the interval is read; when it fell below 1% after
 * a period above 5%, the burst is over and its garbage is released. Returns
 * a function that stops the timer.
 */
export function trimHeapWhenIdle(intervalMs: number, onTrim?: () => void): () => void {
  let last = performance.eventLoopUtilization();
  let busySinceTrim = false;
  let afterTrim = false;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    // Freeing what the trim collected (weak callbacks, buffers) runs in the
    // next interval: that is the trim's tail, not a new busy period.
    if (afterTrim) afterTrim = false;
    else if (utilization > 0.05) busySinceTrim = true;
    else if (utilization < 0.01 && busySinceTrim) {
      busySinceTrim = false;
      trimHeap();
      // The trim's own pause must not count as the next busy period.
      last = performance.eventLoopUtilization();
      afterTrim = true;
      onTrim?.();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
