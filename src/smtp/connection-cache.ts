import { createHash } from 'node:crypto';
import type { SmtpClient } from '../upstream/smtp-client/client.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import type { Route } from './routing.js';

/** The `connectionCache` settings of an SMTP listener, in milliseconds. */
export interface ConnectionCacheLimits {
  enabled: boolean;
  /** How long a connection may wait in the cache for its next transaction. */
  idleMs: number;
  /** How long after it was opened a connection may still take a transaction. */
  maxAgeMs: number;
  /** Transactions one connection may carry; undefined: no limit. */
  maxUses?: number;
  maxIdlePerHop: number;
  maxIdle: number;
  /** The RSET probe's own reply timeout. */
  probeMs: number;
}

/** What happened to cached connections, for metrics (a type, not an interface: it is read as a record). */
export type ConnectionCacheStats = {
  /** Put back after a clean transaction. */
  pooled: number;
  /** Taken for a transaction (its RSET probe passed). */
  reused: number;
  /** Failed the RSET probe (closed by the server, 421, garbage, timeout): a new connection was made. */
  probeFailed: number;
  /** Waited past the idle limit. */
  expired: number;
  /** Past the age or use limit at the end of a transaction: closed, not cached. */
  retired: number;
  /** Pushed out by the per-hop or total cap. */
  evicted: number;
};

/** The transaction's first command, sent behind the probe: its line depends on the connection's extensions. */
export interface FirstCommand {
  line(client: SmtpClient): string;
  timeoutMs: number;
}

/** A taken connection, the reply to the first command, and what the audit line says of it. */
export interface Reused {
  client: SmtpClient;
  reply: SmtpReply;
  ageMs: number;
  /** This transaction is the connection's `use`-th. */
  use: number;
}

interface Idle {
  key: string;
  client: SmtpClient;
  timer: NodeJS.Timeout;
}

/**
 * Upstream SMTP connections kept between transactions, shared by every client session of one
 * listener (Postfix's scache, with smtp_reuse.c's rules): a connection goes back only when clean
 * (open, in step, outside a transaction, never after a 421, a timeout or a protocol error: those
 * abort it), under a key that holds everything that makes two deliveries interchangeable on it
 * (`poolKey`), and within idle, age, use and count limits. Before reuse it must answer RSET with
 * 250; otherwise it is dropped and the caller dials, so the client never sees it. Connections let
 * go QUIT in the background; `close()` waits for them.
 */
export class ConnectionCache {
  readonly stats: ConnectionCacheStats = { pooled: 0, reused: 0, probeFailed: 0, expired: 0, retired: 0, evicted: 0 };
  /** Newest last, per key; `order` has every idle connection, oldest first, for the total cap. */
  private readonly byKey = new Map<string, Idle[]>();
  private readonly order = new Set<Idle>();
  private readonly uses = new WeakMap<SmtpClient, number>();
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly limits: ConnectionCacheLimits) {}

  get idle(): number {
    return this.order.size;
  }

  /**
   * The newest cached connection for `key` that `fits` the transaction and passes the RSET probe,
   * with the reply to `first` (the transaction's MAIL, sent in the probe's group where the server
   * pipelines, so reuse costs no extra round trip); or undefined, and the caller dials. Connections
   * that fail the probe are dropped on the way.
   */
  async take(key: string, fits: (client: SmtpClient) => boolean, first: FirstCommand): Promise<Reused | undefined> {
    // Looked up afresh after each probe: other sessions take and put while one is awaited.
    for (let idle = this.newest(key, fits); idle; idle = this.newest(key, fits)) {
      this.remove(idle);
      const client = idle.client;
      const replies = client.alive
        ? await client.commands(['RSET', first.line(client)], [this.limits.probeMs, first.timeoutMs]).catch(() => undefined)
        : undefined;
      if (replies?.[0].code === 250) {
        const use = (this.uses.get(client) ?? 1) + 1;
        this.uses.set(client, use);
        this.stats.reused++;
        return { client, reply: replies[1], ageMs: Math.round(performance.now() - client.opened), use };
      }
      this.stats.probeFailed++;
      this.discard(client);
    }
    return undefined;
  }

  private newest(key: string, fits: (client: SmtpClient) => boolean): Idle | undefined {
    const list = this.byKey.get(key) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (fits(list[i].client)) return list[i];
    return undefined;
  }

  /**
   * After a transaction: cached if clean and within its limits, else closed. `inTransaction`: the
   * next hop still holds an envelope (it refused DATA, or the client abandoned the transaction), so
   * RSET first.
   */
  async release(key: string, client: SmtpClient, inTransaction: boolean): Promise<void> {
    if (inTransaction && client.alive) {
      const r = await client.command('RSET', this.limits.probeMs).catch(() => undefined);
      if (r?.code !== 250) return this.discard(client);
    }
    this.put(key, client);
  }

  /** Closes `client`: QUIT when still in step, then a graceful close (late TLS tickets are kept). */
  discard(client: SmtpClient): void {
    const done = client.quit().catch(() => undefined);
    this.closing.add(done);
    void done.finally(() => this.closing.delete(done));
  }

  /** Closes every cached connection and waits for all connections let go (the listener is stopping). */
  async close(): Promise<void> {
    this.closed = true;
    for (const idle of [...this.order]) {
      this.remove(idle);
      this.discard(idle.client);
    }
    await Promise.allSettled([...this.closing]);
  }

  private put(key: string, client: SmtpClient): void {
    const { enabled, maxAgeMs, maxUses, maxIdlePerHop, maxIdle } = this.limits;
    if (!enabled || this.closed || !client.alive) return this.discard(client);
    const use = this.uses.get(client) ?? 1;
    this.uses.set(client, use);
    if (performance.now() - client.opened >= maxAgeMs || (maxUses !== undefined && use >= maxUses)) {
      this.stats.retired++;
      return this.discard(client);
    }
    const list = this.byKey.get(key) ?? [];
    this.byKey.set(key, list);
    const idle: Idle = { key, client, timer: setTimeout(() => this.expire(idle), this.idleFor(client)) };
    idle.timer.unref();
    list.push(idle);
    this.order.add(idle);
    this.stats.pooled++;
    if (list.length > maxIdlePerHop) this.evict(list[0]);
    if (this.order.size > maxIdle) this.evict(this.order.values().next().value!);
  }

  /** The idle limit, cut short where the age limit comes first. */
  private idleFor(client: SmtpClient): number {
    return Math.max(0, Math.min(this.limits.idleMs, this.limits.maxAgeMs - (performance.now() - client.opened)));
  }

  private expire(idle: Idle): void {
    if (!this.order.has(idle)) return;
    this.remove(idle);
    this.stats.expired++;
    this.discard(idle.client);
  }

  private evict(idle: Idle): void {
    this.remove(idle);
    this.stats.evicted++;
    this.discard(idle.client);
  }

  private remove(idle: Idle): void {
    clearTimeout(idle.timer);
    this.order.delete(idle);
    const list = this.byKey.get(idle.key);
    if (!list) return;
    const at = list.indexOf(idle);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.byKey.delete(idle.key);
  }
}

const routeDigests = new WeakMap<Route, string>();

/**
 * What a cached connection is filed under: the hop (`hopKey`: the route, and in mode mx the
 * recipient domain, so a connection checked against one domain's policy never carries another's),
 * everything of the route that a connection was set up with (host, port, TLS level, CA, versions,
 * ciphers, name matching, AUTH user: a digest of the route as built, whose credentials print
 * without their password) and our EHLO name. The transaction's needs (SMTPUTF8, 8BITMIME, SIZE)
 * are checked against the connection's EHLO reply at `take`.
 */
export function poolKey(hopKey: string, route: Route, ehloName: string): string {
  let digest = routeDigests.get(route);
  if (digest === undefined) {
    digest = createHash('sha256').update(JSON.stringify(route)).digest('hex').slice(0, 32);
    routeDigests.set(route, digest);
  }
  return `${hopKey}|${digest}|${ehloName}`;
}
