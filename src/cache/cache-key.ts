import { createHash, webcrypto } from 'node:crypto';
import type { ModelInferRequest, ParameterValue, Parameters } from '../protocol';

/**
 * Request parameters that never change the answer: scheduling hints and the
 * request's own id (which is not a parameter but travels beside them).
 */
const IGNORED_PARAMETERS: ReadonlySet<string> = new Set(['priority', 'timeout']);

/**
 * Inputs at least this large are digested on the thread pool (WebCrypto)
 * instead of on the event loop: SHA-256 runs near 1 GB/s, so a 64 MiB
 * tensor would otherwise hold the loop for tens of milliseconds.
 */
const OFF_LOOP_INPUT_BYTES = 256 * 1024;

/** What, beside the request, decides which answer a request gets. */
export interface KeyScope {
  /** The version that will serve the request (resolved, never "latest"). */
  version: string;
  /** The model's generation: answers from before a load, reload or unload differ. */
  generation: number;
}

function parameterList(params: Parameters, skip?: ReadonlySet<string>): string[][] {
  const keys = Object.keys(params).sort();
  const list: string[][] = [];
  for (const key of keys) {
    if (skip?.has(key)) continue;
    list.push([key, ...typed(params[key]!)]);
  }
  return list;
}

/** The parameter as Triton receives it: int64 5 is the same whether it came as 5 or 5n. */
function typed(value: ParameterValue): [string, string] {
  switch (typeof value) {
    case 'boolean':
      return ['b', value ? '1' : '0'];
    case 'string':
      return ['s', value];
    case 'bigint':
      return ['i', value.toString()];
    default:
      return Number.isInteger(value) ? ['i', String(value)] : ['d', String(value)];
  }
}

/**
 * A strong key (SHA-256, base64url) over everything Triton receives that can
 * change its answer: the model, the version that will serve it, the model's
 * generation, each input's name, datatype, shape, parameters and raw bytes
 * (inputs in name order, so JSON and binary forms, and any input order, meet
 * in one entry), the requested outputs with their parameters (classification)
 * in request order, and the request parameters except priority and timeout.
 * The request id is left out, so every caller's id can be echoed.
 *
 * HTTP-only rendering choices (binary_data, binary_data_output, base64) are
 * not in the request at this point and not in the key: the cache stores the
 * raw answer and each caller gets its own rendering.
 */
export async function cacheKeyOf(request: ModelInferRequest, scope: KeyScope): Promise<string> {
  const order = request.inputs.map((_, i) => i);
  order.sort((a, b) => compare(request.inputs[a]!.name, request.inputs[b]!.name));
  const raws = order.map((i) => request.rawInputContents[i] ?? EMPTY);
  // Large inputs contribute their digest (computed off the event loop) instead of their bytes.
  const digests = await Promise.all(
    raws.map((raw) =>
      raw.length >= OFF_LOOP_INPUT_BYTES
        ? webcrypto.subtle.digest('SHA-256', raw).then((d) => Buffer.from(d))
        : undefined,
    ),
  );
  const header = JSON.stringify([
    'v1',
    request.modelName,
    scope.version,
    scope.generation,
    parameterList(request.parameters, IGNORED_PARAMETERS),
    order.map((i, n) => {
      const input = request.inputs[i]!;
      return [
        input.name,
        input.datatype,
        input.shape,
        parameterList(input.parameters),
        raws[n]!.length,
        digests[n] === undefined ? 'b' : 'd',
      ];
    }),
    request.outputs.map((o) => [o.name, parameterList(o.parameters)]),
  ]);
  const hash = createHash('sha256').update(header);
  for (let n = 0; n < raws.length; n++) hash.update(digests[n] ?? raws[n]!);
  return hash.digest('base64url');
}

const EMPTY = Buffer.alloc(0);

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
