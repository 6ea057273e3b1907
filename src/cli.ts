#!/usr/bin/env node
import './require-node';
import { formatHealthTable, runHealthCheck } from './health';

const USAGE = `usage: triton-proxy health [--timeout-ms N]
       triton-proxy --help

  health   check configuration, every Triton server and the state store;
           prints a table and exits 1 when anything fails (container health checks)

The proxy itself starts with \`npm start\` (node dist/src/main.js).`;

async function cli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Help that was asked for is the answer (stdout, exit 0); a wrong command is an error.
  const askedForHelp = (arg: string | undefined) =>
    arg === undefined || arg === '--help' || arg === '-h' || arg === 'help';
  if (askedForHelp(command) || (command === 'health' && rest.some(askedForHelp))) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command !== 'health') {
    process.stderr.write(`triton-proxy: unknown command '${command}'\n\n${USAGE}\n`);
    return 2;
  }
  let timeoutMs = 3000;
  const i = rest.indexOf('--timeout-ms');
  if (i >= 0) {
    timeoutMs = Number(rest[i + 1]);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      process.stderr.write('--timeout-ms needs a positive number\n');
      return 2;
    }
  }
  const rows = await runHealthCheck({ timeoutMs });
  process.stdout.write(`${formatHealthTable(rows)}\n`);
  return rows.every((r) => r.status === 'ok') ? 0 : 1;
}

cli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`triton-proxy health: ${String(err)}\n`);
    process.exit(1);
  },
);
