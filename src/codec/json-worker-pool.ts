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
   * Large buffers reused instead of allocated afresh (see ReusableBuffers):
   * a body read into one (readBody) moves to a parse worker whole and its
   * buffer, when no tensor views it, comes back here; so does Triton's
   * answer reassembled into one once its outputs are encoded, and the copy
   * made of a shared answer's bytes for a worker.
   */
  largeBuffers?: ReusableBuffers;
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
const EMPTY = Buffer.alloc(0);

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
  private readonly largeBuffers: ReusableBuffers | undefined;

  constructor(options: JsonWorkerPoolOptions) {
    this.threshold = options.workerThresholdBytes;
    this.largeBuffers = options.largeBuffers;
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
    // buffer came from largeBuffers (a large body read by readBody); otherwise
    // one copy is made for the move.
    const { body } = input;
    const fromPool = this.largeBuffers?.isTaken(body.buffer) === true;
    const moved = fromPool || owns(body) ? body : new Uint8Array(body);
    const task: ParseTask = {
      kind: 'parse',
      body: moved,
      headerLength: input.headerLength,
      modelName: input.modelName,
      modelVersion: input.modelVersion,
      giveBack: this.largeBuffers !== undefined,
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
    if (answer.spare !== undefined) this.largeBuffers?.give(answer.spare);
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
    /** Buffers free again once the worker hands them back (copies, and pooled ones only large outputs view). */
    const reusable = new Set<ArrayBuffer>();
    const reuse = this.largeBuffers;
    const outputs: EncodeOutput[] = large.map((i) => {
      const raw = raws[i]!;
      let buffer = raw.buffer as ArrayBuffer;
      let byteOffset = raw.byteOffset;
      // Triton's message buffer moves when it is ours alone and holds only this
      // answer; otherwise these bytes are copied (one memcpy, no formatting).
      if (options.exclusive && (movable(buffer, rawBytes) || reuse?.isTaken(buffer) === true)) {
        moved.add(buffer);
        if (reuse?.isTaken(buffer) === true) reusable.add(buffer);
      } else {
        const copy = reuse?.take(raw.length) ?? Buffer.allocUnsafeSlow(raw.length);
        raw.copy(copy);
        buffer = copy.buffer as ArrayBuffer;
        byteOffset = copy.byteOffset;
        reusable.add(buffer);
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

    // A pooled message buffer that an output encoded here (binary, or small) also
    // views stays with the response; only one that nothing else uses is reused.
    raws.forEach((raw, i) => {
      if (!large.includes(i)) reusable.delete(raw.buffer as ArrayBuffer);
    });
    const reusableSlots = [...reusable].map((b) => slot.get(b)!);
    // Views of a moved buffer read as empty once it is gone: where each output lies is kept.
    const spans = raws.map((raw) => ({ byteOffset: raw.byteOffset, byteLength: raw.byteLength }));

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
    response.rawOutputContents = raws.map((raw, i) => {
      const index = moved.has(raw.buffer as ArrayBuffer)
        ? slot.get(raw.buffer as ArrayBuffer)
        : undefined;
      return index === undefined
        ? raw
        : Buffer.from(answer.buffers[index]!, spans[i]!.byteOffset, spans[i]!.byteLength);
    });
    const encoded = new Map<number, Buffer[]>();
    large.forEach((i, k) =>
      encoded.set(
        i,
        answer.data[k]!.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
      ),
    );
    const result = encodeInferResponse(response, plan, encoded);
    if (reuse !== undefined && reusableSlots.length > 0) {
      // The encoded text is all the answer needs of these bytes: the response
      // lets go of them, and the next large body or answer reuses the memory.
      const freed = new Set(reusableSlots.map((index) => answer.buffers[index]!));
      response.rawOutputContents = response.rawOutputContents.map((raw) =>
        freed.has(raw.buffer as ArrayBuffer) ? EMPTY : raw,
      );
      for (const buffer of freed) reuse.give(buffer);
    }
    return result;
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
