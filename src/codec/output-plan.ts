/**
 * How the HTTP response should carry each output, decided from the request
 * (HTTP-only parameters that never reach Triton) and applied when encoding.
 */
export interface PlannedOutput {
  readonly name: string;
  /** Raw bytes after the JSON header instead of a `data` array. */
  readonly binary: boolean;
  /** BYTES elements as base64 strings (`"content_type": "base64"` on the output). */
  readonly base64: boolean;
  /** Triton wrote the tensor into a shared-memory region: neither data nor bytes are returned. */
  readonly sharedMemory: boolean;
}

export interface OutputPlan {
  /**
   * Applies to outputs the request did not list (`binary_data_output`).
   * Triton's HTTP frontend uses it only for unlisted outputs: a listed output
   * is binary only when its own `binary_data` says so.
   */
  readonly binaryByDefault: boolean;
  /** The outputs the request listed, in request order; empty means "all outputs". */
  readonly outputs: readonly PlannedOutput[];
}
