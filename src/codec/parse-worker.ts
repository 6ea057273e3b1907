import { isMarkedAsUntransferable } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { isProxyError } from '../errors';
import { parseInferRequest } from './parse-infer-request';
import type { ParsedInferRequest } from './parse-infer-request';

/**
 * Runs in a piscina worker thread: the expensive part of a large JSON
 * request (JSON text -> request with tensor bytes), so it never blocks the
 * main event loop. Its answer is data only: a proxy error comes back as its
 * code and message (an Error's class does not survive postMessage), tensor
 * bytes come back as transferred ArrayBuffers (moved, not copied).
 */

export interface ParseTask {
  body: Uint8Array;
  headerLength: number | undefined;
  modelName: string;
  modelVersion: string;
}

export type ParseAnswer =
  { ok: true; parsed: ParsedInferRequest } | { ok: false; code: string; message: string };

export default function parseInWorker(task: ParseTask): unknown {
  const body = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
  let parsed: ParsedInferRequest;
  try {
    parsed = parseInferRequest({ ...task, body });
  } catch (err) {
    if (!isProxyError(err)) throw err;
    return { ok: false, code: err.code, message: err.message } satisfies ParseAnswer;
  }
  const answer: ParseAnswer = { ok: true, parsed };
  return move({
    [transferableSymbol]: transferables(parsed.request.rawInputContents),
    [valueSymbol]: answer,
  });
}

/** Whole ArrayBuffers behind the tensors; small pooled ones are cheaper to copy (and cannot move). */
function transferables(raws: readonly Uint8Array[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const raw of raws) {
    const buffer = raw.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength <= Buffer.poolSize) continue;
    if (isMarkedAsUntransferable(buffer)) continue;
    out.add(buffer);
  }
  return [...out];
}
