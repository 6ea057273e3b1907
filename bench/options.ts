import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CASE_IDS, type CaseId } from './cases';

export const BACKEND_IDS = ['grpc-js', 'c-core'] as const;
export type BackendId = (typeof BACKEND_IDS)[number];
/**
 * direct: grpc-js client; direct-h2: the lean node:http2 ModelInfer path;
 * proxy: REST through the proxy; proxy-grpc: grpc-js client to the proxy's gRPC
 * front end; rest-proxy: REST through kserve/rest-proxy (the Go peer).
 */
export const MODE_IDS = ['direct', 'direct-h2', 'proxy', 'proxy-grpc', 'rest-proxy'] as const;
export type ModeId = (typeof MODE_IDS)[number];

export interface BenchOptions {
  cases: CaseId[];
  backends: BackendId[];
  modes: ModeId[];
  durationMs: number;
  warmupMs: number;
  /** Each (case, path) is measured this many times, interleaved; the summary shows medians. */
  repeat: number;
  /** kserve/rest-proxy binary (scripts/build-rest-proxy.sh); without it the peer is not run. */
  restProxyBin?: string;
  /** Seconds of 4 MiB load through the proxy while RSS is sampled; 0 = no soak. */
  soakSeconds: number;
  soakIntervalMs: number;
  /** Instead of the table: kernel counts per request at c=1 over this many requests; 0 = off. */
  perRequest: number;
  /** Extra node/V8 flags for the proxy process. */
  proxyNodeFlags: string[];
  /** Write a V8 CPU profile of the proxy into this directory. */
  cpuProfDir?: string;
  /** CPU lists for taskset: the proxy alone on one, everything else on the other. */
  proxyCpus: string;
  loadCpus: string;
  /**
   * Niceness of every process of the run. On a box shared with other work a
   * negative value (root only) keeps the measured processes from waiting
   * behind it, so the rows show what each path costs rather than its share.
   */
  nice: number;
  python: string;
  out: string;
  cacheDir: string;
}

export const USAGE = `usage: npm run bench -- [options]
  --cases LIST       comma-separated, from ${CASE_IDS.join(',')} (default all; env BENCH_CASES)
  --backends LIST    grpc-js,c-core (default both; env BENCH_BACKENDS)
  --modes LIST       direct (grpc-js client), direct-h2 (lean node:http2 client), proxy (REST),
                     proxy-grpc (grpc-js client to the proxy's gRPC front end), rest-proxy
                     (default direct,proxy,proxy-grpc, and rest-proxy when its binary is given)
  --rest-proxy-bin F kserve/rest-proxy binary, the Go peer (env REST_PROXY_BIN;
                     build it with scripts/build-rest-proxy.sh)
  --repeat N         measure each case and path N times, interleaved; summary of medians
                     (default 1; env BENCH_REPEAT)
  --duration S       timed window per measurement, seconds (default 3; env BENCH_DURATION_S)
  --warmup S         warmup before each window, seconds (default 1)
  --soak S           instead of the table: S seconds of 4 MiB binary load through the proxy,
                     sampling its RSS (default off; env BENCH_SOAK_S)
  --soak-interval S  RSS sampling period during a soak (default 5)
  --per-request N    instead of the table: per small request at c=1, over N requests, the CPU
                     (user/system, busiest thread), context switches, page faults and syscalls
                     (strace -c, a second pass) of the proxy and rest-proxy (default off)
  --cpu-prof DIR     run the proxy with node --cpu-prof, profiles written to DIR
  --proxy-node-flags "F ..."  extra node/V8 flags for the proxy (env BENCH_PROXY_NODE_FLAGS)
  --proxy-cpus L     taskset CPU list of the proxy (default 1)
  --load-cpus L      taskset CPU list of load generator and backends (default 0)
  --nice N           niceness of proxy, peer, backends and load generator (default 0; env
                     BENCH_NICE; negative needs root: on a shared box it keeps other work
                     from setting the pace)
  --python BIN       python used to make the grpcio venv (default python3; env BENCH_PYTHON)
  --out FILE         JSON results (default .cache/bench/latest.json)
Proxy settings come from the environment as usual (GRPC_FLOW_CONTROL_WINDOW_BYTES, ...);
the direct client is given the same channel settings.`;

export class UsageError extends Error {}

function list<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T[] {
  if (value === undefined || value === '') return [...allowed];
  const items = value.split(',').map((s) => s.trim());
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new UsageError(`--${name}: '${item}' is not one of ${allowed.join(', ')}`);
    }
  }
  return items as T[];
}

function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative number of seconds, got '${value}'`);
  return n;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, root: string): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      cases: { type: 'string' },
      backends: { type: 'string' },
      modes: { type: 'string' },
      'rest-proxy-bin': { type: 'string' },
      repeat: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      soak: { type: 'string' },
      'soak-interval': { type: 'string' },
      'per-request': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'proxy-node-flags': { type: 'string' },
      'proxy-cpus': { type: 'string' },
      'load-cpus': { type: 'string' },
      nice: { type: 'string' },
      python: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) throw new UsageError(USAGE);
  const cacheDir = `${root}/.cache/bench`;
  const restProxyBin = values['rest-proxy-bin'] ?? (env['REST_PROXY_BIN'] || undefined);
  if (restProxyBin !== undefined && !existsSync(restProxyBin))
    throw new UsageError(`--rest-proxy-bin: ${restProxyBin} does not exist`);
  const modes = list(
    'modes',
    values.modes ??
      (restProxyBin ? 'direct,proxy,proxy-grpc,rest-proxy' : 'direct,proxy,proxy-grpc'),
    MODE_IDS,
  );
  if (modes.includes('rest-proxy') && !restProxyBin)
    throw new UsageError('mode rest-proxy needs --rest-proxy-bin or REST_PROXY_BIN');
  const repeat = Number(values.repeat ?? env['BENCH_REPEAT'] ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new UsageError(`--repeat must be a positive integer, got '${values.repeat}'`);
  const perRequest = Number(values['per-request'] ?? 0);
  if (!Number.isInteger(perRequest) || perRequest < 0)
    throw new UsageError(
      `--per-request must be a non-negative number of requests, got '${values['per-request']}'`,
    );
  const nice = Number(values.nice ?? env['BENCH_NICE'] ?? 0);
  if (!Number.isInteger(nice) || nice < -20 || nice > 19)
    throw new UsageError(`--nice must be an integer from -20 to 19, got '${values.nice}'`);
  return {
    cases: list('cases', values.cases ?? env['BENCH_CASES'], CASE_IDS),
    backends: list('backends', values.backends ?? env['BENCH_BACKENDS'], BACKEND_IDS),
    modes,
    repeat,
    restProxyBin,
    durationMs: seconds('duration', values.duration ?? env['BENCH_DURATION_S'], 3) * 1000,
    warmupMs: seconds('warmup', values.warmup, 1) * 1000,
    soakSeconds: seconds('soak', values.soak ?? env['BENCH_SOAK_S'], 0),
    soakIntervalMs: seconds('soak-interval', values['soak-interval'], 5) * 1000,
    perRequest,
    cpuProfDir: values['cpu-prof'],
    proxyNodeFlags: (values['proxy-node-flags'] ?? env['BENCH_PROXY_NODE_FLAGS'] ?? '')
      .split(' ')
      .filter((f) => f !== ''),
    proxyCpus: values['proxy-cpus'] ?? '1',
    loadCpus: values['load-cpus'] ?? '0',
    nice,
    python: values.python ?? env['BENCH_PYTHON'] ?? 'python3',
    out: values.out ?? `${cacheDir}/latest.json`,
    cacheDir,
  };
}
