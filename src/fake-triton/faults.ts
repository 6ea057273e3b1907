import { status, type Metadata } from '@grpc/grpc-js';
import type { RpcName } from './rpc-names';
import { TritonError } from './triton-error';

/** Fixed milliseconds, or per call from the RPC and the model it names ('' when none). */
export type Latency = number | ((rpc: RpcName, model: string) => number);

export interface FailureRule {
  /** gRPC status code to answer with (grpc.status). */
  code: status;
  details?: string;
  /** Only calls of this RPC; every RPC when absent. */
  rpc?: RpcName;
  /** Only calls naming this model; any call when absent. */
  model?: string;
}

export interface FailNextRule extends FailureRule {
  /** How many matching calls fail; default 1. */
  count?: number;
}

/** A stream request that fails after some of its responses were sent. */
export interface StreamFailureRule {
  /** Responses sent before the failure (0: before the first). */
  afterResponses: number;
  /** gRPC status; default INTERNAL. */
  code?: status;
  details?: string;
  /**
   * true: the failure is an in-stream `error_message` response (what Triton
   * sends for an error response of a decoupled model) and the stream stays
   * open; false (default): the whole stream ends with the status, as when
   * the server fails it.
   */
  inStream?: boolean;
  /** Only requests for this model; any when absent. */
  model?: string;
  /** How many stream requests fail this way; default 1. */
  count?: number;
}

/** The failure planned for one stream request. */
export interface StreamFailure {
  afterResponses: number;
  error: TritonError;
  inStream: boolean;
}

/** What to do with one call before it is served. */
export interface CallPlan {
  delayMs: number;
  failure: TritonError | null;
}

/** Request metadata that steers one call when the fake runs out of process. */
export const STEERING_HEADERS = {
  delayMs: 'x-fake-delay-ms',
  /** A gRPC status number or name (14 or UNAVAILABLE). */
  failCode: 'x-fake-fail-code',
  failDetails: 'x-fake-fail-details',
  /** With failCode on ModelStreamInfer: fail each request after this many responses instead of at once. */
  failAfterResponses: 'x-fake-fail-after-responses',
  /** With failAfterResponses: "true" sends the failure as an in-stream error_message. */
  failInStream: 'x-fake-fail-in-stream',
  /** Milliseconds between the responses of a decoupled model (overrides the model's own). */
  responseIntervalMs: 'x-fake-response-interval-ms',
} as const;

const NO_FAULT: CallPlan = Object.freeze({ delayMs: 0, failure: null });

/** Latency and failures injected by tests, decided when a call arrives. */
export class Faults {
  private latency: Latency;
  private readonly next: Array<FailNextRule & { remaining: number }> = [];
  private readonly always: FailureRule[] = [];
  private readonly streamRules: Array<StreamFailureRule & { remaining: number }> = [];

  constructor(latency: Latency = 0) {
    this.latency = latency;
  }

  setLatency(latency: Latency): void {
    this.latency = latency;
  }

  failNext(rule: FailNextRule): void {
    this.next.push({ ...rule, remaining: rule.count ?? 1 });
  }

  failAlways(rule: FailureRule): void {
    this.always.push(rule);
  }

  failStreamAfter(rule: StreamFailureRule): void {
    this.streamRules.push({ ...rule, remaining: rule.count ?? 1 });
  }

  clearFailures(): void {
    this.next.length = 0;
    this.always.length = 0;
    this.streamRules.length = 0;
  }

  /** Whether the steering metadata asks for a mid-stream failure (the stream itself then opens). */
  static failsMidStream(metadata: Metadata): boolean {
    return metadata.get(STEERING_HEADERS.failAfterResponses)[0] !== undefined;
  }

  /** The mid-stream failure planned for one stream request, decided on arrival. */
  streamFailureFor(model: string, metadata: Metadata): StreamFailure | null {
    const after = metadata.get(STEERING_HEADERS.failAfterResponses)[0];
    if (after !== undefined) {
      const code = metadata.get(STEERING_HEADERS.failCode)[0];
      const details = metadata.get(STEERING_HEADERS.failDetails)[0];
      return {
        afterResponses: Math.max(0, Number(after) || 0),
        error: injected(
          code === undefined ? status.INTERNAL : parseCode(String(code)),
          details === undefined ? undefined : String(details),
        ),
        inStream: String(metadata.get(STEERING_HEADERS.failInStream)[0] ?? '') === 'true',
      };
    }
    const index = this.streamRules.findIndex((r) => r.model === undefined || r.model === model);
    if (index === -1) return null;
    const rule = this.streamRules[index]!;
    if (--rule.remaining <= 0) this.streamRules.splice(index, 1);
    return {
      afterResponses: rule.afterResponses,
      error: injected(rule.code ?? status.INTERNAL, rule.details),
      inStream: rule.inStream === true,
    };
  }

  /** The steered interval between a decoupled model's responses, if any. */
  static responseIntervalFor(metadata: Metadata): number | undefined {
    const steered = metadata.get(STEERING_HEADERS.responseIntervalMs)[0];
    return steered === undefined ? undefined : Math.max(0, Number(steered) || 0);
  }

  /** Latency and failure for a call; decided on arrival so `failNext` counts are exact. */
  plan(rpc: RpcName, model: string, metadata: Metadata): CallPlan {
    const delayMs = this.delayFor(rpc, model, metadata);
    const failure = this.failureFor(rpc, model, metadata);
    return delayMs === 0 && failure === null ? NO_FAULT : { delayMs, failure };
  }

  delayFor(rpc: RpcName, model: string, metadata: Metadata): number {
    const latency = typeof this.latency === 'number' ? this.latency : this.latency(rpc, model);
    const steered = metadata.get(STEERING_HEADERS.delayMs)[0];
    const extra = steered === undefined ? 0 : Number(steered) || 0;
    return Math.max(0, latency) + Math.max(0, extra);
  }

  failureFor(rpc: RpcName, model: string, metadata: Metadata): TritonError | null {
    const steered = metadata.get(STEERING_HEADERS.failCode)[0];
    if (steered !== undefined) {
      const details = metadata.get(STEERING_HEADERS.failDetails)[0];
      return injected(
        parseCode(String(steered)),
        details === undefined ? undefined : String(details),
      );
    }
    if (this.next.length === 0 && this.always.length === 0) return null;
    return this.takeFailure(rpc, model);
  }

  private takeFailure(rpc: RpcName, model: string): TritonError | null {
    const matches = (rule: FailureRule) =>
      (rule.rpc === undefined || rule.rpc === rpc) &&
      (rule.model === undefined || rule.model === model);
    const index = this.next.findIndex(matches);
    if (index !== -1) {
      const rule = this.next[index]!;
      if (--rule.remaining <= 0) this.next.splice(index, 1);
      return injected(rule.code, rule.details);
    }
    const rule = this.always.find(matches);
    return rule === undefined ? null : injected(rule.code, rule.details);
  }
}

function injected(code: status, details: string | undefined): TritonError {
  return new TritonError(code, details ?? `fake Triton injected ${status[code] ?? code}`);
}

function parseCode(value: string): status {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const named = status[trimmed.toUpperCase() as keyof typeof status];
  return named === undefined ? status.UNKNOWN : named;
}
