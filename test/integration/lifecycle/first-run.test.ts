import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { ensureBuilt, freePort, MAIN_JS, REPO_ROOT, SIMPLE_BODY } from './support';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(node: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A `node` older than 22 on this machine (Debian's is 20), if there is one. */
function oldNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    const probe = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (probe.status === 0 && Number(probe.stdout.split('.')[0]) < 22) return candidate;
  }
  return undefined;
}

describe("a newcomer's first run", () => {
  before(function () {
    this.timeout(120_000);
    ensureBuilt();
  });

  describe('the CLI', () => {
    for (const args of [['--help'], ['-h'], [], ['health', '--help']]) {
      it(`\`triton-proxy ${args.join(' ')}\` prints its usage on stdout and exits 0`, async () => {
        const r = await run(process.execPath, [CLI, ...args]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^usage: triton-proxy health/);
        assert.equal(r.stderr, '');
      });
    }

    it('an unknown command is an error on stderr with exit 2', async () => {
      const r = await run(process.execPath, [CLI, 'frobnicate']);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^triton-proxy: unknown command 'frobnicate'/);
    });
  });

  describe('on a Node older than 22', () => {
    const node = oldNode();

    it('npm start refuses at once and says how to use the provisioned Node, before any V8 warning', async function () {
      if (node === undefined) this.skip();
      const r = await run(node!, [MAIN_JS]);
      assert.equal(r.code, 1);
      const first = r.stderr.split('\n')[0] ?? '';
      assert.match(first, /^triton-proxy needs Node\.js >= 22 \(this is 2\d\./);
      assert.ok(first.includes('scripts/ensure-node.sh'), first);
      assert.ok(!r.stderr.includes('unrecognized flag'), r.stderr);
    });

    it('the CLI refuses the same way', async function () {
      if (node === undefined) this.skip();
      const r = await run(node!, [CLI, 'health']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^triton-proxy needs Node\.js >= 22/);
    });
  });

  describe('npm run demo', () => {
    it('builds, starts the proxy with its demo backend, answers an inference, and stops promptly on Ctrl-C', async function () {
      this.timeout(180_000);
      const port = await freePort();
      // Its own process group, as a terminal runs it: Ctrl-C signals the whole group.
      const child = spawn('npm', ['run', 'demo'], {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          PORT: String(port),
          GRPC_PORT: '0',
          // npm test is using node_modules: a reinstall (after a rebase made the lock
          // file newer) would delete it under the tests still to run.
          DEMO_SKIP_INSTALL: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => resolve(code)),
      );
      try {
        const deadline = Date.now() + 150_000;
        while (!output.includes('Demo backend ready')) {
          if (Date.now() > deadline || child.exitCode !== null)
            assert.fail(`the demo did not start:\n${output.slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(output.includes(`curl -s localhost:${port}/v2/models/simple/infer`), output);
        const res = await fetch(`http://127.0.0.1:${port}/v2/models/simple/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: SIMPLE_BODY,
        });
        assert.equal(res.status, 200);
        const answer = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
        assert.deepEqual(
          answer.outputs.find((o) => o.name === 'OUTPUT0')?.data,
          Array.from({ length: 16 }, (_, i) => i + 1),
        );

        const signalledAt = Date.now();
        process.kill(-child.pid!, 'SIGINT');
        await exited;
        // npm may exit before the proxy it started: the proxy is stopped when its port is.
        while (await listening(port)) {
          if (Date.now() - signalledAt > 10_000) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        const stopMs = Date.now() - signalledAt;
        console.log(`      demo stopped ${stopMs} ms after Ctrl-C`);
        // The default SHUTDOWN_DELAY_MS alone is 5000 ms; without it the stop takes
        // well under a second, so 4 s leaves room for a loaded machine.
        assert.ok(stopMs < 4000, `stopped ${stopMs} ms after SIGINT:\n${output.slice(-2000)}`);
      } finally {
        if (child.exitCode === null && child.signalCode === null)
          process.kill(-child.pid!, 'SIGKILL');
      }
    });
  });
});
