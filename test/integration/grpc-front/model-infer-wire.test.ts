import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { deflateSync, gzipSync } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import { startFakes, serversEnv, waitFor } from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  int32Bytes,
  int32sOf,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';
import type { FakeTriton } from '../../../src/fake-triton';
import { decodeModelInferResponse, encodeModelInferRequest } from '../../../src/triton/wire';

const A = Array.from({ length: 16 }, (_, i) => i);
const B = Array.from({ length: 16 }, () => 2);
const PATH = '/inference.GRPCInferenceService/ModelInfer';

function simpleBytes(): Buffer {
  return encodeModelInferRequest({
    modelName: 'simple',
    modelVersion: '',
    id: 'wire-1',
    parameters: {},
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], parameters: {} },
      { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], parameters: {} },
    ],
    outputs: [],
    rawInputContents: [int32Bytes(A), int32Bytes(B)],
  });
}

/** gRPC's 5-byte prefix (compressed flag, length) and the message. */
function framed(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

interface RawAnswer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  grpcStatus: number | undefined;
  grpcMessage: string;
}

/**
 * One call on a plain HTTP/2 stream, so a test controls what grpc-js
 * clients never send: chunking, compression flags, broken frames, headers.
 */
function rawCall(
  session: ClientHttp2Session,
  chunks: Buffer[],
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let answerHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    req.on('response', (h) => (answerHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => body.push(d));
    req.on('error', reject);
    req.on('close', () => {
      const s = trailers['grpc-status'] ?? answerHeaders['grpc-status'];
      const m = trailers['grpc-message'] ?? answerHeaders['grpc-message'];
      resolve({
        headers: answerHeaders,
        trailers,
        body: Buffer.concat(body),
        grpcStatus: s === undefined ? undefined : Number(s),
        grpcMessage: decodeURIComponent(String(m ?? '')),
      });
    });
    // Each chunk its own write, a tick apart, so they travel as separate DATA frames.
    const writeNext = (i: number): void => {
      if (i === chunks.length) {
        req.end();
        return;
      }
      req.write(chunks[i]);
      setImmediate(() => writeNext(i + 1));
    };
    writeNext(0);
  });
}

function sumOf(answer: RawAnswer): number[] {
  assert.equal(answer.grpcStatus, status.OK, answer.grpcMessage);
  assert.equal(answer.body[0], 0, 'answers are not compressed');
  assert.equal(answer.body.readUInt32BE(1), answer.body.length - 5, 'one whole message');
  return int32sOf(decodeModelInferResponse(answer.body.subarray(5)).rawOutputContents[0]!);
}

const SUM = A.map((a, i) => a + B[i]!);

describe('gRPC front end: ModelInfer on the HTTP/2 stream', () => {
  let fake: FakeTriton;
  let p: GrpcTestProxy;
  let session: ClientHttp2Session;

  before(async () => {
    [fake] = (await startFakes(1)) as [FakeTriton];
    p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv([fake]),
      MAX_BODY_BYTES: String(64 * 1024),
    });
  });
  beforeEach(() => {
    session = connect(`http://${p.grpcAddress}`);
    session.on('error', () => {});
  });
  afterEach(() => {
    session.destroy();
    fake.setLatency(() => 0);
  });
  after(async () => {
    await p.close();
    await fake.stop();
  });

  it('answers with gRPC headers, one uncompressed message and OK trailers', async () => {
    const answer = await rawCall(session, [framed(simpleBytes())], { 'x-request-id': 'wire-id' });
    assert.deepEqual(sumOf(answer), SUM);
    assert.equal(answer.headers[':status'], 200);
    assert.equal(answer.headers['content-type'], 'application/grpc+proto');
    assert.equal(answer.headers['x-request-id'], 'wire-id');
    assert.equal(answer.trailers['grpc-status'], '0');
  });

  it('takes a message that arrives in many small DATA frames', async () => {
    const whole = framed(simpleBytes());
    const chunks: Buffer[] = [];
    // The prefix split too: 2 + 3 bytes, then 7-byte pieces.
    chunks.push(whole.subarray(0, 2), whole.subarray(2, 5));
    for (let i = 5; i < whole.length; i += 7) chunks.push(whole.subarray(i, i + 7));
    assert.deepEqual(sumOf(await rawCall(session, chunks)), SUM);
  });

  for (const [encoding, compress] of [
    ['gzip', gzipSync],
    ['deflate', deflateSync],
  ] as const) {
    it(`accepts a ${encoding}-compressed request and answers it like an uncompressed one`, async () => {
      const answer = await rawCall(session, [framed(compress(simpleBytes()), true)], {
        'grpc-encoding': encoding,
      });
      assert.deepEqual(sumOf(answer), SUM);
    });
  }

  it('refuses a request compressed with an encoding it does not know, naming it', async () => {
    const before = fake.callCount('ModelInfer');
    const answer = await rawCall(session, [framed(gzipSync(simpleBytes()), true)], {
      'grpc-encoding': 'snappy',
    });
    assert.equal(answer.grpcStatus, status.UNIMPLEMENTED);
    assert.match(answer.grpcMessage, /unsupported encoding "snappy"/);
    assert.equal(fake.callCount('ModelInfer'), before);
  });

  it('refuses a compressed message that inflates beyond MAX_BODY_BYTES', async () => {
    const before = fake.callCount('ModelInfer');
    const bomb = gzipSync(Buffer.alloc(1024 * 1024));
    const answer = await rawCall(session, [framed(bomb, true)], { 'grpc-encoding': 'gzip' });
    assert.equal(answer.grpcStatus, status.RESOURCE_EXHAUSTED);
    assert.match(answer.grpcMessage, /decompresses to a size larger than 65536/);
    assert.equal(fake.callCount('ModelInfer'), before);
  });

  it('refuses a message over MAX_BODY_BYTES from its prefix, before the body arrives', async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1024 * 1024, 1);
    // Only the prefix is sent and the stream stays open: the answer cannot wait for the body.
    const req = session.request({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
    });
    req.on('error', () => {});
    req.write(prefix);
    const headers = await new Promise<IncomingHttpHeaders>((resolve) =>
      req.once('response', resolve),
    );
    assert.equal(headers['grpc-status'], String(status.RESOURCE_EXHAUSTED));
    assert.match(
      decodeURIComponent(String(headers['grpc-message'])),
      /larger than max \(1048576 vs 65536\)/,
    );
    req.close();
  });

  for (const [what, chunks, pattern] of [
    ['no message', [], /no request message/],
    ['a truncated message', [framed(simpleBytes()).subarray(0, 20)], /truncated request message/],
    ['a second message', [framed(simpleBytes()), framed(simpleBytes())], /second request message/],
  ] as const) {
    it(`answers UNIMPLEMENTED to a unary call with ${what}`, async () => {
      const answer = await rawCall(session, [...chunks]);
      assert.equal(answer.grpcStatus, status.UNIMPLEMENTED);
      assert.match(answer.grpcMessage, pattern);
    });
  }

  it('answers 415 to a request that is not gRPC, as grpc-js does', async () => {
    const answer = await rawCall(session, [framed(simpleBytes())], {
      'content-type': 'application/json',
    });
    assert.equal(answer.headers[':status'], 415);
  });

  it('answers INTERNAL naming a grpc-timeout it cannot read', async () => {
    const answer = await rawCall(session, [framed(simpleBytes())], { 'grpc-timeout': 'soon' });
    assert.equal(answer.grpcStatus, status.INTERNAL);
    assert.match(answer.grpcMessage, /Invalid grpc-timeout value "soon"/);
  });

  it('ends the call with DEADLINE_EXCEEDED at the grpc-timeout and cancels the upstream call', async () => {
    fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 3000 : 0));
    const cancelled = fake.cancelledCount('ModelInfer');
    const answer = await rawCall(session, [framed(simpleBytes())], { 'grpc-timeout': '300m' });
    assert.equal(answer.grpcStatus, status.DEADLINE_EXCEEDED);
    // Generous bound on a loaded 2-core box, still far below the fake's 3 s.
    await waitFor(
      () => fake.cancelledCount('ModelInfer') === cancelled + 1,
      2500,
      'the upstream call cancelled',
    );
  });

  it('cancels the upstream call when the client resets the stream', async () => {
    fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 3000 : 0));
    const cancelled = fake.cancelledCount('ModelInfer');
    const calls = fake.callCount('ModelInfer');
    const req = session.request({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
    });
    req.on('error', () => {});
    req.end(framed(simpleBytes()));
    await waitFor(() => fake.callCount('ModelInfer') === calls + 1, 2500, 'the call upstream');
    req.close();
    await waitFor(
      () => fake.cancelledCount('ModelInfer') === cancelled + 1,
      2500,
      'the upstream call cancelled',
    );
  });
});

describe('gRPC front end: ModelInfer while the proxy stops', () => {
  it('finishes a ModelInfer in flight when the proxy drains', async () => {
    const [fake] = (await startFakes(1)) as [FakeTriton];
    const p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv([fake]),
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_GRACE_MS: '10000',
    });
    const client = new GrpcTestClient(p.grpcAddress);
    try {
      fake.setLatency((rpc) => (rpc === 'ModelInfer' ? 500 : 0));
      const inFlight = client.inferBytes(simpleBytes());
      await waitFor(() => fake.callCount('ModelInfer') === 1, 2500, 'the call upstream');
      const stopped = p.proxy.shutdown();
      const answer = await inFlight;
      const out = decodeModelInferResponse(answer.value).rawOutputContents[0]!;
      assert.deepEqual(int32sOf(out), SUM);
      await stopped;
    } finally {
      client.close();
      await p.close();
      await fake.stop();
    }
  });
});
