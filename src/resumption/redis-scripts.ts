import type { Cluster, Redis } from 'ioredis';
import { SEVEN_DAYS_S } from '../util/time.js';

/**
 * The Lua scripts of the Redis store (see redis-store.ts for the key layout). Redis runs each one
 * atomically, which is what keeps a ticket single use across a fleet. An entry is
 * `expiresAt:hash:` followed by the session bytes (sealed or not: the scripts read only the prefix).
 */

export const SEVEN_DAYS_MS = SEVEN_DAYS_S * 1000;

// Recency in microseconds of the Redis clock, strictly above the set's newest so that ties keep write order.
const RECENCY = `
local function recency(zset)
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local newest = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
  if newest[2] and tonumber(newest[2]) >= us then us = tonumber(newest[2]) + 1 end
  return us
end
`;

// KEYS: list, hash, zset (not in a cluster). ARGV: slot prefix, id, ttl ms, max destinations, then per script.
const TOUCH = `${RECENCY}
local function touch()
  local ttl = tonumber(ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  -- In a cluster the set would be in another slot: there the bound is maxmemory and the expiry.
  if not KEYS[3] then return end
  local us = recency(KEYS[3])
  redis.call('ZADD', KEYS[3], us, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', us - ttl * 1000)
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4])
  if over > 0 then
    local victims = redis.call('ZPOPMIN', KEYS[3], over)
    for i = 1, #victims, 2 do
      redis.call('DEL', ARGV[1] .. '{' .. victims[i] .. '}:t13', ARGV[1] .. '{' .. victims[i] .. '}')
    end
  end
end
local function expiry(v)
  return tonumber(string.match(v, '^([^:]*):'))
end
`;

const SCRIPTS = {
  // ARGV[5] now. Pops until an unexpired ticket; remembers it as spent. Returns {expired, ticket?}.
  tbTake: `${TOUCH}
local now = tonumber(ARGV[5])
local expired = 0
while true do
  local v = redis.call('LPOP', KEYS[1])
  if not v then break end
  local e = expiry(v)
  if e and e > now then
    redis.call('HSET', KEYS[2], 'spent', v)
    touch()
    return {expired, v}
  end
  expired = expired + 1
end
if expired > 0 or redis.call('EXISTS', KEYS[2]) == 1 then touch() end
return {expired}`,
  // ARGV[5] now, [6] entry, [7] hash, [8] cap. Prepends, dedupes by hash, drops expired, trims.
  tbInsert: `${TOUCH}
local now = tonumber(ARGV[5])
local cap = tonumber(ARGV[8])
local keep = {ARGV[6]}
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, cap)) do
  if #keep >= cap then break end
  local e, h = string.match(v, '^([^:]*):([^:]*):')
  if tonumber(e) > now and h ~= ARGV[7] then keep[#keep + 1] = v end
end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], unpack(keep))
touch()
return #keep`,
  // ARGV[5] now. The TLS 1.2 session, dropped when expired (OpenSSL would still send it).
  tbTls12: `${TOUCH}
local v = redis.call('HGET', KEYS[2], 'tls12')
if not v then return false end
local e = expiry(v)
if not e or e <= tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[2], 'tls12')
  return false
end
touch()
return v`,
  // ARGV[5] entry.
  tbSetTls12: `${TOUCH}
redis.call('HSET', KEYS[2], 'tls12', ARGV[5])
touch()
return 1`,
  // ARGV[5] version character or '', [6] '1' when reuse was refused, [7] how many versions to keep.
  tbLearn: `${TOUCH}
if ARGV[5] ~= '' then
  local v = (redis.call('HGET', KEYS[2], 'versions') or '') .. ARGV[5]
  local n = tonumber(ARGV[7])
  if #v > n then v = string.sub(v, -n) end
  redis.call('HSET', KEYS[2], 'versions', v)
end
if ARGV[6] == '1' then redis.call('HSET', KEYS[2], 'refuses', '1') end
touch()
return 1`,
  // ARGV[1] now. Unexpired tickets in the list.
  tbCount: `
local n = 0
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if tonumber(string.match(v, '^([^:]*):')) > tonumber(ARGV[1]) then n = n + 1 end
end
return n`,
  // KEYS[1] zset, ARGV[1] ttl ms: forgets ids whose keys have expired, returns how many remain.
  tbLive: `
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', us - tonumber(ARGV[1]) * 1000)
return redis.call('ZCARD', KEYS[1])`,
  // KEYS[1] hash, ARGV[1] field, [2] value: drops the field only if it still holds that value
  // (an entry that would not open; another instance may have replaced it meanwhile).
  tbDropIf: `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`,
  // KEYS[1] values zset, [2] the value's key; ARGV[1] name, [2] value, [3] ttl ms, [4] max values,
  // [5] prefix of value keys. Writes, then drops the least recently used values past the bound;
  // the set lives as long as its longest-lived value could.
  tbSetValue: `${RECENCY}
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], recency(KEYS[1]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then
  local victims = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #victims, 2 do redis.call('DEL', ARGV[5] .. victims[i]) end
end
return 1`,
  // KEYS as tbSetValue; ARGV[1] name. The value, made the most recently used (a policy in use is
  // never the one a flood of new names pushes out); an expired one frees its place in the set.
  tbValue: `${RECENCY}
local v = redis.call('GET', KEYS[2])
if v then redis.call('ZADD', KEYS[1], 'XX', recency(KEYS[1]), ARGV[1]) else redis.call('ZREM', KEYS[1], ARGV[1]) end
return v`,
} as const;

/** How many of each script's arguments are keys (the rest are ARGV); in a cluster, one fewer for 3 (no set). */
const NUMBER_OF_KEYS = {
  tbTake: 3,
  tbInsert: 3,
  tbTls12: 3,
  tbSetTls12: 3,
  tbLearn: 3,
  tbCount: 1,
  tbLive: 1,
  tbDropIf: 1,
  tbSetValue: 2,
  tbValue: 2,
} as const satisfies Record<keyof typeof SCRIPTS, number>;

export type Arg = string | number | Buffer;

/** The Buffer variants ioredis generates for each `defineCommand` (replies keep binary bulk strings). */
export interface ScriptCommands {
  tbTakeBuffer(...args: Arg[]): Promise<[number, Buffer?]>;
  tbInsert(...args: Arg[]): Promise<number>;
  tbTls12Buffer(...args: Arg[]): Promise<Buffer | null>;
  tbSetTls12(...args: Arg[]): Promise<number>;
  tbLearn(...args: Arg[]): Promise<number>;
  tbCount(...args: Arg[]): Promise<number>;
  tbLive(...args: Arg[]): Promise<number>;
  tbDropIf(...args: Arg[]): Promise<number>;
  tbSetValue(...args: Arg[]): Promise<number>;
  tbValueBuffer(...args: Arg[]): Promise<Buffer | null>;
}

/** Registers the scripts on the client (ioredis loads each by SHA, with EVAL as the fallback). */
export function defineScripts(redis: Redis | Cluster, cluster: boolean): ScriptCommands {
  for (const [name, lua] of Object.entries(SCRIPTS)) {
    const keys: number = NUMBER_OF_KEYS[name as keyof typeof SCRIPTS];
    redis.defineCommand(name, { lua, numberOfKeys: cluster && keys === 3 ? 2 : keys });
  }
  // defineCommand adds methods ioredis cannot type; ScriptCommands names them.
  return redis as unknown as ScriptCommands;
}
