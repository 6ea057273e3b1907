import { request, type Agent } from 'node:http';

/** One POST as the event-loop test's client processes see it. */
export interface PostResult {
  status: number;
  /** Bytes of the answer's body. */
  bytes: number;
  /** ms from sending to the end of the answer. */
  ms: number;
  /** The answer's body, when asked to keep it. */
  body?: Buffer;
}

/** POSTs a prebuilt body; the answer is counted and dropped unless `keep`. */
export function postJson(
  agent: Agent,
  url: string,
  body: Buffer,
  keep: boolean,
): Promise<PostResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        let bytes = 0;
        const kept: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (keep) kept.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            bytes,
            ms: performance.now() - started,
            body: keep ? Buffer.concat(kept) : undefined,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
