import { invalidRequest, ProxyError } from '../errors';
import {
  elementBytes,
  isDatatype,
  type InferOutputTensor,
  type ModelInferResponse,
  type ParameterValue,
  type Parameters,
} from '../protocol';
import { JsonByteWriter } from './json-byte-writer';
import type { OutputPlan, PlannedOutput } from './output-plan';

/**
 * Triton's ModelInfer response to the HTTP body Triton's own HTTP frontend
 * would send (InferRequestClass::FinalizeResponse in src/http_server.cc):
 *
 *   {"id" (only when non-empty),"model_name","model_version",
 *    "parameters" (only when there are any),
 *    "outputs":[{"name","datatype","shape",
 *                "parameters":{"binary_data_size":N} | "data":[...]}]}
 *
 * followed by the binary outputs' bytes in output order. The body is
 * application/octet-stream with Inference-Header-Content-Length only when
 * some binary bytes follow (an all-empty binary output still gets
 * application/json, as in Triton).
 *
 * `data` is always a flat array, as Triton writes it. Number formats:
 * integers exactly (INT64/UINT64 beyond 2^53 as exact decimal digits, which
 * readers that parse into doubles will round); FP32 widened to double and
 * FP64 printed as Triton prints them (shortest round-trip form of the
 * double, integral values with ".0");
 * NaN, Infinity and -Infinity
 * as those bare tokens, as Triton's rapidjson writer does
 * (kWriteNanAndInfFlag) and tritonclient's rapidjson reader accepts; -0 as
 * -0.0. FP16/BF16 outputs requested as JSON are refused with 400, as Triton
 * does, though the conversion would be exact: a client asking Triton the
 * same question gets the same answer.
 */

export interface EncodedInferResponse {
  /** The JSON header chunks, then each binary output's bytes as received (no copy). */
  chunks: Buffer[];
  byteLength: number;
  /** Inference-Header-Content-Length to send; undefined when the body is JSON only. */
  headerLength: number | undefined;
  contentType: string;
}

const CHAR_COMMA = 44;
const EMPTY = Buffer.alloc(0);

/** Rough width of one element in JSON text, comma included; only sizes the first chunk. */
const JSON_ELEMENT_WIDTH: ReadonlyMap<string, number> = new Map([
  ['BOOL', 6],
  ['UINT8', 4],
  ['INT8', 5],
  ['UINT16', 6],
  ['INT16', 7],
  ['UINT32', 11],
  ['INT32', 12],
  ['UINT64', 21],
  ['INT64', 21],
  ['FP32', 12],
  ['FP64', 24],
]);

const enum Mode {
  Json,
  Binary,
  SharedMemory,
}

function plannedFor(plan: OutputPlan, name: string): PlannedOutput | undefined {
  const outputs = plan.outputs;
  for (let i = 0; i < outputs.length; i++) if (outputs[i].name === name) return outputs[i];
  return undefined;
}

function modeOf(plan: OutputPlan, planned: PlannedOutput | undefined): Mode {
  if (planned === undefined) return plan.binaryByDefault ? Mode.Binary : Mode.Json;
  if (planned.sharedMemory) return Mode.SharedMemory;
  return planned.binary ? Mode.Binary : Mode.Json;
}

function countOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Estimated bytes of one output's JSON `data` text (only sizes buffers and picks the worker path). */
function jsonDataEstimate(out: InferOutputTensor, raw: Buffer): number {
  const width = JSON_ELEMENT_WIDTH.get(out.datatype);
  return width === undefined
    ? raw.length * 1.2 + countOf(out.shape) * 3
    : countOf(out.shape) * width;
}

/**
 * Outputs to be written as JSON `data` whose text is estimated above
 * `thresholdBytes`: the ones worth encoding off the event loop (formatting
 * runs at roughly 40 ns per element, so 64 MiB of text holds the loop for
 * several hundred ms).
 */
export function largeJsonOutputs(
  response: ModelInferResponse,
  plan: OutputPlan,
  thresholdBytes: number,
): number[] {
  const large: number[] = [];
  const outputs = response.outputs;
  for (let i = 0; i < outputs.length; i++) {
    const out = outputs[i];
    if (modeOf(plan, plannedFor(plan, out.name)) !== Mode.Json) continue;
    if (jsonDataEstimate(out, response.rawOutputContents[i] ?? EMPTY) > thresholdBytes) {
      large.push(i);
    }
  }
  return large;
}

/** True when output `name` is written as a base64 string (BYTES with content_type base64). */
export function base64Output(plan: OutputPlan, out: InferOutputTensor): boolean {
  const planned = plannedFor(plan, out.name);
  return planned !== undefined && planned.base64 && out.datatype === 'BYTES';
}

/** The elements of one output as JSON text (without the brackets), as chunks; for a worker thread. */
export function encodeJsonData(out: InferOutputTensor, raw: Buffer, base64: boolean): Buffer[] {
  const w = new JsonByteWriter(jsonDataEstimate(out, raw));
  writeData(w, out, raw, base64);
  return w.finish();
}

/**
 * `encodedData` holds, by output index, the `data` text of outputs already
 * encoded elsewhere (encodeJsonData in a worker); their chunks are placed
 * into the body as they are.
 */
export function encodeInferResponse(
  response: ModelInferResponse,
  plan: OutputPlan,
  encodedData?: ReadonlyMap<number, readonly Buffer[]>,
): EncodedInferResponse {
  const outputs = response.outputs;
  let estimate = 160 + response.id.length + response.modelName.length;
  for (let i = 0; i < outputs.length; i++) {
    const out = outputs[i];
    estimate += 96 + out.name.length;
    if (modeOf(plan, plannedFor(plan, out.name)) !== Mode.Json || encodedData?.has(i) === true) {
      continue;
    }
    estimate += jsonDataEstimate(out, response.rawOutputContents[i] ?? EMPTY);
  }

  const w = new JsonByteWriter(estimate);
  w.byte(123); // {
  if (response.id !== '') {
    w.ascii('"id":');
    w.string(response.id);
    w.byte(CHAR_COMMA);
  }
  w.ascii('"model_name":');
  w.string(response.modelName);
  w.ascii(',"model_version":');
  w.string(response.modelVersion);
  writeParameters(w, response.parameters);
  w.ascii(',"outputs":[');

  const binaries: Buffer[] = [];
  let binaryBytes = 0;
  for (let i = 0; i < outputs.length; i++) {
    const out = outputs[i];
    const raw = response.rawOutputContents[i] ?? EMPTY;
    const planned = plannedFor(plan, out.name);
    const mode = modeOf(plan, planned);
    if (i > 0) w.byte(CHAR_COMMA);
    w.ascii('{"name":');
    w.string(out.name);
    w.ascii(',"datatype":');
    w.string(out.datatype);
    w.ascii(',"shape":[');
    for (let d = 0; d < out.shape.length; d++) {
      if (d > 0) w.byte(CHAR_COMMA);
      w.int(out.shape[d]);
    }
    w.byte(93); // ]
    if (mode === Mode.Binary) {
      w.ascii(',"parameters":{"binary_data_size":');
      w.int(raw.length);
      w.byte(125); // }
      if (raw.length > 0) {
        binaries.push(raw);
        binaryBytes += raw.length;
      }
    } else if (mode === Mode.Json) {
      const base64 = base64Output(plan, out);
      if (base64) w.ascii(',"parameters":{"content_type":"base64"}');
      w.ascii(',"data":[');
      const encoded = encodedData?.get(i);
      if (encoded === undefined) writeData(w, out, raw, base64);
      else w.append(encoded);
      w.byte(93); // ]
    }
    w.byte(125); // }
  }
  w.ascii(']}');

  const header = w.finish();
  const headerLength = w.byteLength;
  if (binaries.length === 0) {
    return {
      chunks: header,
      byteLength: headerLength,
      headerLength: undefined,
      contentType: 'application/json',
    };
  }
  for (const b of binaries) header.push(b);
  return {
    chunks: header,
    byteLength: headerLength + binaryBytes,
    headerLength,
    contentType: 'application/octet-stream',
  };
}

export function writeParameterValue(w: JsonByteWriter, value: ParameterValue): void {
  switch (typeof value) {
    case 'boolean':
      w.bool(value);
      break;
    case 'string':
      w.string(value);
      break;
    case 'bigint':
      w.bigint(value);
      break;
    default:
      w.float64(value);
  }
}

function writeParameters(w: JsonByteWriter, params: Parameters): void {
  let first = true;
  for (const key in params) {
    if (!Object.hasOwn(params, key)) continue;
    w.ascii(first ? ',"parameters":{' : ',');
    first = false;
    w.string(key);
    w.byte(58); // :
    writeParameterValue(w, params[key]);
  }
  if (!first) w.byte(125);
}

function sizeMismatch(name: string, expected: number, got: number): ProxyError {
  return new ProxyError(
    'INTERNAL',
    `Failed to write 'data' field: output tensor shape does not match size of output for '${name}' (expected ${expected} bytes, got ${got})`,
  );
}

/** The elements of one output as JSON values, read from raw bytes at any alignment. */
export function writeData(
  w: JsonByteWriter,
  out: InferOutputTensor,
  raw: Buffer,
  base64: boolean,
): void {
  const dt = out.datatype;
  if (!isDatatype(dt)) {
    throw new ProxyError('INTERNAL', `invalid datatype '${dt}' for output tensor '${out.name}'`);
  }
  if (dt === 'FP16' || dt === 'BF16') {
    throw invalidRequest(
      `sending ${dt} data via JSON is not supported. Please use the binary data format for output '${out.name}'`,
    );
  }
  const count = countOf(out.shape);
  if (dt === 'BYTES') {
    writeBytesElements(w, out.name, raw, count, base64);
    return;
  }
  const expected = count * elementBytes(dt);
  if (raw.length !== expected) throw sizeMismatch(out.name, expected, raw.length);
  w.elements(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), count, dt);
}

function writeBytesElements(
  w: JsonByteWriter,
  name: string,
  raw: Buffer,
  count: number,
  base64: boolean,
): void {
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > raw.length) {
      throw new ProxyError(
        'INTERNAL',
        `output tensor shape does not match size of output for '${name}'`,
      );
    }
    const length = raw.readUInt32LE(offset);
    const start = offset + 4;
    const end = start + length;
    if (end > raw.length) {
      throw new ProxyError(
        'INTERNAL',
        `output tensor shape does not match size of output for '${name}'`,
      );
    }
    if (i > 0) w.byte(CHAR_COMMA);
    if (base64) w.base64String(raw, start, end);
    else w.utf8String(raw, start, end);
    offset = end;
  }
}
