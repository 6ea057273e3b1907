import assert from 'node:assert/strict';
import type { InferOutputTensor, ModelInferResponse } from '../../../src/protocol';
import {
  JsonWorkerPool,
  ReusableBuffers,
  encodeInferResponse,
  type OutputPlan,
} from '../../../src/codec';

function tensor(name: string, datatype: string, shape: number[]): InferOutputTensor {
  return { name, datatype, shape, parameters: {} };
}

/** Every output's bytes in one message-sized buffer, as Triton's answer arrives from the reader. */
function response(outputs: InferOutputTensor[], raws: Buffer[]): ModelInferResponse {
  const total = raws.reduce((n, r) => n + r.length, 0) + 64;
  const message = Buffer.allocUnsafeSlow(total).fill(7);
  let at = 64;
  const views = raws.map((raw) => {
    raw.copy(message, at);
    const view = message.subarray(at, at + raw.length);
    at += raw.length;
    return view;
  });
  return {
    modelName: 'm',
    modelVersion: '1',
    id: 'x',
    parameters: {},
    outputs,
    rawOutputContents: views,
  };
}

function sequence(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 37 + 11) & 0xff;
  return out;
}

function bytesElements(values: string[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(Buffer.byteLength(v));
      return [len, Buffer.from(v)];
    }),
  );
}

const body = (chunks: readonly Buffer[]) => Buffer.concat(chunks).toString('latin1');

describe('JSON worker pool: large answers are encoded off the event loop', function () {
  // The first task starts a worker thread that loads the codec through tsx.
  this.timeout(20_000);
  let pool: JsonWorkerPool;

  before(() => {
    pool = new JsonWorkerPool({ workerThresholdBytes: 0, threads: 1 });
  });
  after(async () => {
    await pool.close();
  });

  const numeric: [string, number][] = [
    ['BOOL', 1],
    ['UINT8', 1],
    ['INT8', 1],
    ['UINT16', 2],
    ['INT16', 2],
    ['UINT32', 4],
    ['INT32', 4],
    ['UINT64', 8],
    ['INT64', 8],
    ['FP32', 4],
    ['FP64', 8],
  ];
  for (const [datatype, width] of numeric) {
    for (const exclusive of [true, false]) {
      it(`writes the same body as inline encoding for ${datatype} (${exclusive ? 'bytes moved' : 'bytes copied'})`, async () => {
        const count = 5000;
        const raw =
          datatype === 'BOOL'
            ? Buffer.from(sequence(count).map((b) => b & 1))
            : sequence(count * width);
        const make = () => response([tensor('OUT', datatype, [1, count])], [raw]);
        const expected = encodeInferResponse(make(), { binaryByDefault: false, outputs: [] });
        const got = await pool.encode(
          make(),
          { binaryByDefault: false, outputs: [] },
          { exclusive },
        );
        assert.equal(got.byteLength, expected.byteLength);
        assert.equal(got.contentType, 'application/json');
        assert.equal(body(got.chunks), body(expected.chunks));
      });
    }
  }

  it('writes BYTES elements, as text and as base64, as inline encoding does', async () => {
    const raw = bytesElements(['alpha', 'quote " and \\ slash', 'ünïcödé', '']);
    const plan: OutputPlan = {
      binaryByDefault: false,
      outputs: [
        { name: 'T', binary: false, base64: false, sharedMemory: false },
        { name: 'B', binary: false, base64: true, sharedMemory: false },
      ],
    };
    const make = () =>
      response([tensor('T', 'BYTES', [4]), tensor('B', 'BYTES', [4])], [raw, Buffer.from(raw)]);
    const expected = encodeInferResponse(make(), plan);
    const got = await pool.encode(make(), plan, { exclusive: true });
    assert.equal(body(got.chunks), body(expected.chunks));
    assert.match(body(got.chunks), /"content_type":"base64"/);
  });

  it('keeps binary outputs that share the moved message buffer intact', async () => {
    // Over Buffer.poolSize, so the message buffer moves rather than being copied.
    const json = sequence(40000 * 4);
    const binary = sequence(3000);
    const plan: OutputPlan = {
      binaryByDefault: false,
      outputs: [
        { name: 'J', binary: false, base64: false, sharedMemory: false },
        { name: 'BIN', binary: true, base64: false, sharedMemory: false },
      ],
    };
    const make = () =>
      response([tensor('J', 'INT32', [40000]), tensor('BIN', 'UINT8', [3000])], [json, binary]);
    const expected = encodeInferResponse(make(), plan);
    const answer = make();
    const got = await pool.encode(answer, plan, { exclusive: true });
    assert.equal(got.headerLength, expected.headerLength);
    assert.equal(body(got.chunks), body(expected.chunks));
    assert.deepEqual(answer.rawOutputContents[1], binary);
  });

  it('does not touch the bytes of a shared answer (cached or coalesced)', async () => {
    const raw = sequence(4000 * 4);
    const shared = response([tensor('OUT', 'INT32', [4000])], [raw]);
    const view = shared.rawOutputContents[0]!;
    await pool.encode(shared, { binaryByDefault: false, outputs: [] }, { exclusive: false });
    assert.equal(shared.rawOutputContents[0], view);
    assert.deepEqual(view, raw);
  });

  it('answers a size mismatch from the worker with the same error as inline encoding', async () => {
    const make = () => response([tensor('OUT', 'INT32', [1, 4000])], [sequence(4000 * 4 - 4)]);
    const plan: OutputPlan = { binaryByDefault: false, outputs: [] };
    let inline: unknown;
    try {
      encodeInferResponse(make(), plan);
    } catch (err) {
      inline = err;
    }
    await assert.rejects(pool.encode(make(), plan, { exclusive: true }), (err: Error) => {
      assert.equal(err.message, (inline as Error).message);
      assert.equal((err as { code?: string }).code, (inline as { code?: string }).code);
      return true;
    });
  });

  it('encodes answers under the threshold inline, without moving their bytes', async () => {
    const inlinePool = new JsonWorkerPool({ workerThresholdBytes: 1024 * 1024, threads: 1 });
    try {
      const answer = response([tensor('OUT', 'INT32', [16])], [sequence(64)]);
      const view = answer.rawOutputContents[0];
      const got = await inlinePool.encode(
        answer,
        { binaryByDefault: false, outputs: [] },
        { exclusive: true },
      );
      assert.equal(answer.rawOutputContents[0], view, 'the bytes never moved');
      assert.match(body(got.chunks), /"data":\[/);
    } finally {
      await inlinePool.close();
    }
  });
});

describe('JSON worker pool: body buffers', function () {
  this.timeout(20_000);
  const MiB = 1024 * 1024;

  /** `json` in a buffer from `buffers`, as readBody assembles a large body. */
  function pooledBody(buffers: ReusableBuffers, json: Buffer): Buffer {
    const body = buffers.take(json.length);
    json.copy(body);
    return body;
  }

  it('moves a pooled JSON body to the worker and gets its buffer back for the next body', async () => {
    const buffers = new ReusableBuffers();
    const pool = new JsonWorkerPool({
      workerThresholdBytes: 1024,
      threads: 1,
      largeBuffers: buffers,
    });
    try {
      const json = inferBody(400_000);
      assert.ok(json.length > MiB);
      const body = pooledBody(buffers, json);
      const memory = body.buffer;
      const parsed = await pool.parse({ body, modelName: 'm', modelVersion: '' });
      assert.equal(body.length, 0, 'the body moved to the worker, not copied');
      assert.equal(parsed.request.rawInputContents[0]!.readInt32LE(4 * 399_999), 399_999);
      assert.equal(buffers.keptBytes, Math.ceil(json.length / MiB) * MiB, 'its buffer came back');
      assert.equal(memory.byteLength, 0);

      // The next body of the same size is assembled in that memory, and parses the same.
      const again = pooledBody(buffers, json);
      assert.equal(buffers.keptBytes, 0);
      const reparsed = await pool.parse({ body: again, modelName: 'm', modelVersion: '' });
      assert.ok(reparsed.request.rawInputContents[0]!.equals(parsed.request.rawInputContents[0]!));
    } finally {
      await pool.close();
    }
  });

  it('keeps a binary body with the tensors that view it (not given back)', async () => {
    const buffers = new ReusableBuffers();
    const pool = new JsonWorkerPool({
      workerThresholdBytes: 64,
      threads: 1,
      largeBuffers: buffers,
    });
    try {
      const header = Buffer.from(
        JSON.stringify({
          inputs: [
            {
              name: 'INPUT0',
              datatype: 'UINT8',
              shape: [2 * MiB],
              parameters: { binary_data_size: 2 * MiB },
            },
          ],
        }),
      );
      const tensor = Buffer.alloc(2 * MiB, 9);
      const body = pooledBody(buffers, Buffer.concat([header, tensor]));
      const parsed = await pool.parse({
        body,
        headerLength: header.length,
        modelName: 'm',
        modelVersion: '',
      });
      assert.ok(parsed.request.rawInputContents[0]!.equals(tensor));
      assert.equal(buffers.keptBytes, 0, 'the tensor still uses the body');
    } finally {
      await pool.close();
    }
  });
});

describe('JSON worker pool: answers in reused buffers', function () {
  this.timeout(20_000);
  const MiB = 1024 * 1024;
  let buffers: ReusableBuffers;
  let pool: JsonWorkerPool;
  const plan: OutputPlan = { binaryByDefault: false, outputs: [] };

  beforeEach(() => {
    buffers = new ReusableBuffers();
    pool = new JsonWorkerPool({ workerThresholdBytes: 1024, threads: 1, largeBuffers: buffers });
  });
  afterEach(async () => {
    await pool.close();
  });

  /** Like response(), with the message in a buffer from the pool, as the upstream reader assembles it. */
  function pooledResponse(outputs: InferOutputTensor[], raws: Buffer[]): ModelInferResponse {
    const total = raws.reduce((n, r) => n + r.length, 0) + 64;
    const message = buffers.take(total);
    let at = 64;
    const views = raws.map((raw) => {
      raw.copy(message, at);
      const view = message.subarray(at, at + raw.length);
      at += raw.length;
      return view;
    });
    return {
      modelName: 'm',
      modelVersion: '1',
      id: 'x',
      parameters: {},
      outputs,
      rawOutputContents: views,
    };
  }

  it("takes back Triton's message buffer once the worker encoded every output in it", async () => {
    const raw = sequence(MiB);
    const expected = encodeInferResponse(response([tensor('OUT', 'UINT8', [MiB])], [raw]), plan);
    const answer = pooledResponse([tensor('OUT', 'UINT8', [MiB])], [raw]);
    const got = await pool.encode(answer, plan, { exclusive: true });
    assert.ok(body(got.chunks) === body(expected.chunks), 'the same answer as inline encoding');
    assert.equal(buffers.keptBytes, 2 * MiB, 'the message buffer is kept for reuse');
    assert.equal(answer.rawOutputContents[0]!.length, 0, 'the answer no longer views it');

    // The next answer reuses that memory, and the first answer's text is not disturbed.
    const text = body(got.chunks);
    const next = pooledResponse([tensor('OUT', 'UINT8', [MiB])], [Buffer.alloc(MiB, 3)]);
    assert.equal(buffers.keptBytes, 0);
    await pool.encode(next, plan, { exclusive: true });
    assert.equal(body(got.chunks), text);
  });

  it('leaves the moved message buffer with the answer when a binary output still views it (its bytes intact)', async () => {
    const json = sequence(MiB);
    const binary = sequence(3000);
    const mixed: OutputPlan = {
      binaryByDefault: false,
      outputs: [
        { name: 'J', binary: false, base64: false, sharedMemory: false },
        { name: 'BIN', binary: true, base64: false, sharedMemory: false },
      ],
    };
    const outputs = [tensor('J', 'UINT8', [MiB]), tensor('BIN', 'UINT8', [3000])];
    const expected = encodeInferResponse(response(outputs, [json, binary]), mixed);
    const answer = pooledResponse(outputs, [json, binary]);
    const got = await pool.encode(answer, mixed, { exclusive: true });
    assert.equal(buffers.keptBytes, 0, 'not given back');
    assert.equal(got.headerLength, expected.headerLength);
    // Compared as booleans: a diff of two 3 MiB texts helps nobody.
    assert.ok(body(got.chunks) === body(expected.chunks), 'the same answer as inline encoding');
    assert.deepEqual(answer.rawOutputContents[1], binary);
  });

  it("copies a shared answer's bytes into a reused buffer and takes it back after", async () => {
    const raw = sequence(MiB);
    const shared = response([tensor('OUT', 'UINT8', [MiB])], [raw]);
    const view = shared.rawOutputContents[0]!;
    const got = await pool.encode(shared, plan, { exclusive: false });
    assert.match(body(got.chunks), /"data":\[/);
    assert.equal(shared.rawOutputContents[0], view);
    assert.deepEqual(view, raw, 'the shared bytes are untouched');
    assert.equal(buffers.keptBytes, MiB, 'the copy came back for reuse');
  });
});

function inferBody(values: number): Buffer {
  const data = Array.from({ length: values }, (_, i) => i);
  return Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, values], data }],
    }),
  );
}

describe('JSON worker pool: threads', function () {
  // Starting a worker (a second V8 isolate) takes a while on a loaded 2-core box.
  this.timeout(20_000);

  let pool: JsonWorkerPool;
  afterEach(async () => {
    await pool.close();
  });

  it('runs no worker thread until a body above the threshold arrives, then parses it in one', async function () {
    pool = new JsonWorkerPool({ workerThresholdBytes: 1024 });
    const small = await pool.parse({ body: inferBody(4), modelName: 'm', modelVersion: '' });
    assert.equal(small.request.inputs[0]!.name, 'INPUT0');
    assert.equal(pool.workerThreads, 0, 'a small body is parsed inline, with no worker');

    const large = await pool.parse({ body: inferBody(2000), modelName: 'm', modelVersion: '' });
    assert.equal(large.request.inputs[0]!.name, 'INPUT0');
    assert.equal(pool.workerThreads, 1, 'the first large body started one worker');
  });
});
