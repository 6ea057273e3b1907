import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants as h2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { GrpcCallError } from '../../../src/triton/grpc-call-error';
import {
  Http2UnaryChannel,
  type Http2UnaryOptions,
  type UnaryRequest,
} from '../../../src/triton/http2-unary';
import { echo, grpcFrame, reply, startRawGrpcServer, type RawGrpcServer } from './raw-grpc-server';

const PATH = '/inference.GRPCInferenceService/ModelInfer';

function options(address: string, overrides: Partial<Http2UnaryOptions> = {}): Http2UnaryOptions {
  return {
    address,
    maxMessageBytes: 1024 * 1024,
    flowControlWindowBytes: 4 * 1024 * 1024,
    maxFrameBytes: 16 * 1024,
    keepaliveTimeMs: 0,
    keepaliveTimeoutMs: 1000,
    connectTimeoutMs: 1000,
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    ...overrides,
  };
}

function request(message: Buffer, overrides: Partial<UnaryRequest> = {}): UnaryRequest {
  return { path: PATH, frame: [grpcFrame(message)], deadline: Date.now() + 5000, ...overrides };
}

function call(channel: Http2UnaryChannel, req: UnaryRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    channel.call(req, (err, message) => (err ? reject(err) : resolve(message!)));
  });
}

async function failure(promise: Promise<unknown>): Promise<GrpcCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GrpcCallError, `a GrpcCallError, got ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
}

describe('lean unary gRPC over node:http2', () => {
  let server: RawGrpcServer;
  let channel: Http2UnaryChannel;

  beforeEach(async () => {
    server = await startRawGrpcServer(echo);
    channel = new Http2UnaryChannel(options(server.address));
  });

  afterEach(async () => {
    channel.close();
    await server.close();
  });

  it('returns the reply message and sends the headers gRPC requires, deadline and metadata included', async () => {
    const answer = await call(
      channel,
      request(Buffer.from('ping'), { metadata: { 'x-request-id': 'r-1' } }),
    );
    assert.equal(answer.toString(), 'ping');
    const headers = server.lastHeaders()!;
    assert.equal(headers[':method'], 'POST');
    assert.equal(headers[':path'], PATH);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.equal(headers['te'], 'trailers');
    assert.match(String(headers['grpc-timeout']), /^\d{1,8}m$/);
    assert.ok(Number(String(headers['grpc-timeout']).slice(0, -1)) <= 5000);
    assert.equal(headers['x-request-id'], 'r-1');
  });

  it('sends a frame given in pieces as one message', async () => {
    const whole = grpcFrame(Buffer.from('abcdefgh'));
    const answer = await call(
      channel,
      request(Buffer.alloc(0), {
        frame: [whole.subarray(0, 3), whole.subarray(3, 9), whole.subarray(9)],
      }),
    );
    assert.equal(answer.toString(), 'abcdefgh');
  });

  it('moves a multi-megabyte message both ways over one connection', async () => {
    channel.close();
    channel = new Http2UnaryChannel(options(server.address, { maxMessageBytes: 16 * 1024 * 1024 }));
    const big = Buffer.alloc(9 * 1024 * 1024 + 3);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const answers = await Promise.all([call(channel, request(big)), call(channel, request(big))]);
    for (const a of answers) assert.ok(a.equals(big));
    assert.equal(server.sessions(), 1);
  });

  it('reports a non-OK status with its percent-decoded message and the trailers', async () => {
    server.setHandler((stream) =>
      reply(stream, undefined, status.INVALID_ARGUMENT, 'unexpected input "IN 0": é 100%'),
    );
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(err.details, 'unexpected input "IN 0": é 100%');
    assert.equal(err.metadata['grpc-status'], '3');
  });

  it('reads the status of a trailers-only answer', async () => {
    server.setHandler((stream) =>
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '5',
          'grpc-message': 'no model',
        },
        { endStream: true },
      ),
    );
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.NOT_FOUND);
    assert.equal(err.details, 'no model');
  });

  it('maps an HTTP error status without grpc-status as gRPC does', async () => {
    server.setHandler((stream) => stream.respond({ ':status': 503 }, { endStream: true }));
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.UNAVAILABLE);
    assert.equal(err.details, 'Received HTTP status code 503');
  });

  it('fails a stream that ends without a status as INTERNAL', async () => {
    server.setHandler((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(grpcFrame(Buffer.from('y')));
    });
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.INTERNAL);
    assert.match(err.details, /without gRPC status/);
  });

  it('maps RST_STREAM codes the way grpc-js does', async () => {
    const cases: Array<[number, status]> = [
      [h2.NGHTTP2_REFUSED_STREAM, status.UNAVAILABLE],
      [h2.NGHTTP2_CANCEL, status.CANCELLED],
      [h2.NGHTTP2_ENHANCE_YOUR_CALM, status.RESOURCE_EXHAUSTED],
      [h2.NGHTTP2_INTERNAL_ERROR, status.INTERNAL],
    ];
    for (const [rst, expected] of cases) {
      server.setHandler((stream) => stream.close(rst));
      const err = await failure(call(channel, request(Buffer.from('x'))));
      assert.equal(err.code, expected, `RST_STREAM ${rst}`);
    }
    assert.equal(server.sessions(), 1, 'a reset stream leaves the connection usable');
  });

  it('refuses a reply over the limit when its header arrives, and keeps the connection', async () => {
    server.setHandler((stream) => reply(stream, Buffer.alloc(2 * 1024 * 1024)));
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.equal(
      err.details,
      `Received message larger than max (${2 * 1024 * 1024} vs ${1024 * 1024})`,
    );
    server.setHandler(echo);
    assert.equal((await call(channel, request(Buffer.from('after')))).toString(), 'after');
    assert.equal(server.sessions(), 1);
  });

  it('refuses to send a message over the limit, without opening anything', async () => {
    let called = false;
    const pending = new Promise<GrpcCallError | null>((resolve) => {
      channel.call(request(Buffer.alloc(1024 * 1024 + 1)), (err) => {
        called = true;
        resolve(err);
      });
    });
    assert.equal(called, false, 'the callback never runs synchronously');
    const err = (await pending)!;
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.equal(
      err.details,
      `Sent message larger than max (${1024 * 1024 + 1} vs. ${1024 * 1024})`,
    );
    assert.equal(server.sessions(), 0);
  });

  it('refuses a compressed reply, which was never negotiated', async () => {
    server.setHandler((stream) => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(Buffer.from('z'), 1));
    });
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.INTERNAL);
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED and resets the stream', async () => {
    let serverSawReset: Promise<number> | undefined;
    server.setHandler((stream) => {
      serverSawReset = new Promise((resolve) =>
        stream.once('close', () => resolve(stream.rstCode)),
      );
    });
    const start = Date.now();
    const err = await failure(
      call(channel, request(Buffer.from('x'), { deadline: Date.now() + 200 })),
    );
    const elapsed = Date.now() - start;
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    assert.ok(elapsed >= 190 && elapsed < 1500, `ended after ${elapsed} ms`);
    assert.equal(await serverSawReset, h2.NGHTTP2_CANCEL);
  });

  it('fails a call whose deadline has passed without sending it', async () => {
    const err = await failure(
      call(channel, request(Buffer.from('x'), { deadline: Date.now() - 1 })),
    );
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    assert.equal(server.sessions(), 0);
  });

  it('cancels a call in flight with CANCELLED and a reset the server sees', async () => {
    let serverSawReset: Promise<number> | undefined;
    let arrived!: () => void;
    const atServer = new Promise<void>((resolve) => (arrived = resolve));
    server.setHandler((stream) => {
      serverSawReset = new Promise((resolve) =>
        stream.once('close', () => resolve(stream.rstCode)),
      );
      arrived();
    });
    const pending = new Promise<GrpcCallError | null>((resolve) => {
      const handle = channel.call(request(Buffer.from('x')), (err) => resolve(err));
      void atServer.then(() => handle.cancel());
    });
    const err = (await pending)!;
    assert.equal(err.code, status.CANCELLED);
    assert.equal(err.details, 'Cancelled on client');
    assert.equal(await serverSawReset, h2.NGHTTP2_CANCEL);
  });

  it('finishes a call in flight across a GOAWAY and sends later calls on a new connection', async () => {
    server.setHandler((stream, body, session) => {
      session.goaway(h2.NGHTTP2_NO_ERROR, stream.id);
      setTimeout(() => reply(stream, body.subarray(5)), 50);
    });
    assert.equal((await call(channel, request(Buffer.from('first')))).toString(), 'first');
    server.setHandler(echo);
    assert.equal((await call(channel, request(Buffer.from('second')))).toString(), 'second');
    assert.equal(server.sessions(), 2);
  });

  it('fails the calls of a dropped connection with UNAVAILABLE and reconnects for the next', async () => {
    server.setHandler((_stream, _body, session) => session.destroy());
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.UNAVAILABLE);
    assert.match(err.details, /Connection dropped/);
    server.setHandler(echo);
    assert.equal((await call(channel, request(Buffer.from('again')))).toString(), 'again');
    assert.equal(server.sessions(), 2);
  });

  it('fails fast with UNAVAILABLE while the server is down and reconnects once it is back', async () => {
    const port = Number(server.address.split(':')[1]);
    await server.close();
    const err = await failure(call(channel, request(Buffer.from('x'))));
    assert.equal(err.code, status.UNAVAILABLE);
    assert.match(err.details, /Failed to connect .*ECONNREFUSED/);
    server = await startRawGrpcServer(echo, { port });
    const until = Date.now() + 3000;
    for (;;) {
      try {
        assert.equal((await call(channel, request(Buffer.from('back')))).toString(), 'back');
        break;
      } catch (e) {
        assert.equal((e as GrpcCallError).code, status.UNAVAILABLE);
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  });

  it('fails open calls and every later call with UNAVAILABLE once closed', async () => {
    server.setHandler(() => undefined);
    const open = failure(call(channel, request(Buffer.from('x'))));
    await new Promise((r) => setTimeout(r, 50));
    channel.close();
    assert.equal((await open).code, status.UNAVAILABLE);
    const later = await failure(call(channel, request(Buffer.from('y'))));
    assert.equal(later.code, status.UNAVAILABLE);
  });

  it('speaks TLS when configured, checking the server certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'http2-unary-tls-'));
    try {
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'cert.pem');
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=triton.test',
        '-addext',
        'subjectAltName=DNS:triton.test',
      ]);
      const tlsServer = await startRawGrpcServer(echo, {
        tls: { key: await readFile(keyFile), cert: await readFile(certFile) },
      });
      const tls = {
        enabled: true,
        caFile: certFile,
        certFile: '',
        keyFile: '',
        serverName: 'triton.test',
      };
      const secure = new Http2UnaryChannel(options(tlsServer.address, { tls }));
      const wrongName = new Http2UnaryChannel(
        options(tlsServer.address, { tls: { ...tls, serverName: 'other.test' } }),
      );
      try {
        assert.equal((await call(secure, request(Buffer.from('sealed')))).toString(), 'sealed');
        const err = await failure(call(wrongName, request(Buffer.from('x'))));
        assert.equal(err.code, status.UNAVAILABLE);
      } finally {
        secure.close();
        wrongName.close();
        await tlsServer.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
