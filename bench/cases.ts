import type { ModelInferRequest, ModelInferResponse } from '../src/protocol';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface HttpPayload {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface BenchCase {
  id: string;
  description: string;
  concurrency: number;
  /** Tensor bytes one request carries each way (JSON cases: the raw equivalent). */
  tensorBytesIn: number;
  tensorBytesOut: number;
  http: HttpPayload;
  grpc: ModelInferRequest;
  /** Throws unless an HTTP answer body is the right one (checked once per run, outside timing). */
  checkHttp(body: Buffer, headers: Record<string, string | string[] | undefined>): void;
  checkGrpc(response: ModelInferResponse): void;
  /** Longer windows for cases whose single request takes long. */
  durationScale: number;
  /** kserve/rest-proxy can serve it (it has no binary tensor extension). */
  restProxy: boolean;
}

/** Every case the bench knows, in the order it runs them. */
export const CASE_IDS = [
  'small-json-c1',
  'small-json-c4',
  'small-json',
  'small-json-c256',
  'bin-4k',
  'bin-256k',
  'bin-4m',
  'bin-64m',
  'json-1m',
] as const;
export type CaseId = (typeof CASE_IDS)[number];

export function buildCase(id: CaseId): BenchCase {
  switch (id) {
    case 'small-json-c1':
      return simpleJsonCase(id, 1);
    case 'small-json-c4':
      return simpleJsonCase(id, 4);
    case 'small-json':
      return simpleJsonCase(id, 16);
    case 'small-json-c256':
      return simpleJsonCase(id, 256);
    case 'bin-4k':
      return binaryIdentityCase(id, 4 * KiB, 8, 1);
    case 'bin-256k':
      return binaryIdentityCase(id, 256 * KiB, 4, 1);
    case 'bin-4m':
      return binaryIdentityCase(id, 4 * MiB, 4, 1);
    case 'bin-64m':
      return binaryIdentityCase(id, 64 * MiB, 2, 2.5);
    case 'json-1m':
      return jsonIdentityCase(id, 1024 * 1024, 2, 4);
  }
}

function fail(message: string): never {
  throw new Error(message);
}

/** The small request at a given concurrency (c=256 is where connection and request memory shows). */
function simpleJsonCase(id: CaseId, concurrency: number): BenchCase {
  const a = Array.from({ length: 16 }, (_, i) => i);
  const b = Array.from({ length: 16 }, () => 1);
  const body = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: a },
        { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: b },
      ],
    }),
  );
  const raw = (values: number[]) => {
    const buf = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => buf.writeInt32LE(v, i * 4));
    return buf;
  };
  const sum = a.map((x, i) => x + b[i]!);
  const diff = a.map((x, i) => x - b[i]!);
  return {
    id,
    description: `simple add/sub, INT32 [1,16] x2, JSON in and out, ${concurrency} concurrent`,
    concurrency,
    tensorBytesIn: 128,
    tensorBytesOut: 128,
    durationScale: 1,
    restProxy: true,
    http: {
      path: '/v2/models/simple/infer',
      headers: { 'content-type': 'application/json' },
      body,
    },
    grpc: {
      modelName: 'simple',
      modelVersion: '',
      id: '',
      parameters: {},
      inputs: [
        { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], parameters: {} },
        { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], parameters: {} },
      ],
      outputs: [],
      rawInputContents: [raw(a), raw(b)],
    },
    checkHttp: (answer) => {
      const json = JSON.parse(answer.toString('utf8')) as {
        outputs?: Array<{ name: string; data: number[] }>;
      };
      const byName = new Map((json.outputs ?? []).map((o) => [o.name, o.data]));
      if (JSON.stringify(byName.get('OUTPUT0')) !== JSON.stringify(sum))
        fail(`OUTPUT0 is not the sum: ${answer.toString().slice(0, 300)}`);
      if (JSON.stringify(byName.get('OUTPUT1')) !== JSON.stringify(diff))
        fail('OUTPUT1 is not the difference');
    },
    checkGrpc: (res) => {
      const i = res.outputs.findIndex((o) => o.name === 'OUTPUT0');
      if (i < 0 || !res.rawOutputContents[i]!.equals(raw(sum))) fail('OUTPUT0 is not the sum');
    },
  };
}

/** FP32 values with a float32-exact JSON form of typical length, as numpy's tolist() gives. */
function fp32Tensor(bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  let seed = 12345;
  for (let i = 0; i < bytes; i += 4) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    buf.writeFloatLE((seed / 2 ** 32) * 2 - 1, i);
  }
  return buf;
}

function identityRequest(tensor: Buffer): ModelInferRequest {
  return {
    modelName: 'identity_fp32',
    modelVersion: '',
    id: '',
    parameters: {},
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, tensor.length / 4], parameters: {} }],
    outputs: [],
    rawInputContents: [tensor],
  };
}

function checkIdentityGrpc(tensor: Buffer): (res: ModelInferResponse) => void {
  return (res) => {
    if (res.rawOutputContents.length !== 1 || !res.rawOutputContents[0]!.equals(tensor))
      fail('OUTPUT0 differs from INPUT0');
  };
}

function binaryIdentityCase(
  id: CaseId,
  bytes: number,
  concurrency: number,
  durationScale: number,
): BenchCase {
  const tensor = fp32Tensor(bytes);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'INPUT0',
          datatype: 'FP32',
          shape: [1, bytes / 4],
          parameters: { binary_data_size: bytes },
        },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    }),
  );
  return {
    id,
    description: `identity_fp32, ${label(bytes)} FP32, binary in and out`,
    concurrency,
    tensorBytesIn: bytes,
    tensorBytesOut: bytes,
    durationScale,
    restProxy: false,
    http: {
      path: '/v2/models/identity_fp32/infer',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
      body: Buffer.concat([header, tensor]),
    },
    grpc: identityRequest(tensor),
    checkHttp: (answer, headers) => {
      const headerLength = Number(headers['inference-header-content-length']);
      if (!Number.isInteger(headerLength))
        fail(
          `no Inference-Header-Content-Length in the answer: ${answer.toString().slice(0, 300)}`,
        );
      if (!answer.subarray(headerLength).equals(tensor)) fail('binary OUTPUT0 differs from INPUT0');
    },
    checkGrpc: checkIdentityGrpc(tensor),
  };
}

function jsonIdentityCase(
  id: CaseId,
  elements: number,
  concurrency: number,
  durationScale: number,
): BenchCase {
  const tensor = fp32Tensor(elements * 4);
  const values: number[] = [];
  for (let i = 0; i < elements; i++) values.push(tensor.readFloatLE(i * 4));
  const body = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, elements], data: values }],
    }),
  );
  return {
    id,
    description: `identity_fp32, ${elements / (1024 * 1024)}M FP32 elements, JSON in and out (${label(body.length)} body)`,
    concurrency,
    tensorBytesIn: elements * 4,
    tensorBytesOut: elements * 4,
    durationScale,
    restProxy: true,
    http: {
      path: '/v2/models/identity_fp32/infer',
      headers: { 'content-type': 'application/json' },
      body,
    },
    grpc: identityRequest(tensor),
    checkHttp: (answer) => {
      const json = JSON.parse(answer.toString('utf8')) as { outputs?: Array<{ data: number[] }> };
      const data =
        json.outputs?.[0]?.data ?? fail(`no outputs: ${answer.toString().slice(0, 300)}`);
      if (data.length !== elements)
        fail(`OUTPUT0 has ${data.length} elements, expected ${elements}`);
      for (let i = 0; i < elements; i += 997) {
        if (Math.fround(data[i]!) !== values[i])
          fail(`OUTPUT0[${i}] = ${data[i]}, expected ${values[i]}`);
      }
    },
    checkGrpc: checkIdentityGrpc(tensor),
  };
}

export function label(bytes: number): string {
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= KiB) return `${+(bytes / KiB).toFixed(1)} KiB`;
  return `${bytes} B`;
}
