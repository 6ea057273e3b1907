import { RPC_NAMES, type RpcName } from './rpc-names';

/** A snapshot of what a fake has received. */
export interface CallCounts {
  /** Calls per RPC (a stream counts once), whatever their outcome. */
  byRpc: Record<RpcName, number>;
  /** Per RPC, requests per model name (each message of a stream counts). */
  byModel: Partial<Record<RpcName, Record<string, number>>>;
}

export class CallCounter {
  private readonly rpcCounts = new Map<RpcName, number>();
  private readonly modelCounts = new Map<RpcName, Map<string, number>>();
  private readonly cancelCounts = new Map<RpcName, number>();

  /** The client cancelled a call before it was answered (what Triton sees as a cancellation). */
  recordCancelled(rpc: RpcName): void {
    this.cancelCounts.set(rpc, (this.cancelCounts.get(rpc) ?? 0) + 1);
  }

  cancelled(rpc: RpcName): number {
    return this.cancelCounts.get(rpc) ?? 0;
  }

  recordCall(rpc: RpcName): void {
    this.rpcCounts.set(rpc, (this.rpcCounts.get(rpc) ?? 0) + 1);
  }

  recordModel(rpc: RpcName, model: string): void {
    let perModel = this.modelCounts.get(rpc);
    if (perModel === undefined) {
      perModel = new Map();
      this.modelCounts.set(rpc, perModel);
    }
    perModel.set(model, (perModel.get(model) ?? 0) + 1);
  }

  count(rpc: RpcName, model?: string): number {
    if (model === undefined) return this.rpcCounts.get(rpc) ?? 0;
    return this.modelCounts.get(rpc)?.get(model) ?? 0;
  }

  snapshot(): CallCounts {
    const byRpc = Object.fromEntries(RPC_NAMES.map((rpc) => [rpc, this.count(rpc)])) as Record<
      RpcName,
      number
    >;
    const byModel: CallCounts['byModel'] = {};
    for (const [rpc, perModel] of this.modelCounts) byModel[rpc] = Object.fromEntries(perModel);
    return { byRpc, byModel };
  }

  reset(): void {
    this.rpcCounts.clear();
    this.modelCounts.clear();
    this.cancelCounts.clear();
  }
}
