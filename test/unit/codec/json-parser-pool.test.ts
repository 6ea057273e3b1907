import assert from 'node:assert/strict';
import { InferRequestParser } from '../../../src/codec';

function inferBody(values: number): Buffer {
  const data = Array.from({ length: values }, (_, i) => i);
  return Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, values], data }],
    }),
  );
}

describe('JSON request parser pool', function () {
  // Starting a worker (a second V8 isolate) takes a while on a loaded 2-core box.
  this.timeout(20_000);

  let parser: InferRequestParser;
  afterEach(async () => {
    await parser.close();
  });

  it('runs no worker thread until a body above the threshold arrives, then parses it in one', async function () {
    parser = new InferRequestParser({ workerThresholdBytes: 1024 });
    const small = await parser.parse({ body: inferBody(4), modelName: 'm', modelVersion: '' });
    assert.equal(small.request.inputs[0]!.name, 'INPUT0');
    assert.equal(parser.workerThreads, 0, 'a small body is parsed inline, with no worker');

    const large = await parser.parse({ body: inferBody(2000), modelName: 'm', modelVersion: '' });
    assert.equal(large.request.inputs[0]!.name, 'INPUT0');
    assert.equal(parser.workerThreads, 1, 'the first large body started one worker');
  });
});
