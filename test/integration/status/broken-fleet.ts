import { strict as assert } from 'node:assert';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { FakeTriton } from '../../../src/fake-triton';
import type { StatusSnapshot } from '../../../src/status';
import {
  httpRequest,
  postJson,
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';

const A = Array.from({ length: 16 }, (_, i) => i);
export const INFER_BODY = simpleRequest(A, A);

export async function statusJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<StatusSnapshot> {
  const answer = await httpRequest(`${url}/status.json`, { headers });
  assert.equal(answer.status, 200, answer.text);
  return answer.json as unknown as StatusSnapshot;
}

/**
 * Three fake Tritons over real gRPC behind the real proxy, driven into the
 * states an on-call engineer must see: t1 stopped (broken: not ready, its
 * repository unreadable), t2 answering every inference with INTERNAL until
 * its breaker opened, and t0, the only one left, so slow that the requests
 * for `simple` queue behind its one allowed in-flight call.
 */
export class BrokenFleet {
  fakes: FakeTriton[] = [];
  proxy: TestProxy | undefined;
  private queued: Array<Promise<unknown>> = [];

  get url(): string {
    return this.proxy!.url;
  }

  async start(env: Record<string, string> = {}): Promise<void> {
    this.fakes = await startFakes(3);
    this.proxy = await startTestProxy({
      TRITON_SERVERS: serversEnv(this.fakes),
      TRITON_HEALTH_INTERVAL_MS: '200',
      RECONCILE_INTERVAL_MS: '300',
      BREAKER_VOLUME_THRESHOLD: '2',
      BREAKER_ERROR_THRESHOLD_PERCENT: '50',
      // Stays open for the whole test once it opened.
      BREAKER_RESET_TIMEOUT_MS: '600000',
      RETRY_MAX_ATTEMPTS: '1',
      MODEL_MAX_INFLIGHT: '1',
      MODEL_MAX_QUEUE: '50',
      QUEUE_TIMEOUT_MS: '60000',
      ...env,
    });
    const p = this.proxy.proxy;
    await waitFor(() => p.fleet.readyCount() === 3, 10_000, 'three ready servers');
    await waitFor(
      () => p.state.snapshot().readyServers('simple').length === 3,
      10_000,
      "'simple' ready on all three",
    );
  }

  /** t1 goes away: health checks fail and its repository index becomes unreadable (stale). */
  async breakServer(headers: Record<string, string> = {}): Promise<void> {
    await this.fakes[1]!.stop({ graceMs: 100 });
    await waitFor(
      async () => {
        const s = await statusJson(this.url, headers);
        const t1 = s.servers.find((x) => x.name === 't1');
        return t1?.health === 'not ready' && t1.stale;
      },
      10_000,
      't1 not ready and stale',
    );
  }

  /** t2 fails every inference (a server fault) until its breaker opens. */
  async openBreaker(headers: Record<string, string> = {}): Promise<void> {
    this.fakes[2]!.failAlways({
      code: GrpcStatus.INTERNAL,
      rpc: 'ModelInfer',
      details: 'CUDA error: an illegal memory access was encountered',
    });
    // Picks are random between t0 and t2: bounded, it opens within a few requests.
    for (let i = 0; i < 100; i++) {
      if (this.proxy!.proxy.fleet.get('t2')!.breaker.state === 'open') break;
      await postJson(`${this.url}/v2/models/simple/infer`, INFER_BODY, headers);
    }
    const s = await statusJson(this.url, headers);
    assert.equal(s.servers.find((x) => x.name === 't2')?.breaker, 'open');
  }

  /** t0 answers after `ms`; `count` more requests for `simple` are sent and left waiting. */
  sendSlow(count: number, ms: number, headers: Record<string, string> = {}): void {
    this.fakes[0]!.setLatency((rpc) => (rpc === 'ModelInfer' ? ms : 0));
    for (let i = 0; i < count; i++)
      this.queued.push(postJson(`${this.url}/v2/models/simple/infer`, INFER_BODY, headers));
  }

  async waitQueued(depth: number, headers: Record<string, string> = {}): Promise<StatusSnapshot> {
    let last: StatusSnapshot | undefined;
    await waitFor(
      async () => {
        last = await statusJson(this.url, headers);
        return last.admission.queued >= depth;
      },
      10_000,
      `${depth} queued`,
    );
    return last!;
  }

  async close(): Promise<void> {
    // The waiting requests are cut, not waited for: they only had to be there.
    await this.proxy?.close();
    this.proxy = undefined;
    await Promise.all(this.fakes.map((f) => f.stop({ graceMs: 100 })));
    this.fakes = [];
    await Promise.allSettled(this.queued);
    this.queued = [];
  }
}
