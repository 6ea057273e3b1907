import assert from 'node:assert/strict';
import { ReusableBuffers } from '../../../src/codec';

const MiB = 1024 * 1024;

describe('reusable buffers for large bodies', () => {
  it('hands a given-back buffer to the next body of about its size', () => {
    const buffers = new ReusableBuffers();
    const first = buffers.take(3 * MiB + 5);
    assert.equal(first.length, 3 * MiB + 5);
    assert.equal(first.buffer.byteLength, 4 * MiB, 'rounded up to whole MiB');
    buffers.give(first.buffer as ArrayBuffer);
    assert.equal(buffers.keptBytes, 4 * MiB);

    const second = buffers.take(3 * MiB + 100);
    assert.equal(second.buffer, first.buffer, 'the same memory again');
    assert.equal(second.length, 3 * MiB + 100);
    assert.equal(buffers.keptBytes, 0);
  });

  it('does not hand a buffer over twice its size to a smaller body', () => {
    const buffers = new ReusableBuffers();
    const big = buffers.take(64 * MiB);
    buffers.give(big.buffer as ArrayBuffer);
    const small = buffers.take(2 * MiB);
    assert.notEqual(small.buffer, big.buffer);
    assert.equal(buffers.keptBytes, 64 * MiB, 'the large one stays for a large body');
  });

  it('gives small bodies fresh buffers and keeps none of them', () => {
    const buffers = new ReusableBuffers();
    const small = buffers.take(1000);
    assert.equal(small.length, 1000);
    assert.equal(
      small.buffer.byteLength,
      1000,
      'its own memory (movable), not a slice of a shared pool',
    );
    assert.equal(buffers.isTaken(small.buffer), false);
    buffers.give(small.buffer as ArrayBuffer);
    assert.equal(buffers.keptBytes, 0);
  });

  it('lets only its own buffers move whole', () => {
    const buffers = new ReusableBuffers();
    assert.equal(buffers.isTaken(buffers.take(2 * MiB).buffer), true);
    assert.equal(buffers.isTaken(Buffer.allocUnsafeSlow(2 * MiB).buffer), false);
  });

  it('keeps at most maxBytes, dropping the oldest', () => {
    const buffers = new ReusableBuffers({ maxBytes: 8 * MiB });
    const a = buffers.take(4 * MiB).buffer as ArrayBuffer;
    const b = buffers.take(4 * MiB).buffer as ArrayBuffer;
    const c = buffers.take(4 * MiB).buffer as ArrayBuffer;
    for (const x of [a, b, c]) buffers.give(x);
    assert.equal(buffers.keptBytes, 8 * MiB);
    const next = [buffers.take(4 * MiB).buffer, buffers.take(4 * MiB).buffer];
    assert.ok(!next.includes(a), 'the oldest was dropped');
  });

  it('ignores a buffer that moved away (detached, 0 bytes)', () => {
    const buffers = new ReusableBuffers();
    const moved = buffers.take(2 * MiB).buffer as ArrayBuffer;
    structuredClone(moved, { transfer: [moved] });
    buffers.give(moved);
    assert.equal(buffers.keptBytes, 0);
  });

  it('drops kept buffers after they were unused for idleMs', async () => {
    const buffers = new ReusableBuffers({ idleMs: 50 });
    buffers.give(buffers.take(2 * MiB).buffer as ArrayBuffer);
    assert.equal(buffers.keptBytes, 2 * MiB);
    // Generous: the timer may fire late on a loaded box; it must fire within 2 x idleMs + slack.
    const deadline = Date.now() + 5_000;
    while (buffers.keptBytes > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(buffers.keptBytes, 0);
  });
});
