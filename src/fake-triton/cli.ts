import { parseArgs } from 'node:util';
import { startFakeTriton, type FakeTriton } from './fake-triton';

const USAGE = `usage: fake-triton [--host 127.0.0.1] [--port 0] [--latency-ms 0] [--load-delay-ms 0] [--name triton]
Environment: FAKE_TRITON_HOST, FAKE_TRITON_PORT, FAKE_TRITON_LATENCY_MS, FAKE_TRITON_LOAD_DELAY_MS.
Prints "listening HOST:PORT" once serving; SIGTERM or SIGINT stops it gracefully.`;

export interface CliSettings {
  host: string;
  port: number;
  latencyMs: number;
  loadDelayMs: number;
  name: string;
}

/** Settings from arguments first, then environment, then defaults. */
export function cliSettings(argv: string[], env: NodeJS.ProcessEnv): CliSettings {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'latency-ms': { type: 'string' },
      'load-delay-ms': { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) throw new UsageError(USAGE);
  return {
    host: values.host ?? env['FAKE_TRITON_HOST'] ?? '127.0.0.1',
    port: nonNegative('port', values.port ?? env['FAKE_TRITON_PORT'] ?? '0'),
    latencyMs: nonNegative(
      'latency-ms',
      values['latency-ms'] ?? env['FAKE_TRITON_LATENCY_MS'] ?? '0',
    ),
    loadDelayMs: nonNegative(
      'load-delay-ms',
      values['load-delay-ms'] ?? env['FAKE_TRITON_LOAD_DELAY_MS'] ?? '0',
    ),
    name: values.name ?? 'triton',
  };
}

class UsageError extends Error {}

function nonNegative(key: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new UsageError(`--${key} must be a non-negative integer, got '${value}'\n${USAGE}`);
  }
  return parsed;
}

async function main(): Promise<void> {
  let settings: CliSettings;
  try {
    settings = cliSettings(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
    return;
  }
  const fake: FakeTriton = await startFakeTriton({
    host: settings.host,
    port: settings.port,
    name: settings.name,
    latencyMs: settings.latencyMs,
    loadDelayMs: settings.loadDelayMs,
  });
  console.log(`listening ${fake.address}`);
  const shutdown = () => {
    void fake.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
