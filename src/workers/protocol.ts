import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../audit/events.js';
import type { Config } from '../config/schema.js';
import type { ReloadSummary } from '../service/reload-plan.js';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Offer, Received } from '../resumption/policy.js';
import type { NegotiatedVersion } from '../resumption/store.js';

/** An offer as it crosses the channel: its place in the primary's version order by number. */
export type WireOffer = Omit<Offer, 'place' | 'session'> & { session?: Uint8Array; placeId?: number };

/**
 * A reply with the destination's TLS 1.3 tickets left after the call: a connection's audit line
 * reads that count, and asking for it apart was one more round trip per connection.
 */
export type Counted<T> = T & { ticketsLeft: number };

/**
 * The shape of the messages below. A rolling restart starts workers from the code on disk while the
 * primary runs the code it started with: a worker whose number differs is refused at its first
 * call, and the old worker serves on (a change here needs a full restart).
 */
export const PROTOCOL = 2;

/** What the primary serves its workers: the one resumption policy and store, the audit log, the config. */
export type PrimaryMethods = {
  /** The config in force (a worker starting or restarted gets the one the others run). */
  config(protocol: number): Config;
  /** The worker's listeners are bound: where, and their load. */
  ready(stats: WorkerStats): void;
  /** An offer, and the destination's TLS 1.3 tickets left once it is taken. */
  offer(key: CacheKey): Counted<{ offer: WireOffer }>;
  /** What became of the session, and the tickets left once it is in. */
  received(key: CacheKey, der: Uint8Array): Counted<{ received: Received }>;
  /** Sent as a note: the worker reckons the cause itself (fullHandshakeCause, what the primary returns too). */
  outcome(key: CacheKey, offer: WireOffer, result: { resumed: boolean; version?: string }): void;
  /** The worker has connected for this offer: the next offer to the destination may go. */
  handedOut(placeId: number): void;
  abandoned(placeId: number, reachedServer: boolean): void;
  /** Asked only for a destination whose count no recent offer or received brought. */
  ticketsLeft(key: CacheKey): number;
  negotiatedElsewhere(key: CacheKey, version: NegotiatedVersion): void;
  forget(id: string): void;
  value(name: string): string | undefined;
  setValue(name: string, value: string, ttlMs: number): void;
  ping(): void;
  size(): { destinations: number; tickets: number };
  /** Audit events, in the order the worker recorded them (their time already set). */
  events(lines: AuditEvent[]): void;
};

/** One listener's load in one worker, summed by the primary for metrics. */
export interface ListenerStats {
  name: string;
  address: AddressInfo;
  activeConnections: number;
  pool?: { stats: Record<string, number>; idle: number };
}

/** A worker's figures, summed by the primary: its listeners, and audit events it had to drop. */
export interface WorkerStats {
  listeners: ListenerStats[];
  /** Events dropped because the primary did not take them fast enough (bounded memory). */
  auditDropped: number;
}

/** What a worker serves its primary. */
export type WorkerMethods = {
  /** Apply this config (already checked by the primary) as a reload does. */
  reload(config: Config): ReloadSummary;
  /** Drain and exit: open sessions get `timeoutMs`. */
  stop(timeoutMs: number): void;
  stats(): WorkerStats;
};

/** A Buffer sent across arrives as a Uint8Array (structured clone): the same bytes as a Buffer again, not copied. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
