import assert from 'node:assert/strict';
import { postBinary } from '../../helpers/proxy-harness';
import { inferUrl, metricValue, startCached } from './support';

describe('in-process cache byte bound', function () {
  it('stays within CACHE_MAX_BYTES under a flood of distinct large answers, evicting the oldest', async () => {
    const maxBytes = 200_000;
    const s = await startCached({
      CACHE_MODELS: 'identity:10m',
      CACHE_MAX_BYTES: String(maxBytes),
      CACHE_MAX_ENTRY_BYTES: '65536',
    });
    try {
      const elements = 8192; // 32 KiB answers: about six fit
      const send = (seed: number, count = elements) => {
        const tensor = Buffer.alloc(count * 4);
        for (let i = 0; i < count; i++) tensor.writeFloatLE(seed + i, i * 4);
        return postBinary(
          inferUrl(s.url, 'identity'),
          {
            inputs: [
              {
                name: 'INPUT0',
                datatype: 'FP32',
                shape: [1, count],
                parameters: { binary_data_size: tensor.length },
              },
            ],
            outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
          },
          [tensor],
        );
      };
      let largest = 0;
      for (let seed = 0; seed < 40; seed++) {
        const answer = await send(seed * 100_000);
        assert.equal(answer.status, 200, answer.text);
        const bytes = await metricValue(s.url, 'triton_proxy_cache_bytes{tier="memory"}');
        assert.ok(bytes <= maxBytes, `cache holds ${bytes} bytes, bound ${maxBytes}`);
        largest = Math.max(largest, bytes);
      }
      assert.ok(largest > maxBytes / 2, `the cache was used (${largest} bytes at most)`);
      assert.ok((await metricValue(s.url, 'triton_proxy_cache_evictions_total')) >= 30);
      // The newest answer is still there, the oldest went first.
      assert.equal((await send(39 * 100_000)).headers.get('x-cache'), 'HIT');
      assert.equal((await send(0)).headers.get('x-cache'), 'MISS');
      // An answer over CACHE_MAX_ENTRY_BYTES is served but never kept.
      for (let i = 0; i < 2; i++) {
        const big = await send(7, 32768);
        assert.equal(big.status, 200);
        assert.equal(big.headers.get('x-cache'), 'MISS');
      }
    } finally {
      await s.close();
    }
  });
});
