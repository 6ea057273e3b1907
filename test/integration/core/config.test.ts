import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config';

const GOOD = { TRITON_SERVERS: 'a=127.0.0.1:8001' };

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('loadConfig accepted a bad configuration');
}

describe('configuration errors', function () {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'triton-proxy-config-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function file(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it('accepts a minimal environment with defaults for everything else', () => {
    const config = loadConfig({ env: GOOD });
    assert.equal(config.http.port, 8000);
    assert.deepEqual(
      config.triton.servers.map((s) => [s.name, s.address]),
      [['a', '127.0.0.1:8001']],
    );
  });

  it('PORT=abc names the port key', () => {
    assert.match(configError({ ...GOOD, PORT: 'abc' }).message, /http\.port/);
  });

  it('PORT out of range names the port key', () => {
    assert.match(configError({ ...GOOD, PORT: '70000' }).message, /http\.port/);
  });

  it('a TRITON_SERVERS entry without a port names TRITON_SERVERS and the entry', () => {
    const message = configError({ TRITON_SERVERS: 'a=triton-a' }).message;
    assert.match(message, /TRITON_SERVERS/);
    assert.match(message, /triton-a/);
  });

  it('duplicate server names name TRITON_SERVERS and the duplicate', () => {
    const message = configError({ TRITON_SERVERS: 'a=h1:8001,a=h2:8001' }).message;
    assert.match(message, /TRITON_SERVERS/);
    assert.match(message, /duplicate Triton server name 'a'/);
  });

  it('no server at all names TRITON_SERVERS', () => {
    assert.match(configError({}).message, /TRITON_SERVERS/);
  });

  it('MODEL_LIMITS junk names MODEL_LIMITS and the entry', () => {
    const message = configError({ ...GOOD, MODEL_LIMITS: 'simple=4:8,junk' }).message;
    assert.match(message, /MODEL_LIMITS/);
    assert.match(message, /'junk'/);
  });

  it('a log level that does not exist names log.level', () => {
    assert.match(configError({ ...GOOD, LOG_LEVEL: 'loud' }).message, /log\.level/);
  });

  it('a negative MAX_BODY_BYTES names http.maxBodyBytes', () => {
    assert.match(configError({ ...GOOD, MAX_BODY_BYTES: '-5' }).message, /http\.maxBodyBytes/);
  });

  it('RETRY_MAX_ATTEMPTS=0 names RETRY_MAX_ATTEMPTS', () => {
    assert.match(configError({ ...GOOD, RETRY_MAX_ATTEMPTS: '0' }).message, /RETRY_MAX_ATTEMPTS/);
  });

  it('a CONFIG_FILE that does not exist names CONFIG_FILE and the path', () => {
    const missing = join(dir, 'missing.yaml');
    const message = configError({ ...GOOD, CONFIG_FILE: missing }).message;
    assert.match(message, /CONFIG_FILE/);
    assert.ok(message.includes(missing));
  });

  it('a CONFIG_FILE that is not valid YAML names CONFIG_FILE', () => {
    const broken = file('broken.yaml', 'http: [unclosed\n');
    assert.match(configError({ ...GOOD, CONFIG_FILE: broken }).message, /CONFIG_FILE/);
  });

  it('an unknown key in the config file is refused, naming it', () => {
    const path = file('unknown.yaml', 'http:\n  prot: 9000\n');
    assert.match(configError({ ...GOOD, CONFIG_FILE: path }).message, /prot/);
  });

  it('a YAML config file with servers as objects loads', () => {
    const path = file(
      'servers.yaml',
      [
        'http:',
        '  port: 9100',
        'triton:',
        '  servers:',
        '    - name: onnx',
        '      address: triton-onnx:8001',
        '      group: cv',
        '      weight: 2',
        '      labels: { zone: a }',
        '    - name: llm',
        '      address: "[::1]:8001"',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ env: { CONFIG_FILE: path } });
    assert.equal(config.http.port, 9100);
    assert.deepEqual(
      config.triton.servers.map((s) => ({
        name: s.name,
        address: s.address,
        group: s.group,
        weight: s.weight,
        labels: s.labels,
      })),
      [
        {
          name: 'onnx',
          address: 'triton-onnx:8001',
          group: 'cv',
          weight: 2,
          labels: { zone: 'a' },
        },
        { name: 'llm', address: '[::1]:8001', group: 'default', weight: 1, labels: {} },
      ],
    );
  });

  it('a server object in the file without a port names its position', () => {
    const path = file(
      'bad-server.yaml',
      'triton:\n  servers:\n    - name: onnx\n      address: triton-onnx\n',
    );
    const message = configError({ CONFIG_FILE: path }).message;
    assert.match(message, /triton\.servers\[0\]/);
  });

  it('environment variables override the config file', () => {
    const path = file(
      'override.yaml',
      'http:\n  port: 9100\n  maxBodyBytes: 1024\ntriton:\n  servers: file=file-host:8001\n',
    );
    const config = loadConfig({
      env: { CONFIG_FILE: path, PORT: '9200', TRITON_SERVERS: 'env=env-host:8001' },
    });
    assert.equal(config.http.port, 9200);
    assert.equal(config.http.maxBodyBytes, 1024);
    assert.deepEqual(
      config.triton.servers.map((s) => s.name),
      ['env'],
    );
  });

  it('a JSON config file loads too', () => {
    const path = file(
      'config.json',
      JSON.stringify({ http: { port: 9300 }, triton: { servers: 'j=json-host:8001' } }),
    );
    const config = loadConfig({ env: { CONFIG_FILE: path } });
    assert.equal(config.http.port, 9300);
    assert.equal(config.triton.servers[0]!.name, 'j');
  });

  describe('the process entry', () => {
    interface Exit {
      code: number | null;
      stderr: string;
    }

    function runMain(env: Record<string, string>): Promise<Exit> {
      const root = resolve(__dirname, '../../..');
      // `node --import tsx` is what `npx tsx` runs, without npm's and tsx's own start-up processes.
      // Only PATH and HOME from the test's environment: nothing else may configure the proxy.
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      return new Promise((done) => child.on('close', (code) => done({ code, stderr })));
    }

    it('exits with code 2 and names the key when the environment is bad', async function () {
      this.timeout(15000);
      const exit = await runMain({ TRITON_SERVERS: 'a=127.0.0.1:8001', PORT: 'abc' });
      assert.equal(exit.code, 2, exit.stderr);
      assert.match(exit.stderr, /triton-proxy: .*http\.port/);
      assert.doesNotMatch(exit.stderr, /\n\s+at /, 'no stack trace');
    });
  });
});
