import type { SmtpClient } from '../upstream/smtp-client/client.js';
import type { SmtpReply } from '../upstream/smtp-client/reply-reader.js';
import { IdlePool, type IdlePoolLimits, type IdlePoolStats } from '../net/idle-pool.js';
import { textDigest } from '../util/digest.js';
import type { Route } from './routing.js';

/** The `connectionCache` settings of an SMTP listener, in milliseconds: the pool's, and the probe's timeout. */
export interface ConnectionCacheLimits extends IdlePoolLimits {
  /** The RSET probe's own reply timeout. */
  probeMs: number;
}

/** The transaction's first commands (MAIL, the first RCPT), sent behind the probe: MAIL's parameters depend on the connection. */
export interface FirstCommands {
  lines(client: SmtpClient): string[];
  timeoutMs: number;
}

/** A taken connection, the replies to the first commands, and what the audit line says of it. */
export interface Reused {
  client: SmtpClient;
  replies: SmtpReply[];
  ageMs: number;
  /** This transaction is the connection's `use`-th. */
  use: number;
}

/**
 * Upstream SMTP connections kept between transactions, shared by every client session of one
 * listener (Postfix's scache, with smtp_reuse.c's rules): a connection goes back only when clean
 * (open, in step, outside a transaction, never after a 421, a timeout or a protocol error: those
 * abort it), under a key that holds everything that makes two deliveries interchangeable on it
 * (`poolKey`), within the pool's limits. Before reuse it must answer RSET with 250; otherwise it
 * is dropped and the caller dials, so the client never sees it. Connections let go QUIT in the
 * background; `close()` waits for them.
 */
export class ConnectionCache {
  private readonly pool: IdlePool<SmtpClient>;
  private readonly closing = new Set<Promise<void>>();

  constructor(private readonly limits: ConnectionCacheLimits) {
    this.pool = new IdlePool(limits, {
      opened: (c) => c.opened,
      alive: (c) => c.alive,
      close: (c) => this.discard(c),
    });
  }

  get stats(): IdlePoolStats {
    return this.pool.stats;
  }

  get idle(): number {
    return this.pool.idle;
  }

  /**
   * The newest cached connection for `key` that `fits` the transaction and passes the RSET probe,
   * with the replies to `first` (the transaction's MAIL and first RCPT, sent in the probe's group
   * where the server pipelines, so reuse costs no extra round trip); or undefined, and the caller
   * dials. Connections that fail the probe are dropped on the way.
   */
  async take(key: string, fits: (client: SmtpClient) => boolean, first: FirstCommands): Promise<Reused | undefined> {
    // Taken afresh after each probe: other sessions take and put while one is awaited.
    for (let client = this.pool.take(key, fits); client; client = this.pool.take(key, fits)) {
      const lines = first.lines(client);
      const replies = client.alive
        ? await client.commands(['RSET', ...lines], [this.limits.probeMs, ...lines.map(() => first.timeoutMs)]).catch(() => undefined)
        : undefined;
      if (replies?.[0].code === 250) return { client, replies: replies.slice(1), ...this.pool.reused(client) };
      this.pool.probeFailed(client);
    }
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
    this.pool.put(key, client);
  }

  /** Closes `client`: QUIT when still in step, then a graceful close (late TLS tickets are kept). */
  discard(client: SmtpClient): void {
    const done = client.quit().catch(() => undefined);
    this.closing.add(done);
    void done.finally(() => this.closing.delete(done));
  }

  /** Closes every cached connection and waits for all connections let go (the listener is stopping). */
  async close(): Promise<void> {
    this.pool.close();
    await Promise.allSettled([...this.closing]);
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
    digest = textDigest(JSON.stringify(route)).slice(0, 32);
    routeDigests.set(route, digest);
  }
  return `${hopKey}|${digest}|${ehloName}`;
}
