import { status as GrpcStatus } from '@grpc/grpc-js';
import { GrpcCallError } from './grpc-call-error';
import { GRPC_FRAME_HEADER_BYTES } from './wire';

export interface UnaryMessageReaderOptions {
  /**
   * Accept a message whose compressed flag is set (the caller inflates it,
   * see compressed()); otherwise such a message is an INTERNAL error.
   */
  compressedAllowed?: boolean;
  /** The UNIMPLEMENTED error's message for a second message on a unary call. */
  secondMessageError?: string;
}

/**
 * Reassembles the one length-prefixed message of a unary gRPC call (a
 * response on the client side, a request on the server side) from HTTP/2
 * DATA chunks. The message is copied at most once: a chunk that holds it
 * whole is sliced, otherwise the bytes go into one buffer of the announced
 * size (allocated only after the size was checked against the limit).
 */
export class UnaryMessageReader {
  private readonly header = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private message: Buffer | undefined;
  private compressedFlag = false;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly options: UnaryMessageReaderOptions = {},
  ) {}

  /** Throws GrpcCallError on a message over the limit, a compressed one (unless allowed), or a second message. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.body === undefined) {
        const take = Math.min(GRPC_FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < GRPC_FRAME_HEADER_BYTES) return;
        const length = this.startMessage();
        if (chunk.length - pos >= length) {
          this.finish(chunk.subarray(pos, pos + length));
          pos += length;
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - pos);
      chunk.copy(this.body, this.bodyFill, pos, pos + take);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === this.body.length) {
        const done = this.body;
        this.body = undefined;
        this.finish(done);
      }
    }
  }

  /** The message, once it arrived whole. */
  result(): Buffer | undefined {
    return this.message;
  }

  /** True when the message arrived with the compressed flag (only with compressedAllowed). */
  compressed(): boolean {
    return this.compressedFlag;
  }

  /** True while a message has started but not finished. */
  partial(): boolean {
    return this.headerFill > 0 || this.body !== undefined;
  }

  private startMessage(): number {
    if (this.message !== undefined) {
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
    return length;
  }

  private finish(message: Buffer): void {
    this.message = message;
    this.headerFill = 0;
  }
}
