import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { DecoupledModel, Tensor } from '../../../src/fake-triton';

/**
 * A decoupled model like an LLM's token stream: COUNT (INT32) responses,
 * each with TOKEN (BYTES, "token <i>") and INDEX (INT32), SIZE (INT32, 0 by
 * default) extra bytes of padding in PAD (UINT8) to make events large.
 */
export function tokensModel(overrides: Partial<DecoupledModel> = {}): DecoupledModel {
  return {
    name: 'tokens',
    backend: 'python',
    maxBatchSize: 0,
    decoupled: true,
    inputs: [
      { name: 'COUNT', datatype: 'INT32', dims: [1] },
      { name: 'SIZE', datatype: 'INT32', dims: [1], optional: true },
    ],
    outputs: [
      { name: 'TOKEN', datatype: 'BYTES', dims: [1] },
      { name: 'INDEX', datatype: 'INT32', dims: [1] },
      { name: 'PAD', datatype: 'UINT8', dims: [-1] },
    ],
    respond: (inputs) => {
      const count = inputs.get('COUNT')!.data.readInt32LE(0);
      const size = inputs.get('SIZE')?.data.readInt32LE(0) ?? 0;
      return Array.from({ length: count }, (_, i) => {
        const text = Buffer.from(`token ${i}`);
        const token = Buffer.alloc(4 + text.length);
        token.writeUInt32LE(text.length, 0);
        text.copy(token, 4);
        const index = Buffer.alloc(4);
        index.writeInt32LE(i, 0);
        const outputs = new Map<string, Tensor>([
          ['TOKEN', { datatype: 'BYTES', shape: [1], data: token }],
          ['INDEX', { datatype: 'INT32', shape: [1], data: index }],
        ]);
        if (size > 0) {
          outputs.set('PAD', { datatype: 'UINT8', shape: [size], data: Buffer.alloc(size, 7) });
        }
        return outputs;
      });
    },
    ...overrides,
  };
}

/** What Triton writes for one tokens response without padding. */
export function tokenEvent(i: number, id?: string): string {
  const idPart = id === undefined ? '' : `"id":"${id}",`;
  return `data: {"INDEX":${i},"TOKEN":"token ${i}",${idPart}"model_name":"tokens","model_version":"1"}\n\n`;
}

export interface StreamedAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  /** Every chunk as it arrived, with the time it arrived. */
  chunks: Array<{ at: number; text: string }>;
  text: string;
  /** The complete events (text between "data: " and the blank line). */
  events: string[];
}

/** Splits a text/event-stream body into its `data:` payloads. */
export function eventsOf(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      if (!e.startsWith('data: ')) throw new Error(`not an SSE data event: ${JSON.stringify(e)}`);
      return e.slice('data: '.length);
    });
}

export interface StreamOptions {
  headers?: Record<string, string>;
  /** Called with each chunk as it arrives; may destroy the request or pause the response. */
  onChunk?: (text: string, res: IncomingMessage, abort: () => void) => void;
}

/** POSTs and reads the answer chunk by chunk over a real socket (node:http, no buffering client). */
export function postStream(
  url: string,
  body: unknown,
  options: StreamOptions = {},
): Promise<StreamedAnswer> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = httpRequest(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': payload.length,
        ...options.headers,
      },
    });
    const abort = () => req.destroy();
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Array<{ at: number; text: string }> = [];
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        chunks.push({ at: performance.now(), text });
        options.onChunk?.(text, res, abort);
      });
      const finish = () => {
        const text = chunks.map((c) => c.text).join('');
        const isEvents = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          chunks,
          text,
          events: isEvents ? eventsOf(text) : [],
        });
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', () => finish());
    });
    req.end(payload);
  });
}
