/** The limits of a pool of idle upstream connections, in milliseconds (a listener's `connectionCache`). */
export interface IdlePoolLimits {
  enabled: boolean;
  /** How long a connection may wait for its next use. */
  idleMs: number;
  /** How long after it was opened a connection may still be used. */
  maxAgeMs: number;
  /** Uses of one connection; undefined: no limit. */
  maxUses?: number;
  maxIdlePerHop: number;
  maxIdle: number;
}

/** A listener's `connectionCache` section (seconds) as pool limits (milliseconds). */
export function poolLimits(c: {
  enabled: boolean;
  idleSeconds: number;
  maxAgeSeconds: number;
  maxUses?: number | undefined;
  maxIdlePerHop: number;
  maxIdle: number;
}): IdlePoolLimits {
  return {
    enabled: c.enabled,
    idleMs: c.idleSeconds * 1000,
    maxAgeMs: c.maxAgeSeconds * 1000,
    ...(c.maxUses !== undefined ? { maxUses: c.maxUses } : {}),
    maxIdlePerHop: c.maxIdlePerHop,
    maxIdle: c.maxIdle,
  };
}

/** What happened to pooled connections, for metrics (a type, not an interface: it is read as a record). */
export type IdlePoolStats = {
  /** Put back after a use. */
  pooled: number;
  /** Taken for another use (past any probe the owner makes). */
  reused: number;
  /** Failed the owner's check before reuse (closed by the server, a bad reply): a new connection was made. */
  probeFailed: number;
  /** Waited past the idle limit. */
  expired: number;
  /** Past the age or use limit after a use: closed, not pooled. */
  retired: number;
  /** Pushed out by the per-hop or total cap. */
  evicted: number;
};

export function emptyPoolStats(): IdlePoolStats {
  return { pooled: 0, reused: 0, probeFailed: 0, expired: 0, retired: 0, evicted: 0 };
}

/** Past its age or use limit: closed after this use rather than kept (`retired`). */
export function pastLimits(limits: IdlePoolLimits, ageMs: number, use: number): boolean {
  return ageMs >= limits.maxAgeMs || (limits.maxUses !== undefined && use >= limits.maxUses);
}

/** How the pool sees the connections it holds. */
export interface PoolMember<T> {
  /** When it was opened (performance.now()): the age limit runs from here. */
  opened(conn: T): number;
  /** Still open and usable. */
  alive(conn: T): boolean;
  /** Lets it go (gracefully: QUIT, a TLS close). */
  close(conn: T): void;
}

interface Idle<T> {
  key: string;
  conn: T;
  timer: NodeJS.Timeout;
}

/**
 * Idle upstream connections kept between uses, shared by every session of a listener, per key
 * (the key holds everything that makes two uses interchangeable on one connection: its owner
 * builds it). Within idle, age, use and count limits; past them, or when disabled, a connection
 * is closed instead of kept. The owner decides what "clean" means and probes before reuse.
 */
export class IdlePool<T extends object> {
  readonly stats = emptyPoolStats();
  /** Newest last, per key; `order` has every idle connection, oldest first, for the total cap. */
  private readonly byKey = new Map<string, Array<Idle<T>>>();
  private readonly order = new Set<Idle<T>>();
  private readonly uses = new WeakMap<T, number>();
  private closed = false;

  constructor(
    private readonly limits: IdlePoolLimits,
    private readonly member: PoolMember<T>,
  ) {}

  get idle(): number {
    return this.order.size;
  }

  /** The newest idle connection for `key` that `fits`, out of the pool (a probe may still fail it: `reused` or `probeFailed`). */
  take(key: string, fits: (conn: T) => boolean = () => true): T | undefined {
    const list = this.byKey.get(key) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      if (!fits(list[i].conn)) continue;
      const idle = list[i];
      this.remove(idle);
      return idle.conn;
    }
    return undefined;
  }

  /** A taken connection goes to another use: its age, and which of its uses this is (2 = its first reuse). */
  reused(conn: T): { ageMs: number; use: number } {
    const use = (this.uses.get(conn) ?? 1) + 1;
    this.uses.set(conn, use);
    this.stats.reused++;
    return { ageMs: Math.round(performance.now() - this.member.opened(conn)), use };
  }

  /** A taken connection failed the owner's probe: closed. */
  probeFailed(conn: T): void {
    this.stats.probeFailed++;
    this.member.close(conn);
  }

  /** After a clean use: kept for the next under `key` if within the limits, else closed. */
  put(key: string, conn: T): void {
    const { enabled, maxAgeMs, maxIdlePerHop, maxIdle } = this.limits;
    if (!enabled || this.closed || !this.member.alive(conn)) return this.member.close(conn);
    const use = this.uses.get(conn) ?? 1;
    this.uses.set(conn, use);
    const age = performance.now() - this.member.opened(conn);
    if (pastLimits(this.limits, age, use)) {
      this.stats.retired++;
      return this.member.close(conn);
    }
    const list = this.byKey.get(key) ?? [];
    this.byKey.set(key, list);
    // The idle limit, cut short where the age limit comes first.
    const idle: Idle<T> = { key, conn, timer: setTimeout(() => this.drop(idle, 'expired'), Math.min(this.limits.idleMs, maxAgeMs - age)) };
    idle.timer.unref();
    list.push(idle);
    this.order.add(idle);
    this.stats.pooled++;
    if (list.length > maxIdlePerHop) this.drop(list[0], 'evicted');
    if (this.order.size > maxIdle) this.drop(this.order.values().next().value!, 'evicted');
  }

  /** Closes every idle connection; later `put`s close theirs (the listener is stopping). */
  close(): void {
    this.closed = true;
    for (const idle of [...this.order]) {
      this.remove(idle);
      this.member.close(idle.conn);
    }
  }

  private drop(idle: Idle<T>, why: 'expired' | 'evicted'): void {
    if (!this.order.has(idle)) return;
    this.remove(idle);
    this.stats[why]++;
    this.member.close(idle.conn);
  }

  private remove(idle: Idle<T>): void {
    clearTimeout(idle.timer);
    this.order.delete(idle);
    const list = this.byKey.get(idle.key);
    if (!list) return;
    const at = list.indexOf(idle);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.byKey.delete(idle.key);
  }
}
