import { loadConfig } from '../../src/config';
import { startProxy, type Proxy } from '../../src/proxy';
import { silentLogger, type Logger } from '../../src/observability';
import { startFakeTriton, type FakeTriton, type FakeTritonOptions } from '../../src/fake-triton';
import type { Resolver } from '../../src/fleet';

export interface TestProxy {
  proxy: Proxy;
  url: string;
  close(): Promise<void>;
}

/** Starts the real proxy in-process on a free loopback port. */
export async function startTestProxy(
  env: Record<string, string>,
  options: { logger?: Logger; resolver?: Resolver } = {},
): Promise<TestProxy> {
  const config = loadConfig({
    env: {
      PORT: '0',
      HOST: '127.0.0.1',
      // Off unless a test asks for it: many proxies run at once and 8001 is one port.
      GRPC_PORT: '0',
      LOG_LEVEL: 'error',
      TRITON_HEALTH_INTERVAL_MS: '200',
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_GRACE_MS: '2000',
      ...env,
    },
  });
  const proxy = await startProxy(config, {
    logger: options.logger ?? silentLogger,
    defaultMetrics: false,
    resolver: options.resolver,
  });
  return { proxy, url: `http://127.0.0.1:${proxy.port()}`, close: () => proxy.close() };
}

export async function startFakes(
  count: number,
  options: FakeTritonOptions = {},
): Promise<FakeTriton[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      startFakeTriton({ host: '127.0.0.1', port: 0, name: `fake${i}`, ...options }),
    ),
  );
}

export function serversEnv(fakes: readonly FakeTriton[]): string {
  return fakes.map((f, i) => `t${i}=${f.address}`).join(',');
}

/** Polls until `check` returns true, or fails after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The `simple` model request body (INT32 [1,16] each). */
export function simpleRequest(a: number[], b: number[]): Record<string, unknown> {
  return {
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: a },
      { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: b },
    ],
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}

// ---- HTTP answers, the binary tensor extension, raw sockets and exact JSON ----

import { connect as connectTcp } from 'node:net';

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  /** The body parsed as JSON when it is JSON (empty object for an empty body). */
  json: Record<string, unknown>;
}

/** Any request over real HTTP; the body is parsed as JSON when the answer says it is JSON. */
export async function httpRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<HttpAnswer> {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: init.headers,
    body:
      init.body === undefined
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : new Uint8Array(init.body),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const text = body.toString('utf8');
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  const json = isJson && text !== '' ? (JSON.parse(text) as Record<string, unknown>) : {};
  return { status: res.status, headers: res.headers, body, text, json };
}

/** A binary-extension request body: the JSON header, then the tensors' bytes in order. */
export function binaryBody(
  header: unknown,
  tensors: readonly Buffer[],
): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

/** POSTs a binary-extension request (Inference-Header-Content-Length set). */
export function postBinary(
  url: string,
  header: unknown,
  tensors: readonly Buffer[],
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const { body, headerLength } = binaryBody(header, tensors);
  return httpRequest(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
      ...headers,
    },
    body,
  });
}

export interface BinaryInferAnswer {
  header: Record<string, unknown>;
  /** Bytes of each output sent as binary, by output name. */
  binary: Map<string, Buffer>;
}

/**
 * Splits an inference answer into its JSON header and the bytes of each
 * binary output (outputs carrying `binary_data_size`, in output order).
 */
export function parseBinaryAnswer(answer: HttpAnswer): BinaryInferAnswer {
  const lengthHeader = answer.headers.get('inference-header-content-length');
  const headerLength = lengthHeader === null ? answer.body.length : Number(lengthHeader);
  const header = JSON.parse(answer.body.toString('utf8', 0, headerLength)) as Record<
    string,
    unknown
  >;
  const binary = new Map<string, Buffer>();
  let offset = headerLength;
  for (const out of (header.outputs ?? []) as Array<{
    name: string;
    parameters?: Record<string, unknown>;
  }>) {
    const size = out.parameters?.binary_data_size;
    if (typeof size !== 'number') continue;
    binary.set(out.name, answer.body.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== answer.body.length) {
    throw new Error(
      `binary answer has ${answer.body.length - offset} bytes not claimed by any output`,
    );
  }
  return { header, binary };
}

/** BYTES raw layout: each element a 4-byte little-endian length, then its bytes. */
export function bytesTensor(elements: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(
    elements.flatMap((e) => {
      const data = typeof e === 'string' ? Buffer.from(e, 'utf8') : e;
      const length = Buffer.alloc(4);
      length.writeUInt32LE(data.length, 0);
      return [length, data];
    }),
  );
}

/** JSON text in which BigInt values are written as plain integer literals (exact 64-bit values). */
export function stringifyExact(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? `\u0000${v.toString()}\u0000` : v,
  ).replace(/"\\u0000(-?\d+)\\u0000"/g, '$1');
}

/** JSON.parse that keeps integers beyond 2^53 exact, as BigInt (reads each number's source text). */
export function parseJsonExact(text: string): unknown {
  const revive = (_key: string, value: unknown, context?: { source?: string }): unknown =>
    typeof value === 'number' &&
    Number.isInteger(value) &&
    !Number.isSafeInteger(value) &&
    context?.source !== undefined &&
    /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value;
  return JSON.parse(text, revive as (key: string, value: unknown) => unknown);
}

export interface RawHttpAnswer {
  status: number;
  /** Response head: the status line and the headers as sent. */
  head: string;
  body: string;
}

/**
 * Writes bytes to the proxy's TCP socket as they are (chunked bodies, lying
 * Content-Length) and reads the answer until the server closes or the
 * declared body has arrived. A reset after the answer (the server stopped
 * reading an oversized body) still yields the answer.
 */
export function rawHttp(
  url: string,
  request: Buffer | string,
  timeoutMs = 5000,
): Promise<RawHttpAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      const data = Buffer.concat(chunks).toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (err) {
          settled = true;
          clearTimeout(timer);
          socket.destroy();
          reject(err);
        }
        return;
      }
      const head = data.slice(0, end);
      const body = data.slice(end + 4);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!err && (!length || Buffer.byteLength(body, 'latin1') < Number(length[1]))) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        status: Number(head.split(' ')[1]),
        head,
        body: Buffer.from(body, 'latin1').toString('utf8'),
      });
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      finish();
    });
    socket.on('end', () => finish(new Error('connection closed before a full answer')));
    socket.on('close', () => finish(new Error('connection closed before a full answer')));
    socket.on('error', (err) => finish(err));
    socket.write(request);
  });
}
