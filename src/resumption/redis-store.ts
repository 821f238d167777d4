import { Cluster } from 'ioredis';
import { BoundedMap } from '../util/bounded-map.js';
import { say } from '../util/operator-log.js';
import { closeRedis, connectedNode, describeTarget, openRedis, type RedisClient, type RedisTarget } from './redis-connection.js';
import { EntryCodec } from './redis-entry.js';
import { defineScripts, SEVEN_DAYS_MS, type Arg, type ScriptCommands } from './redis-scripts.js';
import { ReplicaAck, type ReplicaAckOptions } from './replica-ack.js';
import type { OpenFailure, Sealer } from './seal.js';
import {
  RECENT_VERSIONS,
  type DestinationFacts,
  type NegotiatedVersion,
  type StoredTicket,
  type StoreBackend,
  type TakeResult,
} from './store.js';

/**
 * Fleet mode: several ticketbooth instances share one Redis, so a ticket one instance receives
 * can resume a connection another instance makes, and single use (RFC 8446 C.4) holds across
 * the fleet because every read-modify-write of a slot is one Lua script (Redis runs each one
 * atomically). Per destination id (the braces are literal: a hash tag, so both keys share a slot):
 *   `PREFIX d:{ID}:t13`   LIST of TLS 1.3 tickets, newest first
 *   `PREFIX d:{ID}`       HASH: spent (last taken ticket), tls12, versions, refuses
 *   `PREFIX destinations` ZSET of ids by last write (Redis clock, µs): size() and the LRU bound;
 *                         not in a cluster (another slot), where size() scans and maxmemory bounds
 *   `PREFIX {v}:NAME`     STRING: a shared value (an MTA-STS policy), with its own TTL
 *   `PREFIX {v}`          ZSET of value names by last use: the same LRU bound (maxDestinations),
 *                         least recently used (read or written) first; one hash tag, so it holds in a cluster too
 * An entry is `expiresAt:hash:` followed by the session bytes (binary-safe), sealed with `seal`
 * (redis-entry.ts says what is sealed and what stays clear).
 * Keys expire 7 days after their last write (RFC 8446 4.6.1: no ticket outlives that).
 * Outside a cluster, scripts also keep the ZSET and delete evicted slots by computed names; in a
 * cluster every script touches one destination's two keys only (one slot).
 */

/** Where (one URL, or Sentinel), then how the store uses it. */
export type RedisStoreOptions = RedisTarget & {
  /** Prefix of every key; instances sharing a cache must use the same one. */
  prefix: string;
  /** Bounds the destinations and, counted apart, the shared values. */
  maxDestinations: number;
  /** How long a command may take before the store gives up on it (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Seals what is written and opens what is read; without it, sessions are stored in the clear. */
  sealer?: Sealer;
  /** Offer a taken ticket only once this many replicas hold the take (replica-ack.ts); not with a cluster. */
  replicaAck?: ReplicaAckOptions;
  /** Told about each outage and each recovery; default: one line on stderr. */
  onStatus?(message: string): void;
};

export class RedisTicketStore implements StoreBackend {
  private readonly scripts: ScriptCommands;
  private healthy = true;
  private closing = false;
  /** Operations that failed and answered "nothing" (the metric ticketbooth_store_errors_total). */
  errors = 0;
  private readonly entries: EntryCodec;
  /** A Redis Cluster: no destinations set, so no LRU bound of its own and a scanning size(). */
  private readonly cluster: boolean;
  private readonly ack: ReplicaAck | undefined;
  /** Value names already looked for under the layout before the values set (legacyValue). */
  private readonly legacyLooked: BoundedMap<string, true>;

  private constructor(
    private readonly redis: RedisClient,
    private readonly options: RedisStoreOptions,
    /** The target without passwords, for messages. */
    private readonly where: string,
  ) {
    this.cluster = redis instanceof Cluster;
    this.scripts = defineScripts(redis, this.cluster);
    this.entries = new EntryCodec(options.sealer, (m) => this.report(m));
    this.legacyLooked = new BoundedMap(Math.max(1, options.maxDestinations));
    this.ack =
      options.replicaAck && !(redis instanceof Cluster) ? new ReplicaAck(redis, options.replicaAck, (m) => this.report(m)) : undefined;
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
    const slot = `${this.options.prefix}d:{${key}}`;
    return [`${slot}:t13`, slot, `${this.options.prefix}destinations`];
  }

  /** KEYS and the ARGV every writing script shares. */
  private args(key: string): Arg[] {
    const [list, hash, zset] = this.keys(key);
    const keys = this.cluster ? [list, hash] : [list, hash, zset];
    return [...keys, `${this.options.prefix}d:`, key, SEVEN_DAYS_MS, this.options.maxDestinations];
  }

  /**
   * While Redis is unreachable the store holds nothing: connections make full handshakes rather
   * than wait or fail, and single use still holds (a ticket that might have been taken is never
   * offered twice, at worst it is lost).
   */
  private async guard<T>(fallback: T, op: () => Promise<T>): Promise<T> {
    try {
      const result = await op();
      // A cluster stays "ready" through a node's failover: its recovery shows as a command that works.
      if (!this.healthy) this.report(`redis store: ${connectedNode(this.redis)} answers again`);
      this.healthy = true;
      return result;
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
    if (this.ack && !this.ack.open) return { expired: 0 };
    return this.guard({ expired: 0 }, async () => {
      let expired = 0;
      // An entry that does not open has left the list all the same (dropped); take the next one.
      for (;;) {
        const [dropped, entry] = await this.scripts.tbTakeBuffer(...this.args(key), now);
        expired += dropped;
        if (!entry) return { expired };
        const ticket = this.entries.decode(key, entry);
        if (ticket && this.ack && !(await this.ack.acknowledged())) {
          this.errors++;
          // Not `spent` either: adaptive reuse would offer it at once, and the replica a failover
          // promotes still lists it, to be offered again.
          await this.scripts.tbDropIf(this.keys(key)[1], 'spent', entry);
          return { expired };
        }
        if (ticket) return { ticket, expired };
        await this.scripts.tbDropIf(this.keys(key)[1], 'spent', entry);
      }
    });
  }

  async insertTls13Ticket(key: string, ticket: StoredTicket, cap: number, now: number): Promise<number> {
    return this.guard(0, () => this.scripts.tbInsert(...this.args(key), now, this.entries.encode(key, ticket), ticket.hash, cap));
  }

  async lastSpentTls13Ticket(key: string, now: number): Promise<StoredTicket | undefined> {
    // While takes are unacknowledged, a spent ticket may be one a promoted replica would offer again.
    if (this.ack && !this.ack.open) return undefined;
    return this.guard(undefined, async () => {
      const entry = await this.redis.hgetBuffer(this.keys(key)[1], 'spent');
      const spent = entry ? await this.opened(key, 'spent', entry) : undefined;
      return spent && spent.expiresAt > now ? spent : undefined;
    });
  }

  async countTls13Tickets(key: string, now: number): Promise<number> {
    return this.guard(0, () => this.scripts.tbCount(this.keys(key)[0], now));
  }

  async tls12Session(key: string, now: number): Promise<StoredTicket | undefined> {
    return this.guard(undefined, async () => {
      const entry = await this.scripts.tbTls12Buffer(...this.args(key), now);
      return entry ? await this.opened(key, 'tls12', entry) : undefined;
    });
  }

  async setTls12Session(key: string, session: StoredTicket): Promise<void> {
    await this.guard(0, () => this.scripts.tbSetTls12(...this.args(key), this.entries.encode(key, session)));
  }

  /** A hash field's entry opened; one that does not open is dropped from the slot (unless replaced meanwhile). */
  private async opened(key: string, field: 'spent' | 'tls12', entry: Buffer): Promise<StoredTicket | undefined> {
    const ticket = this.entries.decode(key, entry);
    if (!ticket) await this.scripts.tbDropIf(this.keys(key)[1], field, entry);
    return ticket;
  }

  async removeTls12Session(key: string): Promise<void> {
    await this.guard(0, () => this.redis.hdel(this.keys(key)[1], 'tls12'));
  }

  /** The values set and the value's key: one hash tag, one cluster slot. */
  private valueKeys(name: string): [string, string] {
    const set = `${this.options.prefix}{v}`;
    return [set, `${set}:${name}`];
  }

  async value(name: string): Promise<string | undefined> {
    return this.guard(undefined, async () => {
      const raw = await this.scripts.tbValueBuffer(...this.valueKeys(name), name);
      return raw ? this.entries.decodeValue(name, raw) : this.legacyValue(name);
    });
  }

  /**
   * A value a version before the values set wrote as `PREFIX v:NAME` (same encoding), moved into the
   * set on its first read with what is left of its TTL: an upgrade, rolling or not, forgets no cached
   * MTA-STS policy (forgetting one is the window a TXT-stripping attacker waits for).
   */
  private async legacyValue(name: string): Promise<string | undefined> {
    // Once per name and process: a miss (the usual case, a domain with no policy) is then one call again.
    if (this.legacyLooked.get(name)) return undefined;
    this.legacyLooked.set(name, true);
    const old = `${this.options.prefix}v:${name}`;
    const [raw, ttl] = await Promise.all([this.redis.getBuffer(old), this.redis.pttl(old)]);
    if (!raw || ttl <= 0) return undefined;
    const value = this.entries.decodeValue(name, raw);
    if (value !== undefined) await this.setValue(name, value, ttl);
    await this.redis.del(old);
    return value;
  }

  async setValue(name: string, value: string, ttlMs: number): Promise<void> {
    const blob = this.entries.encodeValue(name, value);
    const ttl = Math.max(1, Math.round(ttlMs));
    const [set, key] = this.valueKeys(name);
    await this.guard(0, () => this.scripts.tbSetValue(set, key, name, blob, ttl, this.options.maxDestinations, `${set}:`));
  }

  /** Entries read back and dropped unopened, by reason (ticketbooth_store_dropped_total). */
  get dropped(): Readonly<Record<OpenFailure, number>> {
    return this.entries.dropped;
  }

  async forget(key: string): Promise<void> {
    const [list, hash, zset] = this.keys(key);
    await this.guard(undefined, async () => {
      if (this.cluster) await this.redis.del(list, hash);
      else await this.redis.multi().del(list, hash).zrem(zset, key).exec();
    });
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
    if (this.redis instanceof Cluster)
      return this.guard({ destinations: 0, tickets: 0 }, () => clusterSize(this.redis as Cluster, this.options.prefix));
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
    await closeRedis(this.redis);
  }
}

/** Every primary scanned for the prefix's slots: destinations with a key, tickets in their lists. */
async function clusterSize(cluster: Cluster, prefix: string): Promise<{ destinations: number; tickets: number }> {
  const ids = new Set<string>();
  let tickets = 0;
  for (const node of cluster.nodes('master')) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}d:{*`, 'COUNT', 500);
      cursor = next;
      const lists = keys.filter((k) => k.endsWith('}:t13'));
      for (const k of keys) ids.add(k.slice(0, k.lastIndexOf('}')));
      const lengths = await Promise.all(lists.map((k) => node.llen(k)));
      tickets += lengths.reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return { destinations: ids.size, tickets };
}
