import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/**
 * CPU time and memory of one process, read from /proc: the proxy's cost is
 * measured from outside, so the measurement adds nothing to it.
 */
export class ProcStats {
  private readonly usPerTick: number;

  constructor(
    readonly pid: number,
    ticksPerSecond = clockTicksPerSecond(),
  ) {
    this.usPerTick = 1e6 / ticksPerSecond;
  }

  /** User plus system CPU time of every thread so far, in microseconds. */
  cpuMicros(): number {
    const { user, system } = this.cpuSplit();
    return user + system;
  }

  /** User and system CPU time of every thread so far, in microseconds. */
  cpuSplit(): { user: number; system: number } {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; count fields after its ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(rest[11]) * this.usPerTick, system: Number(rest[12]) * this.usPerTick };
  }

  /**
   * Nanoseconds the process's main thread has spent runnable but waiting for
   * a CPU (/proc/<pid>/schedstat): how much other work on its core held it up.
   */
  runQueueWaitNs(): number {
    try {
      return Number(readFileSync(`/proc/${this.pid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      return 0;
    }
  }

  /** Resident set size now and its peak since the last resetPeak(), in bytes. */
  memory(): { rss: number; peak: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return { rss: kbField(status, 'VmRSS') * 1024, peak: kbField(status, 'VmHWM') * 1024 };
  }

  /** Resets VmHWM to the current RSS (Linux 4.0+; needs the right to write clear_refs). */
  resetPeak(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }
}

function kbField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}
