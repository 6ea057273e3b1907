import type { Metadata } from '@grpc/grpc-js';
import type { Faults } from './faults';
import type { RpcName } from './rpc-names';
import type { TritonError } from './triton-error';

interface HeldCall {
  release: () => void;
  abandon: (error: TritonError) => void;
}

/**
 * Where every call waits before it is served: injected latency, injected
 * failures, and hanging (calls are accepted and held unanswered). Owns the
 * timers and held calls so that stopping or killing the server can settle them.
 */
export class CallGate {
  private hanging = false;
  private held: HeldCall[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly faults: Faults) {}

  /** Serves the call, or fails it, after whatever the faults and hanging impose. */
  admit(
    rpc: RpcName,
    model: string,
    metadata: Metadata,
    serve: () => void,
    reject: (error: TritonError) => void,
  ): void {
    const plan = this.faults.plan(rpc, model, metadata);
    if (plan.failure === null && plan.delayMs === 0 && !this.hanging) {
      serve();
      return;
    }
    const failure = plan.failure;
    this.schedule(plan.delayMs, failure === null ? serve : () => reject(failure), reject);
  }

  /** Runs `run` after `delayMs`, or holds it while hanging. */
  schedule(delayMs: number, run: () => void, abandon: (error: TritonError) => void): void {
    const start = delayMs > 0 ? () => this.after(delayMs, run) : run;
    if (this.hanging) this.held.push({ release: start, abandon });
    else start();
  }

  /** Whether calls are being held. */
  get isHanging(): boolean {
    return this.hanging;
  }

  setHanging(on: boolean): void {
    this.hanging = on;
    if (!on) {
      const held = this.held;
      this.held = [];
      for (const call of held) call.release();
    }
  }

  /** Answers every held call with `error` (a graceful stop must not wait for them forever). */
  abandonHeld(error: TritonError): void {
    const held = this.held;
    this.held = [];
    for (const call of held) call.abandon(error);
  }

  /** Forgets held calls and pending delays (the connections they belong to are gone). */
  dropAll(): void {
    this.held = [];
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private after(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    this.timers.add(timer);
  }
}
