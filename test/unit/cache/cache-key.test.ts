import assert from 'node:assert/strict';
import { cacheKeyOf } from '../../../src/cache';
import { parseInferRequest } from '../../../src/codec';
import type { ModelInferRequest } from '../../../src/protocol';

function int32(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

function parse(header: Record<string, unknown>, tensors: Buffer[] = []): ModelInferRequest {
  const json = Buffer.from(JSON.stringify(header));
  return parseInferRequest({
    body: Buffer.concat([json, ...tensors]),
    headerLength: tensors.length > 0 ? json.length : undefined,
    modelName: 'm',
    modelVersion: '',
  }).request;
}

const scope = { version: '1', generation: 0 };
const jsonForm = {
  inputs: [
    { name: 'A', datatype: 'INT32', shape: [2], data: [1, 2] },
    { name: 'B', datatype: 'INT32', shape: [2], data: [3, 4] },
  ],
};

describe('cache key', () => {
  it('is the same for the JSON and the binary form, in any input order, whatever the id and scheduling hints', async () => {
    const json = await cacheKeyOf(parse(jsonForm), scope);
    const binary = await cacheKeyOf(
      parse(
        {
          id: 'other',
          parameters: { priority: 3, timeout: 1000, binary_data_output: true },
          inputs: [
            { name: 'B', datatype: 'INT32', shape: [2], parameters: { binary_data_size: 8 } },
            { name: 'A', datatype: 'INT32', shape: [2], parameters: { binary_data_size: 8 } },
          ],
        },
        [int32([3, 4]), int32([1, 2])],
      ),
      scope,
    );
    assert.equal(binary, json);
  });

  it('differs for anything that can change the answer', async () => {
    const base = await cacheKeyOf(parse(jsonForm), scope);
    const variants: Array<[string, ModelInferRequest, typeof scope]> = [
      ['version', parse(jsonForm), { version: '2', generation: 0 }],
      ['generation', parse(jsonForm), { version: '1', generation: 1 }],
      [
        'bytes',
        parse({ inputs: [jsonForm.inputs[0], { ...jsonForm.inputs[1], data: [3, 5] }] }),
        scope,
      ],
      [
        'shape',
        parse({
          inputs: [jsonForm.inputs[0], { ...jsonForm.inputs[1], shape: [1, 2] }],
        }),
        scope,
      ],
      ['outputs', parse({ ...jsonForm, outputs: [{ name: 'X' }] }), scope],
      [
        'classification',
        parse({ ...jsonForm, outputs: [{ name: 'X', parameters: { classification: 1 } }] }),
        scope,
      ],
      ['parameter', parse({ ...jsonForm, parameters: { temperature: 1 } }), scope],
    ];
    const keys = new Set([base]);
    for (const [what, request, s] of variants) {
      const key = await cacheKeyOf(request, s);
      assert.ok(!keys.has(key), `${what} changed nothing`);
      keys.add(key);
    }
    const renamed = { ...parse(jsonForm), modelName: 'n' };
    assert.notEqual(await cacheKeyOf(renamed, scope), base);
  });

  it('digests large inputs off the event loop to the same key every time', async () => {
    const big = Buffer.alloc(1 << 20, 7);
    const request = (b: Buffer): ModelInferRequest => ({
      modelName: 'm',
      modelVersion: '',
      id: '',
      parameters: {},
      inputs: [{ name: 'X', datatype: 'UINT8', shape: [b.length], parameters: {} }],
      outputs: [],
      rawInputContents: [b],
    });
    const k1 = await cacheKeyOf(request(big), scope);
    const k2 = await cacheKeyOf(request(Buffer.from(big)), scope);
    assert.equal(k1, k2);
    const changed = Buffer.from(big);
    changed[changed.length - 1] = 8;
    assert.notEqual(await cacheKeyOf(request(changed), scope), k1);
  });
});
