import assert from 'node:assert/strict';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ModelInferRequest, ModelInferResponse } from '../../../src/protocol';
import {
  MODEL_INFER_PATH,
  createModelInferMethodDefinition,
  decodeModelInferResponse,
  encodeModelInferRequest,
} from '../../../src/triton/wire';

const PROTO_FILE = path.join(__dirname, '../../../protos/grpc_service.proto');

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

function call(client: grpc.Client, request: ModelInferRequest): Promise<ModelInferResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      MODEL_INFER_PATH,
      encodeModelInferRequest,
      decodeModelInferResponse,
      request,
      (err, value) => (err || value === undefined ? reject(err) : resolve(value)),
    ),
  );
}

const REQUEST: ModelInferRequest = {
  modelName: 'add_sub',
  modelVersion: '1',
  id: 'req-1',
  parameters: { sequence_id: 2n ** 63n + 5n, priority: 3 },
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 262144], parameters: {} }],
  outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
  rawInputContents: [Buffer.alloc(1 << 20, 0xab)],
};

interface LoaderRequest {
  model_name: string;
  parameters: Record<string, { uint64_param?: string }>;
  inputs: { name: string; shape: string[] }[];
  raw_input_contents: Buffer[];
}
type LoaderCallback = (err: grpc.ServiceError | null, value?: object) => void;

describe('ModelInfer over grpc-js with the wire codec', () => {
  const servers: grpc.Server[] = [];
  const clients: grpc.Client[] = [];

  after(() => {
    for (const c of clients) c.close();
    for (const s of servers) s.forceShutdown();
  });

  async function serve(service: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) {
    const server = new grpc.Server();
    server.addService(service, impl);
    servers.push(server);
    const port = await bind(server);
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.push(client);
    return { port, client };
  }

  it('carries a request and a MiB tensor to a server using the same codec and back', async () => {
    const { client } = await serve(
      { modelInfer: createModelInferMethodDefinition() },
      {
        modelInfer: (
          c: grpc.ServerUnaryCall<ModelInferRequest, ModelInferResponse>,
          done: grpc.sendUnaryData<ModelInferResponse>,
        ) =>
          done(null, {
            modelName: c.request.modelName,
            modelVersion: c.request.modelVersion,
            id: c.request.id,
            parameters: c.request.parameters,
            outputs: c.request.inputs.map((t) => ({ ...t, name: 'OUTPUT0' })),
            rawOutputContents: c.request.rawInputContents,
          }),
      },
    );
    const reply = await call(client, REQUEST);
    assert.equal(reply.id, 'req-1');
    assert.deepEqual(reply.parameters, REQUEST.parameters);
    assert.deepEqual(reply.outputs[0].shape, [1, 262144]);
    assert.ok(reply.rawOutputContents[0].equals(REQUEST.rawInputContents[0]));
  });

  it('interoperates with a proto-loader server that answers with typed contents', async () => {
    const definition = protoLoader.loadSync(PROTO_FILE, { keepCase: true, longs: String });
    const service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject)
      .GRPCInferenceService as grpc.ServiceClientConstructor;
    const { client } = await serve(service.service, {
      ModelInfer: (call: { request: LoaderRequest }, done: LoaderCallback) =>
        done(null, {
          model_name: call.request.model_name,
          parameters: { echoed: call.request.parameters.sequence_id },
          outputs: [
            {
              name: 'OUTPUT0',
              datatype: 'FP32',
              shape: call.request.inputs[0].shape,
              contents: { fp32_contents: [call.request.raw_input_contents[0].length, -0.5] },
            },
          ],
        }),
    });
    const reply = await call(client, REQUEST);
    const expected = Buffer.alloc(8);
    expected.writeFloatLE(1 << 20, 0);
    expected.writeFloatLE(-0.5, 4);
    assert.equal(reply.modelName, 'add_sub');
    assert.deepEqual(reply.parameters, { echoed: 2n ** 63n + 5n });
    assert.deepEqual(reply.rawOutputContents, [expected]);
  });

  it('reports an undecodable reply to the caller as INTERNAL naming the defect', async () => {
    const definition = createModelInferMethodDefinition();
    const { client } = await serve(
      { modelInfer: { ...definition, responseSerialize: () => Buffer.from([0x0f]) } },
      {
        modelInfer: (_c: unknown, done: grpc.sendUnaryData<ModelInferResponse>) =>
          done(null, decodeModelInferResponse(Buffer.alloc(0))),
      },
    );
    await assert.rejects(call(client, REQUEST), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INTERNAL);
      assert.match(err.details, /invalid wire type 7/);
      return true;
    });
  });
});
