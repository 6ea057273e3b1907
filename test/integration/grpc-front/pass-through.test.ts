import assert from 'node:assert/strict';
import {
  connect,
  constants as h2,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import { status } from '@grpc/grpc-js';
import { startFakes, serversEnv, waitFor } from '../../helpers/proxy-harness';
import { startGrpcTestProxy, type GrpcTestProxy } from '../../helpers/grpc-client';
import { identityModel, type FakeTriton } from '../../../src/fake-triton';
import { decodeModelInferResponse, encodeModelInferRequest } from '../../../src/triton/wire';

const PATH = '/inference.GRPCInferenceService/ModelInfer';
const MiB = 1024 * 1024;
/** The proxy's gRPC message limit in these tests. */
const LIMIT = 8 * MiB;
/** An answer well over the windows below, so the server is still sending when the client stops reading. */
const ANSWER_BYTES = 6 * MiB;

function identityRequest(bytes: number, model = 'identity_int32'): Buffer {
  const tensor = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4096) tensor[i] = i & 0xff;
  return encodeModelInferRequest({
    modelName: model,
    modelVersion: '',
    id: '',
    parameters: {},
    inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, bytes / 4], parameters: {} }],
    outputs: [],
    rawInputContents: [tensor],
  });
}

function framed(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

interface Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
  grpcStatus: number | undefined;
  grpcMessage: string;
}

/** A ModelInfer on a plain HTTP/2 stream whose reading the test controls. */
function startCall(session: ClientHttp2Session, message: Buffer) {
  const req: ClientHttp2Stream = session.request({
    ':method': 'POST',
    ':path': PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  req.on('error', () => {});
  let headers: IncomingHttpHeaders = {};
  let trailers: IncomingHttpHeaders = {};
  const body: Buffer[] = [];
  req.on('response', (h) => (headers = h));
  req.on('trailers', (t) => (trailers = t));
  const firstData = new Promise<void>((resolve) => req.once('data', () => resolve()));
  req.on('data', (d: Buffer) => body.push(d));
  const done = new Promise<Answer>((resolve) =>
    req.on('close', () => {
      const s = trailers['grpc-status'] ?? headers['grpc-status'];
      resolve({
        headers,
        trailers,
        body: Buffer.concat(body),
        grpcStatus: s === undefined ? undefined : Number(s),
        grpcMessage: decodeURIComponent(
          String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''),
        ),
      });
    }),
  );
  req.end(framed(message));
  return { req, firstData, done };
}

async function metric(p: GrpcTestProxy, name: string): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(' ')[1]);
}

describe('gRPC front end: ModelInfer answers passed through as they arrive', () => {
  let fakes: FakeTriton[];
  let p: GrpcTestProxy;
  let session: ClientHttp2Session;

  before(async () => {
    fakes = await startFakes(2);
    for (const fake of fakes) {
      // A small request answered with more than the proxy's message limit.
      fake.addModel(
        identityModel('INT32', {
          name: 'grow_int32',
          compute: () =>
            new Map([
              [
                'OUTPUT0',
                {
                  datatype: 'INT32',
                  shape: [1, (LIMIT + MiB) / 4],
                  data: Buffer.alloc(LIMIT + MiB),
                },
              ],
            ]),
        }),
      );
    }
    p = await startGrpcTestProxy({
      TRITON_SERVERS: serversEnv(fakes),
      GRPC_MAX_MESSAGE_BYTES: String(LIMIT),
      // Small windows: a client that stops reading holds the server back within ~2 MiB.
      GRPC_FLOW_CONTROL_WINDOW_BYTES: String(MiB),
    });
  });
  beforeEach(() => {
    for (const fake of fakes) fake.resetCounters();
    session = connect(`http://${p.grpcAddress}`);
    session.on('error', () => {});
  });
  afterEach(() => session.destroy());
  after(async () => {
    await p.close();
    await Promise.all(fakes.map((f) => f.stop()));
  });

  const calls = () => fakes.map((f) => f.callCount('ModelInfer'));

  it('passes a large answer through whole, with OK trailers and the request id', async () => {
    const call = startCall(session, identityRequest(ANSWER_BYTES));
    const answer = await call.done;
    assert.equal(answer.grpcStatus, status.OK, answer.grpcMessage);
    assert.equal(answer.headers['content-type'], 'application/grpc+proto');
    assert.ok(answer.headers['x-request-id'], 'the request id in the response headers');
    assert.equal(answer.body.readUInt32BE(1), answer.body.length - 5, 'one whole message');
    const out = decodeModelInferResponse(answer.body.subarray(5)).rawOutputContents[0]!;
    assert.equal(out.length, ANSWER_BYTES);
    assert.equal(out[4096], 4096 & 0xff);
    assert.deepEqual(calls().sort(), [0, 1], 'one upstream call');
    assert.equal(await metric(p, 'triton_proxy_inflight_request_bytes'), 0, 'bytes released');
  });

  it('refuses an answer over the message limit before any of it reaches the client, without a retry', async () => {
    const call = startCall(session, identityRequest(1024, 'grow_int32'));
    const answer = await call.done;
    assert.equal(answer.grpcStatus, status.RESOURCE_EXHAUSTED);
    assert.match(answer.grpcMessage, /larger than max/);
    assert.equal(answer.body.length, 0, 'nothing of the answer was sent');
    assert.deepEqual(calls().sort(), [0, 1], 'not retried on the other server');
  });

  it('cancels the upstream call and releases its bytes when the client cancels mid-answer', async () => {
    const call = startCall(session, identityRequest(ANSWER_BYTES));
    await call.firstData;
    call.req.close(h2.NGHTTP2_CANCEL);
    await call.done;
    // Generous bounds on a loaded 2-core box; nothing here waits on a timer of the proxy's.
    await waitFor(
      () => fakes.some((f) => f.cancelledCount('ModelInfer') === 1),
      5000,
      'the upstream call cancelled',
    );
    await waitFor(
      async () => (await metric(p, 'triton_proxy_inflight_request_bytes')) === 0,
      5000,
      'the request bytes released',
    );
    assert.deepEqual(calls().sort(), [0, 1], 'one upstream call');
  });

  // Last: it kills one of the two servers.
  it('ends the client call with UNAVAILABLE when the server dies mid-answer, and does not retry', async () => {
    const call = startCall(session, identityRequest(ANSWER_BYTES));
    await call.firstData;
    // The client stops reading: the server cannot finish its answer through the windows.
    call.req.pause();
    const serving = fakes.find((f) => f.callCount('ModelInfer') === 1)!;
    const other = fakes.find((f) => f !== serving)!;
    serving.kill();
    call.req.resume();
    const answer = await call.done;
    assert.equal(answer.headers[':status'], 200);
    assert.ok(answer.body.length > 0, 'part of the answer reached the client');
    assert.ok(answer.body.length < 5 + ANSWER_BYTES, 'the answer was cut short');
    assert.equal(answer.grpcStatus, status.UNAVAILABLE, answer.grpcMessage);
    assert.equal(answer.trailers['x-proxy-error-code'], 'UPSTREAM_UNAVAILABLE');
    assert.equal(other.callCount('ModelInfer'), 0, 'no second answer from another server');
  });
});
