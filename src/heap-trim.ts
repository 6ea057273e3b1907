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
 * Decides, from the event loop's utilisation over successive intervals, when
 * a burst of work is over: the first interval below 1% after one above 5%.
 * The interval right after a trim is skipped: freeing what the trim
 * collected (weak callbacks, buffers) is the trim's tail, not new work.
 */
export class BurstEnd {
  private busy = false;
  private afterTrim = false;

  /** Feeds one interval's utilisation (0..1); true when the heap should be trimmed now. */
  next(utilization: number): boolean {
    if (this.afterTrim) {
      this.afterTrim = false;
      return false;
    }
    if (utilization > 0.05) {
      this.busy = true;
      return false;
    }
    if (utilization < 0.01 && this.busy) {
      this.busy = false;
      this.afterTrim = true;
      return true;
    }
    return false;
  }
}

/**
 * Trims the heap once after each busy period (see BurstEnd), reading the
 * event loop's utilisation every `intervalMs`. Returns a function that stops
 * the timer.
 */
export function trimHeapWhenIdle(intervalMs: number): () => void {
  let last = performance.eventLoopUtilization();
  const burst = new BurstEnd();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (burst.next(utilization)) {
      trimHeap();
      // The trim's own pause must not count as the next busy period.
      last = performance.eventLoopUtilization();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
