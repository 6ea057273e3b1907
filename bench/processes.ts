import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Pinned {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Last lines of stderr and stdout, for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

export interface SpawnPinnedOptions {
  name: string;
  /** CPU list for taskset, e.g. "0". */
  cpus: string;
  /** Scheduling niceness (negative: ahead of the box's other work); 0 leaves it alone. */
  nice?: number;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Returns the value to resolve with once a stdout line shows the process is serving. */
  ready: (line: string) => string | undefined;
  timeoutMs: number;
}

const TAIL_LINES = 20;

/**
 * The processes one bench run started, so that every way out of the run
 * (error, Ctrl-C, a closed stdout) takes them down too instead of leaving a
 * pinned proxy or backend behind.
 */
export class ChildProcesses {
  private readonly running = new Set<ChildProcess>();

  add(child: ChildProcess): void {
    this.running.add(child);
    child.once('exit', () => this.running.delete(child));
  }

  /** Synchronous, so it can run in a process 'exit' handler. */
  killAll(): void {
    for (const child of this.running) child.kill('SIGKILL');
    this.running.clear();
  }
}

/**
 * The command line that runs `command` on `cpus` at niceness `nice`. nice
 * and taskset both exec, so the child's pid is the command's own and every
 * thread it starts inherits the CPU list and the priority.
 */
export function pinnedCommand(
  cpus: string,
  nice: number,
  command: string,
  args: string[],
): [string, string[]] {
  const pinned = ['-c', cpus, command, ...args];
  return nice === 0 ? ['taskset', pinned] : ['nice', ['-n', String(nice), 'taskset', ...pinned]];
}

/**
 * Starts `command` pinned to `cpus` and resolves when it prints the line
 * `ready` recognises. taskset execs the command, so the pid is the
 * command's own and /proc/<pid> describes it.
 */
export function spawnPinned(
  options: SpawnPinnedOptions,
  children: ChildProcesses,
): Promise<{ process: Pinned; value: string }> {
  const [command, args] = pinnedCommand(
    options.cpus,
    options.nice ?? 0,
    options.command,
    options.args,
  );
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  const tail = () => lines.join('\n');
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => ((exited = true), resolve())),
  );
  const pinned: Pinned = {
    name: options.name,
    pid: child.pid ?? -1,
    child,
    tail,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
  createInterface({ input: child.stderr! }).on('line', keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void pinned.stop();
      reject(new Error(`${options.name} did not start within ${options.timeoutMs} ms:\n${tail()}`));
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} could not be started: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${signal ?? code}) before serving:\n${tail()}`));
    });
    let found = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      if (found) return;
      const value = options.ready(line);
      if (value === undefined) return;
      found = true;
      clearTimeout(timer);
      resolve({ process: pinned, value });
    });
  });
}

/** The address a fake or the Python backend prints as "listening HOST:PORT". */
export function listeningAddress(line: string): string | undefined {
  const match = /^listening (\S+:\d+)$/.exec(line.trim());
  return match?.[1];
}

/** The port from the proxy's JSON "triton-proxy listening" log line. */
export function proxyPort(line: string): string | undefined {
  if (!line.includes('triton-proxy listening')) return undefined;
  try {
    const entry = JSON.parse(line) as { port?: unknown };
    return typeof entry.port === 'number' ? String(entry.port) : undefined;
  } catch {
    return undefined;
  }
}
