import type { FakeTriton, FakeTritonOptions } from '../../../src/fake-triton';
import type { Datatype } from '../../../src/protocol';
import {
  bytesTensor,
  serversEnv,
  startFakes,
  startTestProxy,
  type TestProxy,
} from '../../helpers/proxy-harness';

export interface CoreSetup {
  fake: FakeTriton;
  proxy: TestProxy;
  url: string;
  close(): Promise<void>;
}

/**
 * One fake Triton and the real proxy in front of it. Retries are off and the
 * breaker needs far more calls than a suite makes, so each request reaches
 * the fake exactly once and an injected failure is seen as it is.
 */
export async function startCore(
  env: Record<string, string> = {},
  fakeOptions: FakeTritonOptions = {},
): Promise<CoreSetup> {
  const [fake] = await startFakes(1, fakeOptions);
  const proxy = await startTestProxy({
    TRITON_SERVERS: serversEnv([fake!]),
    RETRY_MAX_ATTEMPTS: '1',
    BREAKER_VOLUME_THRESHOLD: '100000',
    // These suites drive Triton's repository API as Triton serves it: open.
    ALLOW_UNAUTHENTICATED_ADMIN: 'true',
    ...env,
  });
  return {
    fake: fake!,
    proxy,
    url: proxy.url,
    close: async () => {
      await proxy.close();
      await fake!.stop({ graceMs: 200 });
    },
  };
}

export function inferUrl(url: string, model: string, version?: string): string {
  return version === undefined
    ? `${url}/v2/models/${model}/infer`
    : `${url}/v2/models/${model}/versions/${version}/infer`;
}

/** One tensor of an identity model, as JSON data (when JSON can carry it) and as raw bytes. */
export interface Sample {
  datatype: Datatype;
  shape: number[];
  /** Flat JSON data; BigInt marks a 64-bit integer that must stay exact. Undefined: JSON refuses the type. */
  json: Array<number | bigint | boolean | string> | undefined;
  raw: Buffer;
}

function raw(
  bytesPerElement: number,
  values: readonly (number | bigint)[],
  write: (b: Buffer, v: never, offset: number) => void,
): Buffer {
  const b = Buffer.alloc(values.length * bytesPerElement);
  values.forEach((v, i) => write(b, v as never, i * bytesPerElement));
  return b;
}

const U16 = (b: Buffer, v: number, o: number) => b.writeUInt16LE(v, o);

/** Values at the edges of each datatype's range, shape [2, 2]. */
export const SAMPLES: Sample[] = [
  {
    datatype: 'BOOL',
    shape: [2, 2],
    json: [true, false, false, true],
    raw: Buffer.from([1, 0, 0, 1]),
  },
  { datatype: 'UINT8', shape: [2, 2], json: [0, 1, 254, 255], raw: Buffer.from([0, 1, 254, 255]) },
  {
    datatype: 'UINT16',
    shape: [2, 2],
    json: [0, 1, 65534, 65535],
    raw: raw(2, [0, 1, 65534, 65535], (b, v: number, o) => b.writeUInt16LE(v, o)),
  },
  {
    datatype: 'UINT32',
    shape: [2, 2],
    json: [0, 1, 4294967294, 4294967295],
    raw: raw(4, [0, 1, 4294967294, 4294967295], (b, v: number, o) => b.writeUInt32LE(v, o)),
  },
  {
    datatype: 'UINT64',
    shape: [2, 2],
    json: [0, 42, 9007199254740993n, 18446744073709551615n],
    raw: raw(8, [0n, 42n, 9007199254740993n, 18446744073709551615n], (b, v: bigint, o) =>
      b.writeBigUInt64LE(v, o),
    ),
  },
  {
    datatype: 'INT8',
    shape: [2, 2],
    json: [-128, -1, 0, 127],
    raw: raw(1, [-128, -1, 0, 127], (b, v: number, o) => b.writeInt8(v, o)),
  },
  {
    datatype: 'INT16',
    shape: [2, 2],
    json: [-32768, -1, 0, 32767],
    raw: raw(2, [-32768, -1, 0, 32767], (b, v: number, o) => b.writeInt16LE(v, o)),
  },
  {
    datatype: 'INT32',
    shape: [2, 2],
    json: [-2147483648, -1, 0, 2147483647],
    raw: raw(4, [-2147483648, -1, 0, 2147483647], (b, v: number, o) => b.writeInt32LE(v, o)),
  },
  {
    datatype: 'INT64',
    shape: [2, 2],
    json: [-9223372036854775808n, -1, 9007199254740993n, 9223372036854775807n],
    raw: raw(
      8,
      [-9223372036854775808n, -1n, 9007199254740993n, 9223372036854775807n],
      (b, v: bigint, o) => b.writeBigInt64LE(v, o),
    ),
  },
  // 1.0, -2.0, 65504 (largest half), smallest subnormal.
  {
    datatype: 'FP16',
    shape: [2, 2],
    json: undefined,
    raw: raw(2, [0x3c00, 0xc000, 0x7bff, 0x0001], U16),
  },
  {
    datatype: 'FP32',
    shape: [2, 2],
    json: [0.1, -2.5, 1e-45, 3.4028235e38],
    raw: raw(4, [0.1, -2.5, 1e-45, 3.4028235e38], (b, v: number, o) => b.writeFloatLE(v, o)),
  },
  {
    datatype: 'FP64',
    shape: [2, 2],
    json: [0.1, -1e308, 5e-324, 123.456],
    raw: raw(8, [0.1, -1e308, 5e-324, 123.456], (b, v: number, o) => b.writeDoubleLE(v, o)),
  },
  // 1.0, -2.0, 3.3895e38 (largest bfloat16), 2^-133 (smallest subnormal).
  {
    datatype: 'BF16',
    shape: [2, 2],
    json: undefined,
    raw: raw(2, [0x3f80, 0xc000, 0x7f7f, 0x0001], U16),
  },
  {
    datatype: 'BYTES',
    shape: [2, 2],
    json: ['hello', 'wörld ✓', '', '{"not":"json"}'],
    raw: bytesTensor(['hello', 'wörld ✓', '', '{"not":"json"}']),
  },
];

/** The identity model the fake serves for a datatype. */
export function identityModelFor(datatype: Datatype): string {
  return `identity_${datatype.toLowerCase()}`;
}

/** A gRPC status text as grpc-js formats it ("14 UNAVAILABLE: ..."), which must never reach a client. */
export const RAW_GRPC_TEXT = /\b\d{1,2} [A-Z_]{5,}:/;
