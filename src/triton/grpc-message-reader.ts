import { status as GrpcStatus } from '@grpc/grpc-js';
import { GrpcCallError } from './grpc-call-error';
import { GRPC_FRAME_HEADER_BYTES } from './wire';

/**
 * What the reader keeps of the message's bytes:
 * - 'copy': one Buffer (a view of the chunk when it came in one, else one
 *   copy into a buffer of the announced size);
 * - 'parts': views of the received chunks, in order, never copied (the
 *   caller forwards them as they are; they stay alive as long as it holds them);
 * - 'none': nothing, only the framing is checked (the caller passes the
 *   chunks on itself as they arrive).
 */
export type MessageCollect = 'copy' | 'parts' | 'none';

export interface UnaryMessageReaderOptions {
  /**
   * Accept a message whose compressed flag is set (the caller inflates it,
   * see compressed()); otherwise such a message is an INTERNAL error.
   */
  compressedAllowed?: boolean;
  /** The UNIMPLEMENTED error's message for a second message on a unary call. */
  secondMessageError?: string;
  /** Default 'copy'. */
  collect?: MessageCollect;
  /**
   * Where 'copy' reassembles a message that spans several chunks (default
   * Buffer.allocUnsafe); the proxy passes reused buffers for large ones.
   */
  allocate?: (bytes: number) => Buffer;
}

/**
 * Reads the one length-prefixed message of a unary gRPC call (a response on
 * the client side, a request on the server side) from HTTP/2 DATA chunks:
 * checks its prefix (size limit, compressed flag) before any of its bytes
 * are kept, refuses a second message, and keeps the bytes as `collect` says.
 */
export class UnaryMessageReader {
  private readonly header = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** Bytes of the current message still to come; -1 between messages. */
  private left = -1;
  private length = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private pieces: Buffer[] = [];
  private message: Buffer | undefined;
  private messageParts: readonly Buffer[] | undefined;
  private done = false;
  private compressedFlag = false;
  private readonly collect: MessageCollect;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly options: UnaryMessageReaderOptions = {},
  ) {
    this.collect = options.collect ?? 'copy';
  }

  /** Throws GrpcCallError on a message over the limit, a compressed one (unless allowed), or a second message. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.left < 0) {
        const take = Math.min(GRPC_FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < GRPC_FRAME_HEADER_BYTES) return;
        this.left = this.startMessage();
        if (this.left === 0) {
          this.finish();
          continue;
        }
      }
      const take = Math.min(this.left, chunk.length - pos);
      this.keep(chunk, pos, take);
      pos += take;
      this.left -= take;
      if (this.left === 0) this.finish();
    }
  }

  /** The message as one Buffer, once it arrived whole ('parts' joins its pieces: a copy). */
  result(): Buffer | undefined {
    if (this.message === undefined && this.messageParts !== undefined) {
      const parts = this.messageParts;
      this.message = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.length);
    }
    return this.message;
  }

  /** The message as the received pieces (collect 'parts'), once it arrived whole. */
  parts(): readonly Buffer[] | undefined {
    return this.messageParts;
  }

  /** True once a whole message has arrived. */
  received(): boolean {
    return this.done;
  }

  /** The announced length of the message, once its prefix has arrived. */
  messageLength(): number | undefined {
    return this.left >= 0 || this.done ? this.length : undefined;
  }

  /** True when the message arrived with the compressed flag (only with compressedAllowed). */
  compressed(): boolean {
    return this.compressedFlag;
  }

  /** True while a message has started but not finished. */
  partial(): boolean {
    return this.headerFill > 0 || this.left >= 0;
  }

  private keep(chunk: Buffer, pos: number, take: number): void {
    switch (this.collect) {
      case 'none':
        return;
      case 'parts':
        this.pieces.push(take === chunk.length ? chunk : chunk.subarray(pos, pos + take));
        return;
      case 'copy':
        if (this.body === undefined && take === this.length) {
          // The whole message in this chunk: a view, no copy.
          this.message = chunk.subarray(pos, pos + take);
          return;
        }
        this.body ??= (this.options.allocate ?? Buffer.allocUnsafe)(this.length);
        chunk.copy(this.body, this.bodyFill, pos, pos + take);
        this.bodyFill += take;
    }
  }

  private startMessage(): number {
    if (this.done) {
      throw new GrpcCallError(
        GrpcStatus.UNIMPLEMENTED,
        this.options.secondMessageError ?? 'Too many responses received',
      );
    }
    this.compressedFlag = this.header[0] !== 0;
    if (this.compressedFlag && this.options.compressedAllowed !== true) {
      throw new GrpcCallError(
        GrpcStatus.INTERNAL,
        `Received a compressed message (flag ${this.header[0]}) although no compression was negotiated`,
      );
    }
    const length = this.header.readUInt32BE(1);
    if (length > this.maxMessageBytes) {
      throw new GrpcCallError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `Received message larger than max (${length} vs ${this.maxMessageBytes})`,
      );
    }
    this.length = length;
    return length;
  }

  private finish(): void {
    this.done = true;
    this.headerFill = 0;
    this.left = -1;
    if (this.collect === 'parts') {
      this.messageParts = this.pieces;
      this.pieces = [];
    } else if (this.collect === 'copy') {
      this.message ??= this.body ?? Buffer.alloc(0);
      this.body = undefined;
    }
  }
}
