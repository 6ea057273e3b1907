const MiB = 1024 * 1024;

export interface ReusableBuffersOptions {
  /** Requests for fewer bytes than this get a fresh buffer (small ones are cheap to allocate); default 1 MiB. */
  minBytes?: number;
  /**
   * At most this many bytes are kept for reuse; default 192 MiB: two 64 MiB
   * bodies (one per worker) and two 32 MiB answers in flight.
   */
  maxBytes?: number;
  /** A buffer unused this long is dropped, so an idle proxy gives the memory back; default 30 s. */
  idleMs?: number;
}

/**
 * Large buffers kept for the next large body or answer instead of being
 * left to the GC. A fresh 64 MiB buffer costs the event loop twice: its
 * pages fault in as the bytes are copied into it (measured on the
 * development VM: 50-60 ms to fill a fresh 64 MiB buffer in 64 KiB chunks,
 * 11-16 ms to fill one already used), and every such allocation is external
 * memory that drives V8 towards another full GC of the main heap. A buffer
 * comes back only through give(), from a place that knows nobody else
 * references it (the JSON workers hand back a body no tensor views, and an
 * answer whose outputs they encoded); buffers that never come back are
 * collected as usual.
 */
export class ReusableBuffers {
  private readonly free: { buffer: ArrayBuffer; lastUsed: number }[] = [];
  private freeBytes = 0;
  /** Buffers handed out by take(): only these may move to a worker whole. */
  private readonly handedOut = new WeakSet<ArrayBuffer>();
  private timer: NodeJS.Timeout | undefined;

  private readonly options: Required<ReusableBuffersOptions>;

  constructor(options: ReusableBuffersOptions = {}) {
    this.options = {
      minBytes: options.minBytes ?? MiB,
      maxBytes: options.maxBytes ?? 192 * MiB,
      idleMs: options.idleMs ?? 30_000,
    };
  }

  /**
   * A Buffer of exactly `bytes` bytes (contents undefined), viewing a kept
   * ArrayBuffer when one fits (at least `bytes`, at most twice that), else a
   * fresh one rounded up to whole MiB so that the next body of about the same
   * size fits it.
   */
  take(bytes: number): Buffer {
    // Its own ArrayBuffer, never a slice of Node's shared pool: callers move it to a worker.
    if (bytes < this.options.minBytes) return Buffer.allocUnsafeSlow(bytes);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.buffer.byteLength;
      if (size >= bytes && size <= 2 * bytes) {
        if (best < 0 || size < this.free[best]!.buffer.byteLength) best = i;
      }
    }
    let buffer: ArrayBuffer;
    if (best >= 0) {
      buffer = this.free.splice(best, 1)[0]!.buffer;
      this.freeBytes -= buffer.byteLength;
    } else {
      buffer = new ArrayBuffer(Math.ceil(bytes / MiB) * MiB);
    }
    this.handedOut.add(buffer);
    return Buffer.from(buffer, 0, bytes);
  }

  /** True when `buffer` came from take(): its holder may move it (to a worker) whole. */
  isTaken(buffer: ArrayBufferLike): buffer is ArrayBuffer {
    return buffer instanceof ArrayBuffer && this.handedOut.has(buffer);
  }

  /** Keeps `buffer` for reuse; the caller must hold no view of it any more. */
  give(buffer: ArrayBuffer): void {
    // A detached (moved) buffer has byteLength 0.
    if (buffer.byteLength < this.options.minBytes) return;
    // Oldest first out when over the cap: the newest is the likeliest to fit the next body.
    this.free.push({ buffer, lastUsed: performance.now() });
    this.freeBytes += buffer.byteLength;
    while (this.freeBytes > this.options.maxBytes) {
      this.freeBytes -= this.free.shift()!.buffer.byteLength;
    }
    this.scheduleExpiry();
  }

  /** Bytes kept for reuse now. */
  get keptBytes(): number {
    return this.freeBytes;
  }

  /** Drops every kept buffer. */
  clear(): void {
    this.free.length = 0;
    this.freeBytes = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private scheduleExpiry(): void {
    if (this.timer !== undefined || this.free.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      for (let i = this.free.length - 1; i >= 0; i--) {
        if (now - this.free[i]!.lastUsed >= this.options.idleMs) {
          this.freeBytes -= this.free[i]!.buffer.byteLength;
          this.free.splice(i, 1);
        }
      }
      this.scheduleExpiry();
    }, this.options.idleMs);
    this.timer.unref();
  }
}
