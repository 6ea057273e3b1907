import { strict as assert } from 'node:assert';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  postJson,
  serversEnv,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import { startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import {
  FAST_STATE,
  infer,
  model,
  modelCalls,
  startFleet,
  startReplica,
  uniquePrefix,
} from './support';

// The same routing stories, once with the embedded in-memory state (no
// REDIS_URL) and once with the state shared through a real Redis.
for (const backend of ['memory', 'redis'] as const) {
  describe(`model-aware routing with ${backend} model state`, () => {
    let redis: RedisServerHandle | undefined;
    let fakes: FakeTriton[] = [];
    let replica: TestProxy;

    before(async () => {
      if (backend === 'redis') redis = await startRedisServer();
      // t0 has simple, cold and slow (an 800 ms load); t1 has simple, cold,
      // only2 and the unloaded lazy and lazy2. cold is loaded nowhere.
      fakes = await startFleet([
        () => [model('simple'), model('cold', false), model('slow', false, 800)],
        () => [
          model('simple'),
          model('cold', false),
          model('only2'),
          model('lazy', false),
          model('lazy2', false),
        ],
      ]);
      replica = await startReplica(fakes, {
        redisUrl: redis?.url,
        prefix: uniquePrefix(),
        replicaId: 'solo',
      });
      assert.equal(replica.proxy.state.health().backend, backend);
    });

    after(async () => {
      await replica?.close();
      await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
      await redis?.stop();
    });

    it('sends a model only to the server that has it loaded', async () => {
      for (let i = 0; i < 10; i++) {
        const answer = await infer(replica.url, 'only2');
        assert.equal(answer.status, 200, JSON.stringify(answer.json));
      }
      assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'only2'), [0, 10]);
    });

    it('answers 404 naming the model when no server knows it, without asking any server', async () => {
      const before = modelCalls(fakes, 'ModelInfer', 'nowhere');
      const answer = await infer(replica.url, 'nowhere');
      assert.equal(answer.status, 404);
      assert.match(String(answer.json.error), /'nowhere'/);
      assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'nowhere'), before);
    });

    it('answers 404 for a model known but loaded nowhere when load on demand is off, as Triton does', async () => {
      const answer = await infer(replica.url, 'cold');
      assert.equal(answer.status, 404);
      assert.match(String(answer.json.error), /'cold' has no available versions/);
      assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'cold'), [0, 0], 'no server was asked');
      assert.deepEqual(
        modelCalls(fakes, 'RepositoryModelLoad', 'cold'),
        [0, 0],
        'no load was attempted',
      );
    });

    it('answers 503 with Retry-After while a model is loading, and serves it once loaded', async () => {
      const load = postJson(`${replica.url}/v2/repository/models/slow/load?server=t0`, {});
      await waitFor(
        () => replica.proxy.state.snapshot().loadingServers('slow').length > 0,
        2000,
        'slow LOADING',
      );
      const during = await infer(replica.url, 'slow');
      assert.equal(during.status, 503, JSON.stringify(during.json));
      assert.match(String(during.json.error), /'slow' is loading/);
      assert.ok(
        Number(during.headers.get('retry-after')) >= 1,
        `Retry-After: ${during.headers.get('retry-after')}`,
      );
      assert.equal((await load).status, 200);
      assert.equal((await infer(replica.url, 'slow')).status, 200);
      assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'slow'), [1, 0]);
    });

    it('loads explicitly on the server named by ?server= or X-Triton-Server, and then routes there', async () => {
      const byQuery = await postJson(`${replica.url}/v2/repository/models/cold/load?server=t1`, {});
      assert.equal(byQuery.status, 200, JSON.stringify(byQuery.json));
      assert.equal(byQuery.headers.get('x-triton-server'), 't1');
      assert.deepEqual(modelCalls(fakes, 'RepositoryModelLoad', 'cold'), [0, 1]);
      assert.deepEqual(replica.proxy.state.snapshot().readyServers('cold'), ['t1']);
      for (let i = 0; i < 6; i++) assert.equal((await infer(replica.url, 'cold')).status, 200);
      assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'cold'), [0, 6]);

      const byHeader = await postJson(
        `${replica.url}/v2/repository/models/cold/load`,
        {},
        { 'x-triton-server': 't0' },
      );
      assert.equal(byHeader.status, 200, JSON.stringify(byHeader.json));
      assert.equal(byHeader.headers.get('x-triton-server'), 't0');
      assert.deepEqual(modelCalls(fakes, 'RepositoryModelLoad', 'cold'), [1, 1]);
      // Survives the reconciler's next reading of both repositories.
      await waitFor(
        () => replica.proxy.state.snapshot().readyServers('cold', '1').length === 2,
        3000,
        'cold READY (version 1) on both',
      );
      for (let i = 0; i < 20; i++) assert.equal((await infer(replica.url, 'cold')).status, 200);
      const [onT0, onT1] = modelCalls(fakes, 'ModelInfer', 'cold');
      assert.ok(onT0! > 0 && onT1! > 6, `both servers serve cold now: ${onT0}, ${onT1}`);
    });

    it('routes by model from the first request after start, long before the first reconcile interval ends', async () => {
      const fresh = await startTestProxy({
        ...FAST_STATE,
        TRITON_SERVERS: serversEnv(fakes),
        REPLICA_ID: 'fresh',
        RECONCILE_INTERVAL_MS: '60000',
        ...(redis === undefined ? {} : { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() }),
      });
      try {
        const before = modelCalls(fakes, 'ModelInfer', 'only2');
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => infer(fresh.url, 'only2')),
        );
        assert.deepEqual(
          answers.map((x) => x.status),
          new Array<number>(10).fill(200),
        );
        assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'only2'), [before[0], before[1]! + 10]);
        assert.equal((await infer(fresh.url, 'nowhere')).status, 404);
      } finally {
        await fresh.close();
      }
    });

    it('loads without a named server only where the repository has the model', async () => {
      const answer = await postJson(`${replica.url}/v2/repository/models/lazy2/load`, {});
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.equal(answer.headers.get('x-triton-server'), 't1');
      assert.deepEqual(modelCalls(fakes, 'RepositoryModelLoad', 'lazy2'), [0, 1]);
    });

    it('loads on demand on a server whose repository has the model, then serves the request', async () => {
      const onDemand = await startTestProxy({
        ...FAST_STATE,
        TRITON_SERVERS: serversEnv(fakes),
        REPLICA_ID: 'on-demand',
        LOAD_ON_DEMAND: 'true',
        ...(redis === undefined ? {} : { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() }),
      });
      try {
        const answer = await infer(onDemand.url, 'lazy');
        assert.equal(answer.status, 200, JSON.stringify(answer.json));
        assert.deepEqual(modelCalls(fakes, 'RepositoryModelLoad', 'lazy'), [0, 1]);
        assert.deepEqual(modelCalls(fakes, 'ModelInfer', 'lazy'), [0, 1]);
      } finally {
        await onDemand.close();
      }
    });

    it('refuses to load on a server that is not in the fleet', async () => {
      const answer = await postJson(`${replica.url}/v2/repository/models/cold/load?server=t9`, {});
      assert.equal(answer.status, 400);
      assert.match(String(answer.json.error), /t9/);
    });
  });
}
