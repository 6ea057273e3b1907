import { status } from '@grpc/grpc-js';
import type { ModelDefinition, TensorSpec } from './models';
import { VersionStatistics } from './statistics';
import { TritonError, invalidArgument } from './triton-error';
import type {
  WireModelConfig,
  WireModelIndex,
  WireModelMetadataResponse,
  WireModelStatistics,
} from './wire';

/** Triton's model readiness states (core ModelReadyStateString). */
export type ModelState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

interface VersionEntry {
  state: ModelState;
  reason: string;
  stats: VersionStatistics;
}

interface RepositoryEntry {
  definition: ModelDefinition;
  /** Numeric version -> state; empty while the model was never loaded (Triton lists it by name only). */
  versions: Map<number, VersionEntry>;
  loadDelayMs: number;
  loadFailure: string | undefined;
  /** Bumped by every state change, so a slow load can tell it was overtaken. */
  generation: number;
  pendingLoad: Promise<TritonError | null> | undefined;
}

/** A model version that can serve requests. */
export interface ResolvedModel {
  definition: ModelDefinition;
  version: string;
  stats: VersionStatistics;
}

export interface LoadBehaviour {
  delayMs?: number;
  /** A reason makes loads fail with it; null makes them succeed again. */
  failure?: string | null;
}

/**
 * The fake's model repository and model lifecycle, following Triton core's
 * ModelRepositoryManager / ModelLifeCycle (src/model_repository_manager/):
 * which lookups give NOT_FOUND and which UNAVAILABLE, what the index lists,
 * and the messages of failed loads.
 */
export class ModelRepository {
  private readonly entries = new Map<string, RepositoryEntry>();

  constructor(
    definitions: readonly ModelDefinition[],
    private readonly defaultLoadDelayMs = 0,
  ) {
    for (const definition of definitions) this.add(definition);
  }

  /** Back to a freshly started server: every model in its starting state, fresh statistics. */
  reinitialise(): void {
    const definitions = [...this.entries.values()].map((entry) => entry.definition);
    this.entries.clear();
    for (const definition of definitions) this.add(definition);
  }

  add(definition: ModelDefinition): void {
    const entry: RepositoryEntry = {
      definition,
      versions: new Map(),
      loadDelayMs: definition.loadDelayMs ?? this.defaultLoadDelayMs,
      loadFailure: definition.loadFailure,
      generation: 0,
      pendingLoad: undefined,
    };
    if (definition.loaded ?? true) setAll(entry, 'READY', '');
    this.entries.set(definition.name, entry);
  }

  remove(name: string): boolean {
    return this.entries.delete(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The state of each version that has one; an empty object for a model never loaded. */
  states(name: string): Record<string, { state: ModelState; reason: string }> | undefined {
    const entry = this.entries.get(name);
    if (entry === undefined) return undefined;
    const result: Record<string, { state: ModelState; reason: string }> = {};
    for (const [version, { state, reason }] of entry.versions) {
      result[String(version)] = { state, reason };
    }
    return result;
  }

  configureLoad(name: string, behaviour: LoadBehaviour): void {
    const entry = this.require(name);
    if (behaviour.delayMs !== undefined) entry.loadDelayMs = behaviour.delayMs;
    if (behaviour.failure !== undefined) entry.loadFailure = behaviour.failure ?? undefined;
  }

  /** Loads at once, bypassing the RPC (a model loaded behind the proxy's back). */
  markLoaded(name: string): void {
    setAll(this.require(name), 'READY', '');
  }

  /** Unloads at once, bypassing the RPC; only `version` when given. */
  markUnloaded(name: string, version?: string): void {
    const entry = this.require(name);
    entry.generation++;
    for (const [v, versionEntry] of entry.versions) {
      if (version === undefined || String(v) === version) {
        versionEntry.state = 'UNAVAILABLE';
        versionEntry.reason = 'unloaded';
      }
    }
  }

  /**
   * Core ModelRepositoryManager::GetModel with ModelLifeCycle::GetModel:
   * unknown or never loaded -> NOT_FOUND "... is not found"; latest requested
   * with no READY version -> NOT_FOUND "... has no available versions"; a
   * version that exists but is not READY -> UNAVAILABLE "... is not at ready state".
   */
  resolve(name: string, version: number): ResolvedModel | TritonError {
    const prefix = 'Request for unknown model: ';
    const entry = this.entries.get(name);
    if (entry === undefined || entry.versions.size === 0) {
      return new TritonError(status.NOT_FOUND, `${prefix}'${name}' is not found`);
    }
    if (version === -1) {
      const latest = this.readyVersions(name).at(-1);
      if (latest === undefined) {
        return new TritonError(status.NOT_FOUND, `${prefix}'${name}' has no available versions`);
      }
      return {
        definition: entry.definition,
        version: String(latest),
        stats: entry.versions.get(latest)!.stats,
      };
    }
    const versionEntry = entry.versions.get(version);
    if (versionEntry === undefined) {
      return new TritonError(
        status.NOT_FOUND,
        `${prefix}'${name}' version ${version} is not found`,
      );
    }
    if (versionEntry.state !== 'READY') {
      return new TritonError(
        status.UNAVAILABLE,
        `${prefix}'${name}' version ${version} is not at ready state`,
      );
    }
    return { definition: entry.definition, version: String(version), stats: versionEntry.stats };
  }

  readyVersions(name: string): number[] {
    const entry = this.entries.get(name);
    if (entry === undefined) return [];
    return [...entry.versions]
      .filter(([, v]) => v.state === 'READY')
      .map(([version]) => version)
      .sort((a, b) => a - b);
  }

  /**
   * RepositoryModelLoad. A load already under way is joined rather than
   * repeated (Triton blocks a conflicting load until the first finishes).
   */
  load(name: string): Promise<TritonError | null> {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      // core ModelRepositoryManager::LoadUnloadModel when the name is not in any repository.
      return Promise.resolve(
        new TritonError(
          status.INTERNAL,
          `failed to load '${name}', failed to poll from model repository`,
        ),
      );
    }
    if (entry.pendingLoad !== undefined) return entry.pendingLoad;
    const allReady =
      entry.versions.size > 0 && [...entry.versions.values()].every((v) => v.state === 'READY');
    if (allReady) return Promise.resolve(null);

    setAll(entry, 'LOADING', '');
    const generation = entry.generation;
    const finish = (): TritonError | null => {
      entry.pendingLoad = undefined;
      if (entry.generation !== generation || this.entries.get(name) !== entry) {
        return invalidArgument(
          `load failed for model '${name}': Newer operation has been applied to the model lifecycle, current load operation is out-dated.\n`,
        );
      }
      if (entry.loadFailure !== undefined) {
        setAll(entry, 'UNAVAILABLE', entry.loadFailure);
        const reasons = [...entry.versions.keys()]
          .map((v) => `version ${v} is at UNAVAILABLE state: ${entry.loadFailure};`)
          .join('');
        return invalidArgument(`load failed for model '${name}': ${reasons}\n`);
      }
      setAll(entry, 'READY', '');
      return null;
    };
    entry.pendingLoad =
      entry.loadDelayMs > 0
        ? new Promise((resolve) => setTimeout(() => resolve(finish()), entry.loadDelayMs))
        : Promise.resolve().then(finish);
    return entry.pendingLoad;
  }

  /** RepositoryModelUnload. Unknown names are ignored, as Triton does. */
  unload(name: string): void {
    const entry = this.entries.get(name);
    if (entry === undefined || entry.versions.size === 0) return;
    this.markUnloaded(name);
  }

  /** RepositoryIndex (core ModelRepositoryManager::RepositoryIndex). */
  index(readyOnly: boolean): WireModelIndex[] {
    const result: WireModelIndex[] = [];
    for (const name of this.names()) {
      const entry = this.entries.get(name)!;
      if (entry.versions.size === 0) {
        if (!readyOnly) result.push({ name, version: '', state: '', reason: '' });
        continue;
      }
      for (const version of [...entry.versions.keys()].sort((a, b) => a - b)) {
        const { state, reason } = entry.versions.get(version)!;
        if (!readyOnly || state === 'READY') {
          result.push({ name, version: String(version), state, reason });
        }
      }
    }
    return result;
  }

  /** ModelMetadata (core TRITONSERVER_ServerModelMetadata). */
  metadata(model: ResolvedModel, requestedVersion: number): WireModelMetadataResponse {
    const { definition } = model;
    const batchDim = definition.maxBatchSize > 0 ? [-1] : [];
    const tensor = (spec: TensorSpec) => ({
      name: spec.name,
      datatype: spec.datatype,
      shape: [...batchDim, ...spec.dims],
    });
    return {
      name: definition.name,
      versions:
        requestedVersion === -1
          ? this.readyVersions(definition.name).map(String)
          : [String(requestedVersion)],
      platform: definition.platform || definition.backend || '',
      inputs: definition.inputs.map(tensor),
      outputs: definition.outputs.map(tensor),
    };
  }

  /**
   * ModelStatistics (core TRITONSERVER_ServerModelStatistics): every ready
   * version of every model for an empty name, else the named model's.
   */
  statistics(name: string, version: number): WireModelStatistics[] | TritonError {
    if (name === '') {
      return this.names().flatMap((n) => this.readyVersions(n).map((v) => this.versionStats(n, v)));
    }
    const ready = this.readyVersions(name);
    if (ready.length === 0) return invalidArgument(`requested model '${name}' is not available`);
    if (version === -1) return ready.map((v) => this.versionStats(name, v));
    if (!ready.includes(version)) {
      return invalidArgument(`requested model version is not available for model '${name}'`);
    }
    return [this.versionStats(name, version)];
  }

  private versionStats(name: string, version: number): WireModelStatistics {
    return this.entries.get(name)!.versions.get(version)!.stats.toWire(name, String(version));
  }

  private require(name: string): RepositoryEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new Error(`fake Triton has no model '${name}'`);
    return entry;
  }
}

function setAll(entry: RepositoryEntry, state: ModelState, reason: string): void {
  entry.generation++;
  for (const version of entry.definition.versions ?? ['1']) {
    const v = Number(version);
    const existing = entry.versions.get(v);
    // A fresh load starts fresh statistics, as Triton creates a new model object.
    const fresh =
      existing === undefined || (existing.state === 'UNAVAILABLE' && state !== 'UNAVAILABLE');
    const stats = fresh ? new VersionStatistics() : existing.stats;
    entry.versions.set(v, { state, reason, stats });
  }
}

/** ModelConfig: the config Triton would report after auto-completion. */
export function modelConfig(definition: ModelDefinition): WireModelConfig {
  const versions = (definition.versions ?? ['1']).map(Number);
  return {
    name: definition.name,
    platform: definition.platform ?? '',
    backend: definition.backend ?? '',
    version_policy:
      versions.length === 1
        ? { latest: { num_versions: 1 } }
        : { specific: { versions: [...versions].sort((a, b) => a - b) } },
    max_batch_size: definition.maxBatchSize,
    input: definition.inputs.map((spec) => ({
      name: spec.name,
      data_type: configDataType(spec),
      format: 'FORMAT_NONE',
      dims: spec.dims,
      optional: spec.optional ?? false,
    })),
    output: definition.outputs.map((spec) => ({
      name: spec.name,
      data_type: configDataType(spec),
      dims: spec.dims,
      label_filename: '',
    })),
    instance_group: [{ name: `${definition.name}_0`, kind: 'KIND_CPU', count: 1, gpus: [] }],
    default_model_filename: defaultModelFilename(definition),
    model_transaction_policy: { decoupled: definition.decoupled === true },
  };
}

// model_config.proto's DataType names BYTES as TYPE_STRING.
function configDataType(spec: TensorSpec): string {
  return spec.datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${spec.datatype}`;
}

function defaultModelFilename(definition: ModelDefinition): string {
  switch (definition.platform || definition.backend) {
    case 'onnxruntime_onnx':
    case 'onnxruntime':
      return 'model.onnx';
    case 'python':
      return 'model.py';
    default:
      return '';
  }
}
