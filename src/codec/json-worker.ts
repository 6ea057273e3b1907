import { getPriority, setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMarkedAsUntransferable } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { isProxyError } from '../errors';
import type { InferOutputTensor } from '../protocol';
import { encodeJsonData } from './encode-infer-response';
import { parseInferRequest, type ParsedInferRequest } from './parse-infer-request';

/**
 * Runs in a piscina worker thread: the expensive, size-proportional parts of
 * large JSON requests and answers, so they never block the main event loop.
 * - parse: JSON text -> request with tensor bytes;
 * - encode: tensor bytes -> the JSON text of outputs' `data` arrays.
 * Answers are data only: a proxy error comes back as its code and message (an
 * Error's class does not survive postMessage); large buffers move between
 * threads (transferred, not copied), including the ones the main thread lent
 * for encoding, which come back with the answer.
 */

/** What the pool tells each worker when it starts. */
export interface JsonWorkerData {
  /** Added to this thread's nice value (0: same priority as the event loop). */
  niceIncrement: number;
}

lowerPriority((workerData as JsonWorkerData | undefined)?.niceIncrement ?? 0);

/**
 * Lowers this thread's CPU priority, so that when cores are short the event
 * loop thread runs first and large bodies wait instead of small requests.
 * On Linux setpriority acts on the calling thread only (elsewhere on the whole
 * process, so it is left alone there). piscina's own niceIncrement needs a
 * native addon and silently does nothing without it.
 */
function lowerPriority(increment: number): void {
  if (increment <= 0 || process.platform !== 'linux') return;
  try {
    setPriority(0, Math.min(19, getPriority(0) + increment));
  } catch {
    // Not permitted (a seccomp profile, say): the worker runs at normal priority.
  }
}

export interface ParseTask {
  kind: 'parse';
  body: Uint8Array;
  headerLength: number | undefined;
  modelName: string;
  modelVersion: string;
  /** Hand the body's buffer back when no parsed tensor views it (for ReusableBuffers). */
  giveBack: boolean;
}

/** One output to encode: its bytes are [byteOffset, byteOffset + byteLength) of `buffers[buffer]`. */
export interface EncodeOutput {
  tensor: InferOutputTensor;
  base64: boolean;
  buffer: number;
  byteOffset: number;
  byteLength: number;
}

export interface EncodeTask {
  kind: 'encode';
  buffers: ArrayBuffer[];
  outputs: EncodeOutput[];
}

export type WorkerFailure = { ok: false; code: string; message: string };
/** `spare`: the body's buffer, handed back when asked and no tensor views it. */
export type ParseAnswer =
  { ok: true; parsed: ParsedInferRequest; spare?: ArrayBuffer } | WorkerFailure;
/** `data[i]` is the text of `outputs[i]`; `buffers` are the task's, handed back. */
export type EncodeAnswer = { ok: true; data: Buffer[][]; buffers: ArrayBuffer[] } | WorkerFailure;

export default function runJsonTask(task: ParseTask | EncodeTask): unknown {
  try {
    return task.kind === 'parse' ? parse(task) : encode(task);
  } catch (err) {
    if (!isProxyError(err)) throw err;
    return { ok: false, code: err.code, message: err.message } satisfies WorkerFailure;
  } finally {
    collectGarbage();
  }
}

type GcFunction = (options: { type: 'major'; execution: 'sync' }) => void;
let gc: GcFunction | undefined;

/**
 * A full GC of this worker's heap after each task. Every task here leaves
 * garbage the size of its body (the JSON text as a string, the parsed
 * arrays, the moved-in buffers), and an idle worker runs no GC: measured
 * with the event-loop test, two workers kept ~1 GiB resident after a few
 * 64 MiB bodies until piscina's idle timeout ended them. With little left
 * alive the collection takes a few ms, on this thread, not the event loop.
 * gc() comes from a fresh context so the worker's own global gets no `gc`.
 */
function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as GcFunction;
  }
  gc({ type: 'major', execution: 'sync' });
}

function parse(task: ParseTask): unknown {
  const body = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
  const parsed = parseInferRequest({ ...task, body });
  const moving = transferables(parsed.request.rawInputContents);
  const answer: ParseAnswer = { ok: true, parsed };
  // JSON tensors are new buffers; binary ones view the body, which then stays with them.
  const spare = task.body.buffer;
  if (task.giveBack && spare instanceof ArrayBuffer && !moving.includes(spare)) {
    answer.spare = spare;
    moving.push(spare);
  }
  return move({ [transferableSymbol]: moving, [valueSymbol]: answer });
}

function encode(task: EncodeTask): unknown {
  const data = task.outputs.map((o) =>
    encodeJsonData(
      o.tensor,
      Buffer.from(task.buffers[o.buffer]!, o.byteOffset, o.byteLength),
      o.base64,
    ),
  );
  const answer: EncodeAnswer = { ok: true, data, buffers: task.buffers };
  const moving = new Set(transferables(data.flat()));
  for (const b of task.buffers) moving.add(b);
  return move({ [transferableSymbol]: [...moving], [valueSymbol]: answer });
}

/** Whole ArrayBuffers behind `views`; small pooled ones are cheaper to copy (and cannot move). */
function transferables(views: readonly Uint8Array[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const view of views) {
    const buffer = view.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength <= Buffer.poolSize) continue;
    if (isMarkedAsUntransferable(buffer)) continue;
    out.add(buffer);
  }
  return [...out];
}
