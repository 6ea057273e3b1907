import assert from 'node:assert/strict';
import fc from 'fast-check';
import { status } from '@grpc/grpc-js';
import { GrpcCallError } from '../../../src/triton/grpc-call-error';
import { UnaryMessageReader } from '../../../src/triton/grpc-message-reader';

function frame(message: Buffer, flag = 0): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flag;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

function expectCallError(fn: () => void, code: status, details: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GrpcCallError);
    assert.equal(err.code, code);
    assert.match(err.details, details);
    return true;
  });
}

describe('unary gRPC message reassembly', () => {
  it('returns the message whatever the DATA chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (bytes, cuts) => {
          const message = Buffer.from(bytes);
          const reader = new UnaryMessageReader(1024);
          for (const chunk of split(frame(message), cuts)) reader.push(chunk);
          assert.deepEqual(reader.result(), message);
          assert.equal(reader.partial(), false);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('slices a message that arrives in one chunk instead of copying it', () => {
    const chunk = frame(Buffer.from('hello'));
    const reader = new UnaryMessageReader(1024);
    reader.push(chunk);
    const message = reader.result()!;
    assert.equal(message.toString(), 'hello');
    assert.equal(message.buffer, chunk.buffer, 'a view into the received chunk');
  });

  it('reassembles a message split over chunks in the buffer its allocate option gives', () => {
    const message = Buffer.from('a message in three chunks');
    const asked: number[] = [];
    const target = Buffer.alloc(64);
    const reader = new UnaryMessageReader(1024, {
      allocate: (bytes) => {
        asked.push(bytes);
        return target.subarray(0, bytes);
      },
    });
    for (const chunk of split(frame(message), [3, 12])) reader.push(chunk);
    assert.deepEqual(asked, [message.length]);
    assert.equal(reader.result()!.toString(), message.toString());
    assert.equal(reader.result()!.buffer, target.buffer);
  });

  it('reports an incomplete message as partial', () => {
    const reader = new UnaryMessageReader(1024);
    reader.push(frame(Buffer.from('hello')).subarray(0, 7));
    assert.equal(reader.result(), undefined);
    assert.equal(reader.partial(), true);
  });

  it('refuses a message over the limit as soon as its header arrives', () => {
    const reader = new UnaryMessageReader(10);
    const header = frame(Buffer.alloc(11)).subarray(0, 5);
    expectCallError(
      () => reader.push(header),
      status.RESOURCE_EXHAUSTED,
      /^Received message larger than max \(11 vs 10\)$/,
    );
  });

  it('refuses a compressed message, since no compression was negotiated', () => {
    const reader = new UnaryMessageReader(1024);
    expectCallError(
      () => reader.push(frame(Buffer.from('x'), 1)),
      status.INTERNAL,
      /compressed message/,
    );
  });

  it('refuses a second message on a unary call', () => {
    const reader = new UnaryMessageReader(1024);
    const two = Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]);
    expectCallError(() => reader.push(two), status.UNIMPLEMENTED, /Too many responses/);
  });

  it('accepts an empty message', () => {
    const reader = new UnaryMessageReader(1024);
    reader.push(frame(Buffer.alloc(0)));
    assert.equal(reader.result()?.length, 0);
  });

  it("keeps a message as views of the chunks it arrived in with collect 'parts'", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (bytes, cuts) => {
          const message = Buffer.from(bytes);
          const whole = frame(message);
          const reader = new UnaryMessageReader(1024, { collect: 'parts' });
          for (const chunk of split(whole, cuts)) reader.push(chunk);
          const parts = reader.parts()!;
          assert.deepEqual(Buffer.concat(parts), message);
          for (const part of parts) assert.equal(part.buffer, whole.buffer, 'a view, not a copy');
          assert.equal(reader.messageLength(), message.length);
          assert.deepEqual(reader.result(), message);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("checks the framing and keeps nothing with collect 'none'", () => {
    const reader = new UnaryMessageReader(1024, { collect: 'none' });
    const whole = frame(Buffer.from('hello'));
    reader.push(whole.subarray(0, 3));
    assert.equal(reader.messageLength(), undefined, 'prefix not complete yet');
    reader.push(whole.subarray(3, 6));
    assert.equal(reader.messageLength(), 5);
    assert.equal(reader.received(), false);
    reader.push(whole.subarray(6));
    assert.equal(reader.received(), true);
    assert.equal(reader.result(), undefined);
    expectCallError(() => reader.push(frame(Buffer.from('b'))), status.UNIMPLEMENTED, /Too many/);
  });
});
