import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { defaultModels, simpleModel } from '../../../src/fake-triton';
import { postJson, simpleRequest } from '../../helpers/proxy-harness';
import { inferUrl, RAW_GRPC_TEXT, startCore, type CoreSetup } from './support';

const A = Array.from({ length: 16 }, (_, i) => i);

interface Case {
  grpc: keyof typeof status;
  details: string;
  http: number;
  code: string;
  retryAfter: boolean;
  /** The client sees Triton's own message (client errors); otherwise a sentence naming the server. */
  message: RegExp;
}

const CASES: Case[] = [
  {
    grpc: 'INVALID_ARGUMENT',
    details: "[request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'simple'",
    http: 400,
    code: 'INVALID_REQUEST',
    retryAfter: false,
    message:
      /^\[request id: <id_unknown>\] unexpected shape for input 'INPUT0' for model 'simple'$/,
  },
  {
    grpc: 'NOT_FOUND',
    details: "Request for unknown model: 'simple' is not found",
    http: 404,
    code: 'MODEL_NOT_FOUND',
    retryAfter: false,
    message: /^Request for unknown model: 'simple' is not found$/,
  },
  {
    grpc: 'ALREADY_EXISTS',
    details: 'sequence 7 already exists',
    http: 400,
    code: 'INVALID_REQUEST',
    retryAfter: false,
    message: /^sequence 7 already exists$/,
  },
  {
    grpc: 'FAILED_PRECONDITION',
    details: 'precondition not met',
    http: 400,
    code: 'INVALID_REQUEST',
    retryAfter: false,
    message: /^precondition not met$/,
  },
  {
    grpc: 'RESOURCE_EXHAUSTED',
    details: 'rate limit reached',
    http: 429,
    code: 'OVERLOADED',
    retryAfter: true,
    message: /rate limit reached/,
  },
  {
    grpc: 'RESOURCE_EXHAUSTED',
    details: 'Received message larger than max (200 vs. 100)',
    http: 413,
    code: 'PAYLOAD_TOO_LARGE',
    retryAfter: false,
    message: /exceeds the gRPC message limit/,
  },
  {
    grpc: 'UNIMPLEMENTED',
    details: "ModelInfer RPC doesn't support models with decoupled transaction policy",
    http: 501,
    code: 'UNSUPPORTED',
    retryAfter: false,
    message: /decoupled/,
  },
  {
    grpc: 'INTERNAL',
    details: "model 'simple' failed: out of memory",
    http: 500,
    code: 'INTERNAL',
    retryAfter: false,
    message: /^model 'simple' failed: out of memory$/,
  },
  {
    grpc: 'UNAVAILABLE',
    details: 'Server exiting',
    http: 503,
    code: 'UPSTREAM_UNAVAILABLE',
    retryAfter: true,
    message: /^Triton server 't0' is unavailable$/,
  },
  {
    grpc: 'UNAVAILABLE',
    details: "Request for unknown model: 'simple' version 1 is not at ready state",
    http: 503,
    code: 'MODEL_NOT_READY',
    retryAfter: true,
    message: /not at ready state/,
  },
  {
    grpc: 'UNAVAILABLE',
    details: 'Request timeout expired',
    http: 504,
    code: 'UPSTREAM_TIMEOUT',
    retryAfter: false,
    message: /^Triton server 't0' timed the request out in its queue: Request timeout expired$/,
  },
  {
    grpc: 'CANCELLED',
    details: 'Cancelled',
    http: 503,
    code: 'UPSTREAM_UNAVAILABLE',
    retryAfter: true,
    message: /^Triton server 't0' cancelled the request$/,
  },
  {
    grpc: 'DEADLINE_EXCEEDED',
    details: 'Deadline Exceeded',
    http: 504,
    code: 'UPSTREAM_TIMEOUT',
    retryAfter: false,
    message: /^Triton server 't0' did not answer before the deadline$/,
  },
  {
    grpc: 'UNAUTHENTICATED',
    details: 'missing token',
    http: 401,
    code: 'UNAUTHENTICATED',
    retryAfter: false,
    message: /missing token/,
  },
  {
    grpc: 'PERMISSION_DENIED',
    details: 'API restricted',
    http: 403,
    code: 'FORBIDDEN',
    retryAfter: false,
    message: /API restricted/,
  },
];

describe('Triton gRPC errors as HTTP answers', function () {
  let core: CoreSetup;

  // A model per case: NOT_FOUND and not-ready answers change what the proxy believes about a model.
  const modelFor = (c: Case): string => `simple_${c.grpc.toLowerCase()}_${c.code.toLowerCase()}`;

  before(async () => {
    core = await startCore(
      { RETRY_AFTER_SECONDS: '2' },
      { models: [...defaultModels(), ...CASES.map((c) => simpleModel({ name: modelFor(c) }))] },
    );
  });
  after(async () => {
    await core.close();
  });
  afterEach(() => core.fake.clearFailures());

  for (const c of CASES) {
    it(`maps ${c.grpc} ("${c.details.slice(0, 40)}") to ${c.http} ${c.code}${c.retryAfter ? ' with Retry-After' : ''}`, async () => {
      const model = modelFor(c);
      core.fake.failNext({ code: status[c.grpc], details: c.details, rpc: 'ModelInfer', model });
      const answer = await postJson(inferUrl(core.url, model), simpleRequest(A, A), {
        'x-request-id': `map-${c.grpc}`,
      });

      assert.equal(answer.status, c.http, JSON.stringify(answer.json));
      assert.deepEqual(Object.keys(answer.json).sort(), ['code', 'error', 'request_id']);
      assert.equal(answer.json.code, c.code);
      assert.equal(answer.json.request_id, `map-${c.grpc}`);
      assert.match(String(answer.json.error), c.message);
      assert.doesNotMatch(String(answer.json.error), RAW_GRPC_TEXT);
      assert.equal(answer.headers.get('retry-after'), c.retryAfter ? '2' : null);
      assert.equal(core.fake.callCount('ModelInfer', model), 1);
    });
  }

  it('answers a decoupled model over ModelInfer with 501, as Triton does', async () => {
    const answer = await postJson(inferUrl(core.url, 'repeat'), {
      inputs: [{ name: 'IN', datatype: 'INT32', shape: [3], data: [1, 2, 3] }],
    });
    assert.equal(answer.status, 501);
    assert.equal(answer.json.code, 'UNSUPPORTED');
    assert.match(String(answer.json.error), /decoupled/);
  });

  it('answers 503 naming the server, without transport details, when the server is gone', async () => {
    const gone = await startCore({ TRITON_HEALTH_INTERVAL_MS: '60000' });
    try {
      gone.fake.kill();
      const answer = await postJson(inferUrl(gone.url, 'simple'), simpleRequest(A, A));
      assert.equal(answer.status, 503, JSON.stringify(answer.json));
      assert.equal(answer.json.code, 'UPSTREAM_UNAVAILABLE');
      assert.doesNotMatch(String(answer.json.error), RAW_GRPC_TEXT);
      assert.doesNotMatch(
        String(answer.json.error),
        /ECONNREFUSED|ECONNRESET|No connection established/,
      );
      assert.ok(Number(answer.headers.get('retry-after')) >= 1);
    } finally {
      await gone.close();
    }
  });

  it('keeps serving after every kind of failure', async () => {
    const answer = await postJson(inferUrl(core.url, 'simple'), simpleRequest(A, A));
    assert.equal(answer.status, 200);
  });
});
