import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { HttpPayload } from './cases';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A keep-alive HTTP/1.1 client with a fixed number of sockets, as a
 * production caller of the proxy would hold. `send` keeps the answer;
 * `sendCounting` only counts its bytes, so the load generator spends as
 * little as it can per answer.
 */
export class HttpClient {
  private readonly agent: Agent;

  constructor(
    private readonly host: string,
    private readonly port: number,
    sockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  send(payload: HttpPayload): Promise<HttpAnswer> {
    return this.exchange(payload, true).then((a) => ({
      status: a.status,
      headers: a.headers,
      body: a.body!,
    }));
  }

  /** Resolves with the answer's byte count; rejects unless the status is 200. */
  sendCounting(payload: HttpPayload): Promise<number> {
    return this.exchange(payload, false).then((a) => a.length);
  }

  private exchange(
    payload: HttpPayload,
    keep: boolean,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body?: Buffer; length: number }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          host: this.host,
          port: this.port,
          method: 'POST',
          path: payload.path,
          headers: { ...payload.headers, 'content-length': String(payload.body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let length = 0;
          const status = res.statusCode ?? 0;
          const keepBody = keep || status !== 200;
          res.on('data', (chunk: Buffer) => {
            length += chunk.length;
            if (keepBody) chunks.push(chunk);
          });
          res.on('end', () => {
            const body = keepBody ? Buffer.concat(chunks) : undefined;
            if (status !== 200 && !keep) {
              reject(new Error(`HTTP ${status}: ${body!.toString('utf8').slice(0, 300)}`));
              return;
            }
            resolve({ status, headers: res.headers, body, length });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
