import type { Redis } from 'ioredis';
import { say } from '../util/operator-log.js';
import { connectedNode, describeTarget, openRedis, type RedisTarget } from './redis-connection.js';
import {
  RECENT_VERSIONS,
  type DestinationFacts,
  type NegotiatedVersion,
  type StoredTicket,
  type TakeResult,
  type TicketStore,
} from './store.js';

/**
 * Fleet mode: several ticketbooth instances share one Redis, so a ticket one instance receives
 * can resume a connection another instance makes, and single use (RFC 8446 C.4) holds across
 * the fleet because every read-modify-write of a slot is one Lua script (Redis runs each one
 * atomically). Per destination key:
 *   `{prefix}d:{id}:t13`  LIST of TLS 1.3 tickets, newest first
 *   `{prefix}d:{id}`      HASH: spent (last taken ticket), tls12, versions, refuses
 *   `{prefix}destinations` ZSET of ids by last write (Redis clock, µs): size() and the LRU bound
 *   `{prefix}v:{name}`    STRING: a shared value (an MTA-STS policy), with its own TTL
 * An entry is `expiresAt:hash:` followed by the DER session bytes (binary-safe).
 * Keys expire 7 days after their last write (RFC 8446 4.6.1: no ticket outlives that).
 * Scripts delete evicted slots by computed key names and share the ZSET across destinations
 * (cross-slot): a single Redis (with replicas, and Sentinel for failover), not Redis Cluster.
 */

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;

// KEYS: list, hash, zset. ARGV: slot prefix, id, ttl ms, max destinations, then per script.
const TOUCH = `
local function touch()
  local ttl = tonumber(ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  -- Recency in microseconds of the Redis clock, strictly increasing so that ties keep write order.
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local newest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  if newest[2] and tonumber(newest[2]) >= us then us = tonumber(newest[2]) + 1 end
  redis.call('ZADD', KEYS[3], us, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', us - ttl * 1000)
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4])
  if over > 0 then
    local victims = redis.call('ZPOPMIN', KEYS[3], over)
    for i = 1, #victims, 2 do
      redis.call('DEL', ARGV[1] .. victims[i] .. ':t13', ARGV[1] .. victims[i])
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
} as const;

type Arg = string | number | Buffer;

/** The Buffer variants ioredis generates for each `defineCommand` (replies keep binary bulk strings). */
interface ScriptCommands {
  tbTakeBuffer(...args: Arg[]): Promise<[number, Buffer?]>;
  tbInsert(...args: Arg[]): Promise<number>;
  tbTls12Buffer(...args: Arg[]): Promise<Buffer | null>;
  tbSetTls12(...args: Arg[]): Promise<number>;
  tbLearn(...args: Arg[]): Promise<number>;
  tbCount(...args: Arg[]): Promise<number>;
  tbLive(...args: Arg[]): Promise<number>;
}

/** Where (one URL, or Sentinel), then how the store uses it. */
export type RedisStoreOptions = RedisTarget & {
  /** Prefix of every key; instances sharing a cache must use the same one. */
  prefix: string;
  maxDestinations: number;
  /** How long a command may take before the store gives up on it (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Told about each outage and each recovery; default: one line on stderr. */
  onStatus?(message: string): void;
};

export class RedisTicketStore implements TicketStore {
  private readonly scripts: ScriptCommands;
  private healthy = true;
  private closing = false;
  /** Operations that failed and answered "nothing" (the metric ticketbooth_store_errors_total). */
  errors = 0;

  private constructor(
    private readonly redis: Redis,
    private readonly options: RedisStoreOptions,
    /** The target without passwords, for messages. */
    private readonly where: string,
  ) {
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      const numberOfKeys = name === 'tbCount' || name === 'tbLive' ? 1 : 3;
      redis.defineCommand(name, { lua, numberOfKeys });
    }
    // defineCommand adds methods ioredis cannot type; ScriptCommands names them.
    this.scripts = redis as unknown as ScriptCommands;
    redis.on('ready', () => {
      if (!this.healthy) this.report(`redis store: reconnected to ${connectedNode(redis)}`);
      this.healthy = true;
    });
    // Said when the connection drops (a failover, a restart), even with no traffic to notice it.
    redis.on('close', () => {
      if (!this.closing) this.unavailable('connection lost');
    });
  }

  /** Connects and checks the server answers; a wrong URL, no primary or an absent server fails the start. */
  static async connect(options: RedisStoreOptions): Promise<RedisTicketStore> {
    return new RedisTicketStore(await openRedis(options, options.commandTimeoutMs ?? 1000), options, describeTarget(options));
  }

  private keys(key: string): [string, string, string] {
    const slot = `${this.options.prefix}d:${key}`;
    return [`${slot}:t13`, slot, `${this.options.prefix}destinations`];
  }

  /** KEYS and the ARGV every writing script shares. */
  private args(key: string): Arg[] {
    return [...this.keys(key), `${this.options.prefix}d:`, key, SEVEN_DAYS_MS, this.options.maxDestinations];
  }

  /**
   * While Redis is unreachable the store holds nothing: connections make full handshakes rather
   * than wait or fail, and single use still holds (a ticket that might have been taken is never
   * offered twice, at worst it is lost).
   */
  private async guard<T>(fallback: T, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.errors++;
      this.unavailable((err as Error).message);
      return fallback;
    }
  }

  /** One line per outage (the first failure or the lost connection, whichever comes first). */
  private unavailable(why: string): void {
    if (this.healthy) this.report(`redis store unavailable, resuming nothing until it is back: ${why}`);
    this.healthy = false;
  }

  private report(message: string): void {
    if (this.options.onStatus) this.options.onStatus(message);
    else say('warn', message);
  }

  async takeTls13Ticket(key: string, now: number): Promise<TakeResult> {
    return this.guard({ expired: 0 }, async () => {
      const [expired, entry] = await this.scripts.tbTakeBuffer(...this.args(key), now);
      return entry ? { ticket: decode(entry), expired } : { expired };
    });
  }

  async insertTls13Ticket(key: string, ticket: StoredTicket, cap: number, now: number): Promise<number> {
    return this.guard(0, () => this.scripts.tbInsert(...this.args(key), now, encode(ticket), ticket.hash, cap));
  }

  async lastSpentTls13Ticket(key: string, now: number): Promise<StoredTicket | undefined> {
    return this.guard(undefined, async () => {
      const entry = await this.redis.hgetBuffer(this.keys(key)[1], 'spent');
      const spent = entry ? decode(entry) : undefined;
      return spent && spent.expiresAt > now ? spent : undefined;
    });
  }

  async countTls13Tickets(key: string, now: number): Promise<number> {
    return this.guard(0, () => this.scripts.tbCount(this.keys(key)[0], now));
  }

  async tls12Session(key: string, now: number): Promise<StoredTicket | undefined> {
    return this.guard(undefined, async () => {
      const entry = await this.scripts.tbTls12Buffer(...this.args(key), now);
      return entry ? decode(entry) : undefined;
    });
  }

  async setTls12Session(key: string, session: StoredTicket): Promise<void> {
    await this.guard(0, () => this.scripts.tbSetTls12(...this.args(key), encode(session)));
  }

  async removeTls12Session(key: string): Promise<void> {
    await this.guard(0, () => this.redis.hdel(this.keys(key)[1], 'tls12'));
  }

  async value(name: string): Promise<string | undefined> {
    return this.guard(undefined, async () => (await this.redis.get(`${this.options.prefix}v:${name}`)) ?? undefined);
  }

  async setValue(name: string, value: string, ttlMs: number): Promise<void> {
    await this.guard(
      undefined,
      async () => void (await this.redis.set(`${this.options.prefix}v:${name}`, value, 'PX', Math.max(1, Math.round(ttlMs)))),
    );
  }

  async forget(key: string): Promise<void> {
    const [list, hash, zset] = this.keys(key);
    await this.guard(undefined, async () => void (await this.redis.multi().del(list, hash).zrem(zset, key).exec()));
  }

  async facts(key: string): Promise<DestinationFacts> {
    return this.guard({ recentVersions: '', refusesReuse: false }, async () => {
      const [versions, refuses] = await this.redis.hmget(this.keys(key)[1], 'versions', 'refuses');
      return { recentVersions: versions ?? '', refusesReuse: refuses === '1' };
    });
  }

  async learn(key: string, version: NegotiatedVersion | undefined, refusedReuse: boolean): Promise<void> {
    const v = version === 'TLSv1.3' ? '3' : version === 'TLSv1.2' ? '2' : '';
    await this.guard(0, () => this.scripts.tbLearn(...this.args(key), v, refusedReuse ? '1' : '0', RECENT_VERSIONS));
  }

  /** ZCARD for destinations, LLEN per destination (pipelined, in pages) for tickets: metrics cadence only. */
  async size(): Promise<{ destinations: number; tickets: number }> {
    return this.guard({ destinations: 0, tickets: 0 }, async () => {
      const zset = this.keys('')[2];
      const destinations = await this.scripts.tbLive(zset, SEVEN_DAYS_MS);
      let tickets = 0;
      for (let start = 0; start < destinations; start += 500) {
        const ids = await this.redis.zrange(zset, String(start), String(start + 499));
        const pipeline = this.redis.pipeline();
        for (const id of ids) pipeline.llen(this.keys(id)[0]);
        for (const [err, n] of (await pipeline.exec()) ?? []) if (!err) tickets += Number(n);
      }
      return { destinations, tickets };
    });
  }

  /** One PING, not guarded: while Redis is away this rejects (fast: no offline queue). */
  async ping(): Promise<void> {
    try {
      await this.redis.ping();
    } catch (err) {
      throw new Error(`${this.where} does not answer: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.redis.quit();
    } catch {
      /* away already */
    } finally {
      // Also ends the Sentinel subscriptions of the failover detector, which QUIT leaves open.
      this.redis.disconnect();
    }
  }
}

function encode(t: StoredTicket): Buffer {
  if (t.hash.includes(':')) throw new Error('ticket hash must not contain ":"');
  return Buffer.concat([Buffer.from(`${t.expiresAt}:${t.hash}:`, 'latin1'), t.session]);
}

function decode(entry: Buffer): StoredTicket {
  const first = entry.indexOf(0x3a);
  const second = entry.indexOf(0x3a, first + 1);
  if (first < 0 || second < 0) throw new Error('malformed ticket entry in Redis');
  return {
    expiresAt: Number(entry.subarray(0, first).toString('latin1')),
    hash: entry.subarray(first + 1, second).toString('latin1'),
    session: Buffer.from(entry.subarray(second + 1)),
  };
}
