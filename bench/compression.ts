import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, get, request } from 'node:http';
import { dirname, join } from 'node:path';
import { defaultModels, startFakeTriton } from '../src/fake-triton';

/**
 * What response compression costs the proxy: the same inference answers
 * asked without Accept-Encoding, with gzip and with deflate, in one run.
 * Proxy CPU per request is read from /proc (all its threads, zlib's
 * threadpool included); the fake Triton runs in this process.
 *
 *   npm run bench:compression -- [--reps 30] [--level 1]
 */

const log = (line: string) => process.stdout.write(`${line}\n`);
const distDir = dirname(__dirname);

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime + stime, in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Answer {
  bytes: number;
  encoding: string | undefined;
}

function post(
  agent: Agent,
  port: number,
  body: Buffer,
  headers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v2/models/identity_fp32/infer',
        method: 'POST',
        headers,
        agent,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve({ bytes, encoding: res.headers['content-encoding'] })
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function ready(port: number): Promise<boolean> {
  return new Promise((resolve) =>
    get(`http://127.0.0.1:${port}/health/ready`, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false)),
  );
}

function cases(): Array<{ label: string; body: Buffer; headers: Record<string, string> }> {
  const n = 1 << 20;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = Math.sin(i) * 100;
  const tensor = Buffer.from(values.buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'INPUT0',
          datatype: 'FP32',
          shape: [1, n],
          parameters: { binary_data_size: tensor.length },
        },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    }),
  );
  const m = 65536;
  const json = JSON.stringify({
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, m], data: Array.from(values.subarray(0, m)) },
    ],
  });
  return [
    {
      label: '4 MiB FP32, binary answer',
      body: Buffer.concat([header, tensor]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
    },
    {
      label: '64 Ki FP32, JSON answer',
      body: Buffer.from(json),
      headers: { 'content-type': 'application/json' },
    },
  ];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i < 0 ? fallback : Number(args[i + 1]);
  };
  const reps = option('--reps', 30);
  const level = option('--level', 1);
  const fake = await startFakeTriton({ host: '127.0.0.1', port: 0, models: defaultModels() });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proxy = spawn(process.execPath, [join(distDir, 'src', 'main.js')], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      GRPC_PORT: '0',
      TRITON_SERVERS: `bench=${fake.address}`,
      RESPONSE_COMPRESSION_LEVEL: String(level),
      LOG_LEVEL: 'error',
    },
    stdio: 'inherit',
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  try {
    for (let i = 0; i < 100 && !(await ready(port)); i++)
      await new Promise((r) => setTimeout(r, 100));
    log(`zlib level ${level}, ${reps} requests per row at concurrency 2`);
    log('| answer | Accept-Encoding | proxy CPU / request | bytes on the wire | wall / request |');
    log('|---|---|---|---|---|');
    for (const c of cases()) {
      for (const encoding of [undefined, 'gzip', 'deflate']) {
        const headers =
          encoding === undefined ? c.headers : { ...c.headers, 'accept-encoding': encoding };
        for (let i = 0; i < 5; i++) await post(agent, port, c.body, headers);
        const cpu0 = cpuMs(proxy.pid!);
        const started = Date.now();
        let last: Answer = { bytes: 0, encoding: undefined };
        await Promise.all(
          [0, 1].map(async () => {
            for (let i = 0; i < reps / 2; i++) last = await post(agent, port, c.body, headers);
          }),
        );
        const cpu = (cpuMs(proxy.pid!) - cpu0) / reps;
        log(
          `| ${c.label} | ${encoding ?? '(none)'} -> ${last.encoding ?? 'identity'} | ${cpu.toFixed(1)} ms | ` +
            `${(last.bytes / 1024).toFixed(0)} KiB | ${((Date.now() - started) / reps).toFixed(1)} ms |`,
        );
      }
    }
  } finally {
    proxy.kill('SIGKILL');
    agent.destroy();
    await fake.stop({ graceMs: 0 });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:compression: ${String(err)}\n`);
  process.exit(1);
});
