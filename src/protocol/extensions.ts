/** Every extension Triton 2.51 lists in its server metadata, in its order. */
export const TRITON_EXTENSIONS = [
  'classification',
  'sequence',
  'model_repository',
  'model_repository(unload_dependents)',
  'schedule_policy',
  'model_configuration',
  'system_shared_memory',
  'cuda_shared_memory',
  'binary_tensor_data',
  'parameters',
  'statistics',
  'trace',
  'logging',
] as const;

export type TritonExtension = (typeof TRITON_EXTENSIONS)[number];

/**
 * The extensions the proxy serves, claimed by the code that registers their
 * routes (next to the route, so a route removed takes its claim with it),
 * and read by GET /v2. Shared memory is routed but not served (its routes
 * only refuse), so it never claims its extension.
 */
export class ServedExtensions {
  private readonly served = new Set<TritonExtension>();

  serve(...extensions: TritonExtension[]): void {
    for (const e of extensions) this.served.add(e);
  }

  /**
   * The served extensions in Triton's order; limited to those `upstream`
   * lists when given (a Triton server built without tracing cannot be
   * traced through the proxy either).
   */
  list(upstream?: readonly unknown[]): string[] {
    return TRITON_EXTENSIONS.filter(
      (e) => this.served.has(e) && (upstream === undefined || upstream.includes(e)),
    );
  }
}
