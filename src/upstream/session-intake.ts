import type { TLSSocket } from 'node:tls';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Received, Resumption } from '../resumption/policy.js';

/** Where every connection's chain of stores starts. */
const NOTHING_YET: Promise<unknown> = Promise.resolve();

/**
 * Stores every session a server hands out on one connection. They may arrive before or after
 * secureConnect (TLS 1.2: right after; 1.3: later), so their storage is chained: `stored()`
 * settles once all that came so far are in, so the audit line counts them.
 */
export class SessionIntake {
  private storing = NOTHING_YET;
  private seen = false;
  /** Made by the first `arrived()`: a plain tunnel never asks (only STARTTLS and SMTP dials wait for a ticket). */
  private waiters: Set<() => void> | undefined;

  constructor(
    private readonly socket: TLSSocket,
    cache: Resumption,
    key: CacheKey,
    onStored: (got: Received) => void,
  ) {
    socket.on('session', (der: Buffer) => {
      this.seen = true;
      // Wake waiters on a later turn: this event fires inside TLSWrap's read, where a write made by
      // a waiter resumed now (a microtask) reaches OpenSSL but is never flushed to the socket.
      for (const w of this.waiters ?? []) setImmediate(w);
      this.storing = this.storing
        .then(async () => onStored(await cache.received(key, der)))
        // A store that fails costs this ticket, never the next ones, the connection or the process
        // (an unhandled rejection here would end it).
        .catch(() => undefined);
    });
  }

  /** Settles once the sessions received so far are stored (or failed to be). */
  stored(): Promise<unknown> {
    return this.storing;
  }

  /** Resolves true once the server has sent a session or ticket, false after `maxMs` without one (or at close). */
  arrived(maxMs: number): Promise<boolean> {
    if (this.seen) return new Promise<boolean>((resolve) => setImmediate(resolve, true));
    return new Promise<boolean>((resolve) => {
      const waiters = (this.waiters ??= new Set());
      const done = (seen: boolean): void => {
        clearTimeout(timer);
        waiters.delete(arrived);
        this.socket.off('close', closed);
        resolve(seen);
      };
      const arrived = (): void => done(true);
      const closed = (): void => done(this.seen);
      const timer = setTimeout(() => done(false), maxMs);
      waiters.add(arrived);
      this.socket.once('close', closed);
    });
  }
}
