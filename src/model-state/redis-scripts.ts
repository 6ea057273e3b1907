import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/**
 * Server-side scripts: each write, its expiry bookkeeping and its pub/sub
 * message happen atomically, so message order always matches write order and
 * "newest write wins" is decided in one place for the shared copy.
 */

// Entries for one server. KEYS: server hash, servers set.
// ARGV: channel, message, key ttl ms, now ms, replaceAsOf ('' = merge only), server name,
// then groups of (field, value json, updatedAt, updatedBy).
const APPLY_STATE = `
local now = tonumber(ARGV[4])
local listed = {}
for i = 7, #ARGV, 4 do listed[ARGV[i]] = true end
if ARGV[5] ~= '' then
  local asOf = tonumber(ARGV[5])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if not listed[all[i]] then
      local old = cjson.decode(all[i + 1])
      if old.updatedAt <= asOf or old.expiresAt <= now then redis.call('HDEL', KEYS[1], all[i]) end
    end
  end
end
for i = 7, #ARGV, 4 do
  local at = tonumber(ARGV[i + 2])
  local by = ARGV[i + 3]
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  local keep = false
  if raw then
    local old = cjson.decode(raw)
    keep = old.expiresAt > now and (old.updatedAt > at or (old.updatedAt == at and old.updatedBy > by))
  end
  if not keep then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[6])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`;

// KEYS: failures hash. ARGV: channel, message, field, value json ('' = clear), now ms.
const SET_FAILURE = `
local now = tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1])['until'] <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`;

// Granted when free or already held by the same holder (who renews it).
// KEYS: lease key. ARGV: holder, ttl ms.
const TRY_LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

// KEYS: lock key, fence counter. ARGV: ttl ms, now ms, fence ttl ms.
// The counter starts at the current time in ms, so tokens keep increasing even
// after Redis loses its data (as long as grants stay under one per ms); for the
// same reason the counter may expire (it does, a day after its last grant), so
// one key per model name ever loaded does not pile up forever.
const ACQUIRE_LOCK = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < now then redis.call('SET', KEYS[2], ARGV[2]) end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
`;

// KEYS: lock key. ARGV: token. Only the current holder's token deletes the lock.
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS: lock key, fence counter. ARGV: token, ttl ms.
// The holder keeps the lock while its token is current: the lock key holds it,
// or the key lapsed (a slow renewal) and no later token was granted since.
const EXTEND_LOCK = `
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if held == false and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

// KEYS: server hash, servers set. ARGV: server name. Forgets a server whose hash expired.
const PRUNE_SERVER = `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
`;

// A model's generation only goes up. KEYS: generations hash.
// ARGV: channel, origin replica, model, generation wanted, mode.
// 'bump': a new number above both the shared one and the one wanted (a change
// this replica saw); 'raise': at least the one wanted (writing a view back).
// Publishes when the shared number moved; returns the shared number.
const SET_GENERATION = `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0') or 0
local wanted = tonumber(ARGV[4])
local next = current
if ARGV[5] == 'bump' then
  next = math.max(current + 1, wanted)
elseif wanted > current then
  next = wanted
end
if next ~= current then
  redis.call('HSET', KEYS[1], ARGV[3], next)
  redis.call('PUBLISH', ARGV[1], cjson.encode({kind = 'generation', origin = ARGV[2], model = ARGV[3], generation = next}))
end
return next
`;

export class RedisScript {
  private readonly sha: string;

  constructor(
    readonly name: string,
    private readonly lua: string,
    private readonly keyCount: number,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** EVALSHA, falling back to EVAL when the server lost its script cache (restart, failover). */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]) {
    if (keys.length !== this.keyCount) throw new Error(`${this.name} takes ${this.keyCount} keys`);
    try {
      return await redis.evalsha(this.sha, this.keyCount, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return await redis.eval(this.lua, this.keyCount, ...keys, ...args);
    }
  }
}

export const SCRIPTS = {
  applyState: new RedisScript('apply-state', APPLY_STATE, 2),
  setFailure: new RedisScript('set-failure', SET_FAILURE, 1),
  tryLease: new RedisScript('try-lease', TRY_LEASE, 1),
  acquireLock: new RedisScript('acquire-lock', ACQUIRE_LOCK, 2),
  releaseLock: new RedisScript('release-lock', RELEASE_LOCK, 1),
  extendLock: new RedisScript('extend-lock', EXTEND_LOCK, 2),
  pruneServer: new RedisScript('prune-server', PRUNE_SERVER, 2),
  setGeneration: new RedisScript('set-generation', SET_GENERATION, 1),
} as const;
