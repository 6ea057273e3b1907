export { MemoryModelStateStore } from './memory-store';
export type { MemoryStoreOptions } from './memory-store';
export { RedisModelStateStore, redisKeys } from './redis-store';
export type { RedisStoreOptions } from './redis-store';
export { buildRedisOptions, reconnectDelay, redisConnectionFromSettings } from './redis-connection';
export type { RedisAddress, RedisConnectionOptions, RedisSettings } from './redis-connection';
export { defaultReplicaId } from './store-base';
export type { StoreOptions } from './store-base';
export { Reconciler, statusFromTriton } from './reconciler';
export type {
  ReconcileResult,
  ReconcileSource,
  ReconcilerOptions,
  ReconcilerStats,
  RepositoryIndexEntry,
} from './reconciler';
export { LoadCoordinator } from './load-coordinator';
export type { EnsureLoadedOptions, LoadContext, LoadCoordinatorOptions } from './load-coordinator';
export { MODEL_STATUSES } from './types';
export type {
  ChangeOrigin,
  LoadFailure,
  LoadOutcome,
  Logger,
  ModelStateChange,
  ModelStateEntry,
  ModelStateEvent,
  ModelStateInput,
  ModelStateListener,
  ModelStateLock,
  ModelStateMetrics,
  ModelStateSnapshot,
  ModelStateStore,
  ModelStatus,
  ReconcileOutcome,
  ReplaceOptions,
  ReplicaSeen,
  StoreHealth,
} from './types';
