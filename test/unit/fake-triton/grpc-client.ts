import * as grpc from '@grpc/grpc-js';
import { loadInferenceService } from '../../../src/fake-triton';
import type { WireInferRequest, WireInferResponse } from '../../../src/fake-triton';

export interface CallOptions {
  metadata?: Record<string, string>;
  deadlineMs?: number;
}

/** Responses as proto-loader decodes them: int64 fields arrive as strings. */
export interface DecodedInferResponse extends Omit<WireInferResponse, 'outputs'> {
  outputs: Array<{ name: string; datatype: string; shape: string[] }>;
}

/** A plain grpc-js client over the same proto-loader definition, for tests of the fake. */
export class TestClient {
  private readonly client: grpc.Client;
  private readonly service = loadInferenceService();

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  call<Res>(method: string, request: object, options: CallOptions = {}): Promise<Res> {
    const definition = this.service[method];
    if (definition === undefined) throw new Error(`no RPC ${method}`);
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        toMetadata(options.metadata),
        { deadline: Date.now() + (options.deadlineMs ?? 5000) },
        (error: grpc.ServiceError | null, response?: Res) => {
          if (error !== null) reject(error);
          else resolve(response!);
        },
      );
    });
  }

  infer(
    request: Partial<WireInferRequest>,
    options: CallOptions = {},
  ): Promise<DecodedInferResponse> {
    return this.call<DecodedInferResponse>('ModelInfer', request, options);
  }

  /** Sends every request on one ModelStreamInfer stream, half-closes, and collects what comes back. */
  stream(
    requests: Array<Partial<WireInferRequest>>,
    options: CallOptions = {},
  ): Promise<Array<{ error_message: string; infer_response: DecodedInferResponse | null }>> {
    const definition = this.service['ModelStreamInfer']!;
    const call = this.client.makeBidiStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      toMetadata(options.metadata),
      { deadline: Date.now() + (options.deadlineMs ?? 5000) },
    );
    const responses: Array<{ error_message: string; infer_response: DecodedInferResponse | null }> =
      [];
    return new Promise((resolve, reject) => {
      call.on('data', (message) => responses.push(message));
      call.on('error', reject);
      call.on('end', () => resolve(responses));
      for (const request of requests) call.write(request);
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}

function toMetadata(values: Record<string, string> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values ?? {})) metadata.set(key, value);
  return metadata;
}

/** Rejects unless `promise` fails with `code`; returns the error for more checks. */
export async function expectStatus(
  promise: Promise<unknown>,
  code: grpc.status,
): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    const serviceError = error as grpc.ServiceError;
    if (serviceError.code !== code) {
      throw new Error(
        `expected ${grpc.status[code]}, got ${grpc.status[serviceError.code]}: ${serviceError.details}`,
      );
    }
    return serviceError;
  }
  throw new Error(`expected ${grpc.status[code]}, but the call succeeded`);
}

export function int32Buffer(values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buffer.writeInt32LE(v, i * 4));
  return buffer;
}

export function readInt32s(buffer: Buffer): number[] {
  const values: number[] = [];
  for (let offset = 0; offset < buffer.length; offset += 4) values.push(buffer.readInt32LE(offset));
  return values;
}

/** A `simple` request with raw INT32 [1,16] inputs. */
export function simpleRequest(
  a: number[],
  b: number[],
  extra: Partial<WireInferRequest> = {},
): Partial<WireInferRequest> {
  return {
    model_name: 'simple',
    inputs: [
      { name: 'INPUT0', datatype: 'INT32', shape: ['1', '16'], parameters: {}, contents: null },
      { name: 'INPUT1', datatype: 'INT32', shape: ['1', '16'], parameters: {}, contents: null },
    ],
    raw_input_contents: [int32Buffer(a), int32Buffer(b)],
    ...extra,
  };
}
