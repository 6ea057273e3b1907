/**
 * Micro-benchmark of the ModelInfer wire codec against protobufjs, both as
 * @grpc/proto-loader drives it (fromObject/encode, decode/toObject) and used
 * directly (encode of a prepared message, bare decode).
 *
 *   npx tsx test/unit/wire/wire-bench.ts [--seconds 2]
 *
 * Not a test: numbers depend on the machine. Reports CPU µs per operation
 * and message MB/s (message bytes per CPU second).
 */
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import type { ModelInferRequest, ModelInferResponse } from '../../../src/protocol';
import {
  decodeModelInferResponse,
  encodeModelInferRequest,
  encodeModelInferResponse,
} from '../../../src/triton/wire';

const PROTO_FILE = path.join(__dirname, '../../../protos/grpc_service.proto');
const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 2;
const ROUNDS = 5;

interface Case {
  name: string;
  request: ModelInferRequest;
  response: ModelInferResponse;
}

function tensorCase(name: string, elements: number, count: number): Case {
  const inputs = Array.from({ length: count }, (_, i) => ({
    name: `INPUT${i}`,
    datatype: 'FP32',
    shape: [1, elements],
    parameters: {},
  }));
  const outputs = inputs.map((t, i) => ({ ...t, name: `OUTPUT${i}` }));
  const bytes = () => Array.from({ length: count }, (_, i) => Buffer.alloc(elements * 4, i + 1));
  return {
    name,
    request: {
      modelName: name === 'add_sub' ? 'add_sub' : 'big_model',
      modelVersion: '1',
      id: 'bench-request-0001',
      parameters: {},
      inputs,
      outputs: outputs.map((o) => ({ name: o.name, parameters: { binary_data: true } })),
      rawInputContents: bytes(),
    },
    response: {
      modelName: name === 'add_sub' ? 'add_sub' : 'big_model',
      modelVersion: '1',
      id: 'bench-request-0001',
      parameters: {},
      outputs,
      rawOutputContents: bytes(),
    },
  };
}

/** The request as proto-loader callers write it (keepCase, longs as strings). */
function loaderRequest(r: ModelInferRequest): Record<string, unknown> {
  return {
    model_name: r.modelName,
    model_version: r.modelVersion,
    id: r.id,
    inputs: r.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: r.outputs.map((o) => ({
      name: o.name,
      parameters: { binary_data: { bool_param: true } },
    })),
    raw_input_contents: r.rawInputContents,
  };
}

interface Contender {
  label: string;
  bytes: number;
  op: () => unknown;
  cpuUsPerOp: number[];
}

/**
 * Runs `op` for about `seconds` and returns CPU µs per operation. CPU time
 * (user + system) rather than wall time, so other processes sharing the
 * machine inflate the numbers less.
 */
function cpuPerOp(op: () => unknown, seconds: number): number {
  let iterations = 0;
  let sink: unknown;
  const cpuStart = process.cpuUsage();
  const deadline = performance.now() + seconds * 1000;
  do {
    for (let i = 0; i < 16; i++) sink = op();
    iterations += 16;
  } while (performance.now() < deadline);
  const cpu = process.cpuUsage(cpuStart);
  if (sink === undefined) throw new Error('benchmark op returned nothing');
  return (cpu.user + cpu.system) / iterations;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Interleaves the contenders over several rounds so load changes hit all of them alike. */
function compare(contenders: Contender[]): void {
  for (const c of contenders) cpuPerOp(c.op, 0.2);
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of contenders) c.cpuUsPerOp.push(cpuPerOp(c.op, SECONDS / ROUNDS));
  }
  for (const c of contenders) {
    const us = median(c.cpuUsPerOp);
    const mbPerSec = c.bytes / us;
    console.log(
      `${c.label.padEnd(50)} ${us.toFixed(2).padStart(10)} µs/op ${mbPerSec.toFixed(0).padStart(10)} MB/s`,
    );
  }
}

const contender = (label: string, bytes: number, op: () => unknown): Contender => ({
  label,
  bytes,
  op,
  cpuUsPerOp: [],
});

function main(): void {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const method = (definition['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition)
    .ModelInfer;
  const root = new protobuf.Root().loadSync(PROTO_FILE, { keepCase: true });
  const requestType = root.lookupType('inference.ModelInferRequest');
  const responseType = root.lookupType('inference.ModelInferResponse');

  console.log(
    `node ${process.version}; CPU µs per op, median of ${ROUNDS} interleaved rounds, ${SECONDS}s per contender`,
  );
  for (const c of [tensorCase('add_sub', 16, 2), tensorCase('4 MiB tensor', 1 << 20, 1)]) {
    const plain = loaderRequest(c.request);
    const requestBytes = encodeModelInferRequest(c.request);
    const responseBytes = encodeModelInferResponse(c.response);
    const prepared = requestType.fromObject(plain);
    console.log(
      `\n${c.name}: request ${requestBytes.length} B, response ${responseBytes.length} B`,
    );
    compare([
      contender('encode request   ours', requestBytes.length, () =>
        encodeModelInferRequest(c.request),
      ),
      contender('encode request   proto-loader (fromObject+encode)', requestBytes.length, () =>
        method.requestSerialize(plain),
      ),
      contender('encode request   protobufjs (encode only)', requestBytes.length, () =>
        requestType.encode(prepared).finish(),
      ),
    ]);
    compare([
      contender('decode response  ours', responseBytes.length, () =>
        decodeModelInferResponse(responseBytes),
      ),
      contender('decode response  proto-loader (decode+toObject)', responseBytes.length, () =>
        method.responseDeserialize(responseBytes),
      ),
      contender('decode response  protobufjs (decode only)', responseBytes.length, () =>
        responseType.decode(responseBytes),
      ),
    ]);
  }
}

main();
