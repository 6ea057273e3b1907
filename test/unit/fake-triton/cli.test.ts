import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { cliSettings } from '../../../src/fake-triton/cli';
import { findProtosDir } from '../../../src/fake-triton';
import { TestClient } from './grpc-client';

const ROOT = path.resolve(__dirname, '../../..');

describe('fake Triton: command line and packaging', () => {
  it('takes settings from arguments before environment before defaults', () => {
    assert.deepEqual(cliSettings([], {}), {
      host: '127.0.0.1',
      port: 0,
      latencyMs: 0,
      loadDelayMs: 0,
      name: 'triton',
    });
    const env = { FAKE_TRITON_PORT: '9001', FAKE_TRITON_LATENCY_MS: '5' };
    assert.equal(cliSettings([], env).port, 9001);
    assert.equal(cliSettings(['--port', '9002'], env).port, 9002);
    assert.equal(cliSettings(['--latency-ms', '7'], env).latencyMs, 7);
  });

  it('refuses a port that is not a non-negative integer, naming the option', () => {
    assert.throws(
      () => cliSettings(['--port', 'eighty'], {}),
      /--port must be a non-negative integer/,
    );
    assert.throws(() => cliSettings([], { FAKE_TRITON_LATENCY_MS: '-1' }), /--latency-ms/);
  });

  it('finds protos/ from the source tree and from the compiled tree', () => {
    const expected = path.join(ROOT, 'protos');
    assert.equal(findProtosDir(path.join(ROOT, 'src', 'fake-triton')), expected);
    assert.equal(findProtosDir(path.join(ROOT, 'dist', 'src', 'fake-triton')), expected);
    assert.throws(() => findProtosDir('/'), /cannot find protos/);
  });

  it('runs as a process that prints its address, serves, and stops on SIGTERM', async function () {
    this.timeout(15000);
    const child = spawn(
      process.execPath,
      ['--require', 'tsx/cjs', path.join(ROOT, 'src/fake-triton/cli.ts'), '--port', '0'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const lines = createInterface({ input: child.stdout! });
      const [line] = (await once(lines, 'line')) as [string];
      const match = /^listening (127\.0\.0\.1:\d+)$/.exec(line);
      assert.ok(match, `unexpected first line: ${line}`);
      const client = new TestClient(match[1]!);
      assert.deepEqual(await client.call('ServerLive', {}), { live: true });
      client.close();
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
