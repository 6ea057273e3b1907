export { ResponseCache, servedVersion, uncacheableReason } from './response-cache';
export type {
  CacheAnswer,
  CacheCall,
  CacheHooks,
  CacheResult,
  CacheStateView,
  CacheStatus,
  Fetch,
  ResponseCacheDeps,
  SharedTier,
} from './response-cache';
export { MemoryTier } from './memory-tier';
export type { MemoryTierOptions } from './memory-tier';
export { ModelPolicies } from './model-policies';
export type { ModelGlob, ModelPolicy } from './model-policies';
export { cacheKeyOf } from './cache-key';
export type { KeyScope } from './cache-key';
export { Coalescer } from './coalescer';
export type { Waiter } from './coalescer';
export type { CacheEntry } from './cache-entry';
export { RedisTier } from './redis-tier';
export type { RedisTierOptions } from './redis-tier';
