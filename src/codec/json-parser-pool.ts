import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import Piscina from 'piscina';
import { ProxyError, type ErrorCode } from '../errors';
import {
  parseInferRequest,
  type InferRequestBody,
  type ParsedInferRequest,
} from './parse-infer-request';
import type { ParseAnswer, ParseTask } from './parse-worker';

export interface InferRequestParserOptions {
  /** JSON text (the whole body, or the inference header) above this many bytes is parsed in a worker. */
  workerThresholdBytes: number;
  /** Worker threads; default: available cores, at most 4. */
  threads?: number;
  /** Tasks waiting for a worker beyond this are refused with 429. */
  maxQueue?: number;
}

const MAX_THREADS = 4;

/**
 * Parses inference request bodies: small ones inline (no worker hop on the
 * hot path), large JSON ones in a bounded piscina pool, because JSON.parse of
 * tens of MiB holds the event loop for hundreds of ms and stalls every other
 * request on the replica. Both paths give the same result and the same errors.
 */
export class InferRequestParser {
  private readonly pool: Piscina;
  private readonly threshold: number;

  constructor(options: InferRequestParserOptions) {
    this.threshold = options.workerThresholdBytes;
    const threads = Math.max(1, options.threads ?? Math.min(availableParallelism(), MAX_THREADS));
    const ext = extname(__filename);
    this.pool = new Piscina({
      filename: join(__dirname, `parse-worker${ext}`),
      // No thread until the first large body: an idle worker is a second V8
      // isolate, 15 MB of RSS (85 -> 100 MB idle) a proxy serving small requests never uses.
      minThreads: 0,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? threads * 16,
      idleTimeout: 60_000,
      // Sources run from TypeScript (tests, tsx) need the loader in the worker too.
      execArgv: ext === '.ts' ? [...process.execArgv, '--require', 'tsx/cjs'] : undefined,
    });
  }

  async parse(input: InferRequestBody): Promise<ParsedInferRequest> {
    const jsonBytes = input.headerLength ?? input.body.length;
    if (jsonBytes <= this.threshold || input.headerLength === 0) {
      return parseInferRequest(input);
    }
    return this.parseInWorker(input, this.pool);
  }

  private async parseInWorker(input: InferRequestBody, pool: Piscina): Promise<ParsedInferRequest> {
    // The body moves to the worker when it owns its ArrayBuffer (Buffer.concat
    // of a large upload does); otherwise one copy is made for the move.
    const { body } = input;
    const owned =
      body.byteOffset === 0 &&
      body.buffer instanceof ArrayBuffer &&
      body.byteLength === body.buffer.byteLength &&
      body.byteLength > Buffer.poolSize;
    const moved = owned ? body : new Uint8Array(body);
    const task: ParseTask = {
      body: moved,
      headerLength: input.headerLength,
      modelName: input.modelName,
      modelVersion: input.modelVersion,
    };
    let answer: ParseAnswer;
    try {
      answer = (await pool.run(task, {
        transferList: [moved.buffer as ArrayBuffer],
      })) as ParseAnswer;
    } catch (err) {
      if (err instanceof Error && /queue is at limit/i.test(err.message)) {
        throw new ProxyError(
          'OVERLOADED',
          'too many large JSON requests are being parsed; retry later',
          {
            retryAfterSeconds: 1,
          },
        );
      }
      throw err;
    }
    if (!answer.ok) throw new ProxyError(answer.code as ErrorCode, answer.message);
    const { request } = answer.parsed;
    // Tensors arrive as Uint8Arrays over the moved buffers; view them as Buffers without copying.
    request.rawInputContents = request.rawInputContents.map((raw) =>
      Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength),
    );
    return answer.parsed;
  }

  /** Worker threads running now: none until the first body above the threshold. */
  get workerThreads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
