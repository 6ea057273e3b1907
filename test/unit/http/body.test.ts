import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { ReusableBuffers } from '../../../src/codec';
import { readBody } from '../../../src/http/body';

const MiB = 1024 * 1024;

/** A request stream with these headers; the test writes its body. */
function request(headers: Record<string, string>): PassThrough & IncomingMessage {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & IncomingMessage;
}

/** Writes `body` in 64 KiB chunks, as a socket delivers it. */
function send(req: PassThrough, body: Buffer, end = true): void {
  for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
  if (end) req.end();
}

describe('request body: large bodies in reused buffers', () => {
  it('assembles a large body of known length in a buffer from the pool, byte for byte', async () => {
    const buffers = new ReusableBuffers();
    const body = Buffer.alloc(3 * MiB + 7);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const req = request({ 'content-length': String(body.length) });
    const read = readBody(req, { limit: 8 * MiB, timeoutMs: 0, buffers });
    send(req, body);
    const got = await read;
    assert.ok(got.equals(body));
    assert.ok(
      buffers.isTaken(got.buffer),
      'the body is in a pool buffer (it may move to a worker whole)',
    );
  });

  it('reads a small body without the pool', async () => {
    const buffers = new ReusableBuffers();
    const body = Buffer.from('{"inputs":[]}');
    const req = request({ 'content-length': String(body.length) });
    const read = readBody(req, { limit: MiB, timeoutMs: 0, buffers });
    send(req, body);
    const got = await read;
    assert.ok(got.equals(body));
    assert.equal(buffers.isTaken(got.buffer), false);
  });

  it('gives the buffer back when the body is refused halfway (longer than its Content-Length)', async () => {
    const buffers = new ReusableBuffers();
    const req = request({ 'content-length': String(2 * MiB) });
    const read = readBody(req, { limit: 8 * MiB, timeoutMs: 0, buffers });
    send(req, Buffer.alloc(2 * MiB + 64 * 1024), false);
    await assert.rejects(read, /longer than its Content-Length/);
    assert.equal(buffers.keptBytes, 2 * MiB, 'the half-filled buffer is kept for the next body');
  });
});
