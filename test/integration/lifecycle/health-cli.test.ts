import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startFakeTriton, type FakeTriton } from '../../../src/fake-triton';
import { ensureBuilt, freePort, REPO_ROOT } from './support';

// The `triton-proxy` bin as package.json ships it (what a container health check runs).
const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

/** `triton-proxy health`, with only `env` (plus PATH) in its environment. */
function runHealth(env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'health', '--timeout-ms', '1000'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout: stdout + stderr }));
  });
}

/** The table's rows as column arrays, split on the two-space column gaps. */
function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .map((line) => line.split(/ {2,}/));
}

describe('triton-proxy health (the CLI behind container health checks)', () => {
  let fake: FakeTriton | undefined;

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    fake = await startFakeTriton({ host: '127.0.0.1', port: 0, name: 'health-cli' });
  });

  after(async () => {
    await fake?.stop({ graceMs: 100 });
  });

  it('prints the down server as FAIL in its table and exits non-zero', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const { code, stdout } = await runHealth({
      TRITON_SERVERS: `live=${fake!.address},dead=${dead}`,
    });
    const table = rows(stdout);
    assert.deepEqual(table[0], ['COMPONENT', 'TARGET', 'STATUS', 'DETAIL'], stdout);
    const byTarget = new Map(table.slice(1).map((r) => [r[1], r]));
    assert.equal(byTarget.get(`live (${fake!.address})`)?.[2], 'OK', stdout);
    assert.equal(byTarget.get(`dead (${dead})`)?.[2], 'FAIL', stdout);
    assert.equal(byTarget.get('environment')?.[2], 'OK', stdout);
    assert.equal(code, 1, stdout);
  });

  it('exits 0 when configuration, every server and the state store are healthy', async () => {
    const { code, stdout } = await runHealth({ TRITON_SERVERS: `live=${fake!.address}` });
    const statuses = rows(stdout)
      .slice(1)
      .map((r) => `${r[0]} ${r[2]}`);
    assert.deepEqual(statuses, ['config OK', 'triton OK', 'state OK'], stdout);
    assert.equal(code, 0, stdout);
  });

  it('reports an invalid configuration, naming the key, and exits non-zero', async () => {
    const { code, stdout } = await runHealth({ TRITON_SERVERS: 'broken' });
    const [, config] = rows(stdout);
    assert.equal(config?.[0], 'config');
    assert.equal(config?.[2], 'FAIL');
    assert.match(stdout, /TRITON_SERVERS/);
    assert.equal(code, 1, stdout);
  });
});
