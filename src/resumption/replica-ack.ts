import type { Redis } from 'ioredis';

/** `cache.store.replicaAck`: how many replicas must hold a take, and how long to wait for them. */
export interface ReplicaAckOptions {
  replicas: number;
  timeoutMs: number;
}

/** After a take fell short, how long takes are skipped: the tickets stay in Redis for when a replica is back. */
const PAUSE_MS = 1000;
/** At most one line on stderr per this long, with the count since the last one. */
const SAY_EVERY_MS = 60_000;

/**
 * Single use across a failover. Replication is asynchronous: a take the primary ran but no replica
 * received is undone when that replica is promoted, and the ticket is offered again (a server
 * with anti-replay refuses it; the linkability single use prevents is back). `WAIT n timeout`
 * after the take, on the same connection (WAIT counts that client's own writes), returns how many
 * replicas hold it; only then is the ticket offered. Short of that it is not offered (lost, never
 * offered twice), counted, said on stderr at most once a minute, and takes pause for PAUSE_MS so
 * that a primary left without replicas costs one WAIT a second, not one per connection.
 */
export class ReplicaAck {
  /** Takes whose ticket was not offered for want of an acknowledgement (counted in the store's errors too). */
  shortfalls = 0;
  private pausedUntil = 0;
  private unsaid = 0;
  private saidAt = -Infinity;

  constructor(
    private readonly redis: Redis,
    private readonly options: ReplicaAckOptions,
    private readonly report: (message: string) => void,
  ) {}

  /** False while takes are paused after a shortfall (the take is not even tried: nothing leaves the list). */
  get open(): boolean {
    return Date.now() >= this.pausedUntil;
  }

  /**
   * Resolves true once enough replicas hold the take just made; false (and paused) when they do
   * not within the timeout. Rejects like any command when the connection is gone (the caller's guard).
   */
  async acknowledged(): Promise<boolean> {
    const { replicas, timeoutMs } = this.options;
    const got = await this.redis.wait(replicas, timeoutMs);
    if (got >= replicas) return true;
    this.shortfalls++;
    this.pausedUntil = Date.now() + PAUSE_MS;
    this.unsaid++;
    if (Date.now() - this.saidAt >= SAY_EVERY_MS) {
      this.report(
        `redis store: ${this.unsaid} take(s) reached ${got} of ${replicas} replica(s) within ${timeoutMs} ms: their tickets were not ` +
          'offered (full handshakes instead; ticketbooth_store_errors_total), takes pause 1 s after each; said at most once a minute',
      );
      this.saidAt = Date.now();
      this.unsaid = 0;
    }
    return false;
  }
}
