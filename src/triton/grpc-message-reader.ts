import { status as GrpcStatus } from '@grpc/grpc-js';
import { GrpcCallError } from './grpc-call-error';
import { GRPC_FRAME_HEADER_BYTES } from './wire';

/**
 * Reassembles the one length-prefixed message of a unary gRPC response from
 * HTTP/2 DATA chunks. The message is copied at most once: a chunk that holds
 * it whole is sliced, otherwise the bytes go into one buffer of the announced
 * size (allocated only after the size was checked against the limit).
 */
export class UnaryMessageReader {
  private readonly header = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private message: Buffer | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** Throws GrpcCallError on a message over the limit, a compressed one, or a second message. */
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

  /** True while a message has started but not finished. */
  partial(): boolean {
    return this.headerFill > 0 || this.body !== undefined;
  }

  private startMessage(): number {
    if (this.message !== undefined) {
      throw new GrpcCallError(GrpcStatus.UNIMPLEMENTED, 'Too many responses received');
    }
    if (this.header[0] !== 0) {
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
