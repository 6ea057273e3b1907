import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDeflate, createGzip } from 'node:zlib';

/** The content codings the proxy compresses answers with (Triton's two). */
export type ContentCoding = 'gzip' | 'deflate';

export interface ResponseCompression {
  /** Answers smaller than this go uncompressed: the framing and CPU are not worth it. */
  minBytes: number;
  /** zlib level, 1 (fastest) to 9 (smallest). */
  level: number;
  /** Told of every compressed answer once it is written: bytes before and after. */
  onCompressed?: (
    coding: ContentCoding,
    uncompressedBytes: number,
    compressedBytes: number,
  ) => void;
}

/**
 * The coding an `Accept-Encoding` header asks for, chosen as Triton chooses:
 * the highest q-value among gzip, deflate and identity, the first listed on
 * a tie, nothing at q=0. Beyond Triton (which ignores them), `*` stands for
 * any coding not listed, and names are case-insensitive. Undefined means
 * identity: no header, identity preferred, or nothing acceptable.
 */
export function negotiateEncoding(header: string | undefined): ContentCoding | undefined {
  if (header === undefined || header === '') return undefined;
  let best: ContentCoding | 'identity' = 'identity';
  let bestQ = 0;
  let starQ: number | undefined;
  const listed = new Set<string>();
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = (rawName ?? '').trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const p of params) {
      const [key, value] = p.split('=');
      if ((key ?? '').trim().toLowerCase() === 'q') q = Number((value ?? '').trim());
    }
    // A malformed weight makes the entry unusable, as in Triton.
    if (!Number.isFinite(q) || q < 0 || q > 1) continue;
    listed.add(name);
    if (name === '*') starQ = q;
    else if ((name === 'gzip' || name === 'deflate' || name === 'identity') && q > bestQ) {
      best = name;
      bestQ = q;
    }
  }
  if (starQ !== undefined && starQ > bestQ) {
    const unlisted = (['gzip', 'deflate'] as const).find((c) => !listed.has(c));
    if (unlisted !== undefined) best = unlisted;
  }
  return best === 'identity' ? undefined : best;
}

/**
 * Writes an answer made of chunks through gzip or deflate. The chunks are
 * fed to zlib as they are (never joined) and its output is piped to the
 * socket as it is produced, so the only extra memory is zlib's window and
 * the streams' buffers; a slow reader holds zlib back (backpressure), and
 * the compression itself runs on libuv's threadpool, off the event loop.
 * The compressed length is not known up front, so the answer is chunked.
 * Resolves when the answer is written; a client that goes away mid-answer
 * ends it at once (zlib's state is freed) without an error.
 */
export async function sendCompressedChunks(
  res: ServerResponse,
  chunks: readonly Buffer[],
  byteLength: number,
  headers: Record<string, string | number>,
  coding: ContentCoding,
  options: ResponseCompression,
  status = 200,
): Promise<void> {
  headers['content-encoding'] = coding;
  delete headers['content-length'];
  res.writeHead(status, headers);
  const level = options.level;
  const zlib = coding === 'gzip' ? createGzip({ level }) : createDeflate({ level });
  let compressed = 0;
  zlib.on('data', (c: Buffer) => (compressed += c.length));
  try {
    await pipeline(Readable.from(chunks, { objectMode: false }), zlib, res);
    options.onCompressed?.(coding, byteLength, compressed);
  } catch {
    // The client went away mid-answer (premature close): nobody is left to
    // tell, and pipeline has destroyed the streams. Anything else leaves a
    // half-written answer: cut the connection so the client sees it fail.
    if (!res.destroyed) res.destroy();
  }
}
