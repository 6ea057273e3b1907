import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import Piscina from 'piscina';
import { ProxyError, type ErrorCode } from '../errors';
import type { ModelInferResponse } from '../protocol';
import {
  base64Output,
  encodeInferResponse,
  largeJsonOutputs,
  type EncodedInferResponse,
} from './encode-infer-response';
import type {
  EncodeAnswer,
  EncodeOutput,
  JsonWorkerData,
  ParseAnswer,
  ParseTask,
  WorkerFailure,
} from './json-worker';
import type { OutputPlan } from './output-plan';
import type { ReusableBuffers } from './reusable-buffers';
import {
  parseInferRequest,
  type InferRequestBody,
  type ParsedInferRequest,
} from './parse-infer-request';

export interface JsonWorkerPoolOptions {
  /**
   * JSON text above this many bytes is handled in a worker: a request's
   * (the whole body, or the inference header), or an output's `data` text
   * (estimated from its element count).
   */
  workerThresholdBytes: number;
  /** Worker threads; default: available cores, at most 4. */
  threads?: number;
  /** Tasks waiting for a worker beyond this are refused with 429. */
  maxQueue?: number;
  /** Added to the workers' nice value (Linux), so the event loop thread gets the CPU first; 0 = same priority. */
  niceIncrement?: number;
  /**
   * Where large bodies' buffers come from (see readBody): a body parsed in a
   * worker is moved there whole, and its buffer, when no tensor views it,
   * comes back here for the next body.
   */
  bodyBuffers?: ReusableBuffers;
}

export interface EncodeOptions {
  /**
   * True when nobody else holds this response (not from the response cache,
   * not shared by coalesced callers): its output bytes may then move to the
   * worker and back instead of being copied.
   */
  exclusive: boolean;
}

const MAX_THREADS = 4;

function isQueueFull(err: unknown): boolean {
  return err instanceof Error && /queue is at limit/i.test(err.message);
}

function failure(answer: WorkerFailure): ProxyError {
  return new ProxyError(answer.code as ErrorCode, answer.message);
}

/**
 * JSON for the inference path: request bodies parsed and answers' `data`
 * arrays encoded inline when small (no worker hop on the hot path), in a
 * bounded piscina pool when large, because JSON.parse of tens of MiB, or
 * formatting millions of numbers, holds the event loop for hundreds of ms
 * and stalls every other request on the replica. Both paths give the same
 * bytes and the same errors.
 */
export class JsonWorkerPool {
  private readonly pool: Piscina;
  private readonly threshold: number;
  private readonly bodyBuffers: ReusableBuffers | undefined;

  constructor(options: JsonWorkerPoolOptions) {
    this.threshold = options.workerThresholdBytes;
    this.bodyBuffers = options.bodyBuffers;
    const threads = Math.max(1, options.threads ?? Math.min(availableParallelism(), MAX_THREADS));
    const ext = extname(__filename);
    this.pool = new Piscina({
      filename: join(__dirname, `json-worker${ext}`),
      // No thread until the first large body: an idle worker is a second V8
      // isolate, 15 MB of RSS (85 -> 100 MB idle) a proxy serving small requests never uses.
      minThreads: 0,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? threads * 16,
      idleTimeout: 60_000,
      workerData: { niceIncrement: options.niceIncrement ?? 0 } satisfies JsonWorkerData,
      // Sources run from TypeScript (tests, tsx) need the loader in the worker too.
      execArgv: ext === '.ts' ? [...process.execArgv, '--require', 'tsx/cjs'] : undefined,
    });
  }

  async parse(input: InferRequestBody): Promise<ParsedInferRequest> {
    const jsonBytes = input.headerLength ?? input.body.length;
    if (jsonBytes <= this.threshold || input.headerLength === 0) {
      return parseInferRequest(input);
    }
    return this.parseInWorker(input);
  }

  private async parseInWorker(input: InferRequestBody): Promise<ParsedInferRequest> {
    // The body moves to the worker when it owns its ArrayBuffer, or its
    // buffer came from bodyBuffers (a large body read by readBody); otherwise
    // one copy is made for the move.
    const { body } = input;
    const fromPool = this.bodyBuffers?.isTaken(body.buffer) === true;
    const moved = fromPool || owns(body) ? body : new Uint8Array(body);
    const task: ParseTask = {
      kind: 'parse',
      body: moved,
      headerLength: input.headerLength,
      modelName: input.modelName,
      modelVersion: input.modelVersion,
      giveBack: this.bodyBuffers !== undefined,
    };
    let answer: ParseAnswer;
    try {
      answer = (await this.pool.run(task, {
        transferList: [moved.buffer as ArrayBuffer],
      })) as ParseAnswer;
    } catch (err) {
      if (isQueueFull(err)) {
        throw new ProxyError(
          'OVERLOADED',
          'too many large JSON requests are being parsed; retry later',
          { retryAfterSeconds: 1 },
        );
      }
      throw err;
    }
    if (!answer.ok) throw failure(answer);
    if (answer.spare !== undefined) this.bodyBuffers?.give(answer.spare);
    const { request } = answer.parsed;
    // Tensors arrive as Uint8Arrays over the moved buffers; view them as Buffers without copying.
    request.rawInputContents = request.rawInputContents.map((raw) =>
      Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength),
    );
    return answer.parsed;
  }

  /** Triton's answer as the HTTP body (see encodeInferResponse); large JSON `data` arrays in a worker. */
  async encode(
    response: ModelInferResponse,
    plan: OutputPlan,
    options: EncodeOptions,
  ): Promise<EncodedInferResponse> {
    const large = largeJsonOutputs(response, plan, this.threshold);
    if (large.length === 0) return encodeInferResponse(response, plan);

    const raws = response.rawOutputContents;
    let rawBytes = 0;
    for (const raw of raws) rawBytes += raw.length;
    const buffers: ArrayBuffer[] = [];
    const slot = new Map<ArrayBuffer, number>();
    const moved = new Set<ArrayBuffer>();
    const outputs: EncodeOutput[] = large.map((i) => {
      const raw = raws[i]!;
      let buffer = raw.buffer as ArrayBuffer;
      let byteOffset = raw.byteOffset;
      // Triton's message buffer moves when it is ours alone and holds only this
      // answer; otherwise these bytes are copied (one memcpy, no formatting).
      if (options.exclusive && movable(buffer, rawBytes)) {
        moved.add(buffer);
      } else {
        buffer = new Uint8Array(raw).buffer;
        byteOffset = 0;
      }
      let index = slot.get(buffer);
      if (index === undefined) {
        index = buffers.push(buffer) - 1;
        slot.set(buffer, index);
      }
      const tensor = response.outputs[i]!;
      return {
        tensor,
        base64: base64Output(plan, tensor),
        buffer: index,
        byteOffset,
        byteLength: raw.length,
      };
    });

    let answer: EncodeAnswer;
    try {
      answer = (await this.pool.run(
        { kind: 'encode', buffers, outputs },
        { transferList: buffers },
      )) as EncodeAnswer;
    } catch (err) {
      // The upstream work is done: when the pool is full, the answer is
      // encoded here rather than thrown away (piscina refused the task
      // before anything moved).
      if (isQueueFull(err)) return encodeInferResponse(response, plan);
      throw err;
    }
    if (!answer.ok) throw failure(answer);
    // Every output whose bytes moved (binary ones in the same message too)
    // now views the buffer the worker handed back.
    response.rawOutputContents = raws.map((raw) => {
      const index = moved.has(raw.buffer as ArrayBuffer)
        ? slot.get(raw.buffer as ArrayBuffer)
        : undefined;
      return index === undefined
        ? raw
        : Buffer.from(answer.buffers[index]!, raw.byteOffset, raw.byteLength);
    });
    const encoded = new Map<number, Buffer[]>();
    large.forEach((i, k) =>
      encoded.set(
        i,
        answer.data[k]!.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
      ),
    );
    return encodeInferResponse(response, plan, encoded);
  }

  /** Worker threads running now: none until the first body above the threshold. */
  get workerThreads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** True when `body` is the whole of an ArrayBuffer of its own, which can move to a worker. */
function owns(body: Buffer): boolean {
  return (
    body.byteOffset === 0 &&
    body.buffer instanceof ArrayBuffer &&
    body.byteLength === body.buffer.byteLength &&
    body.byteLength > Buffer.poolSize
  );
}

/**
 * True when `buffer` can move without taking anyone else's bytes: not
 * pooled, and no larger than the answer's tensors plus its protobuf fields
 * (Triton's message buffer, allocated for this one message).
 */
function movable(buffer: ArrayBuffer, rawBytes: number): boolean {
  return (
    buffer instanceof ArrayBuffer &&
    buffer.byteLength > Buffer.poolSize &&
    buffer.byteLength <= rawBytes + 1024 * 1024
  );
}
