import type { AddressInfo } from 'node:net';
import type { AuditEvent, FullHandshakeCause } from '../audit/events.js';
import type { Config } from '../config/schema.js';
import type { ReloadSummary } from '../service/reload-plan.js';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Offer, Received } from '../resumption/policy.js';
import type { NegotiatedVersion } from '../resumption/store.js';

/** An offer as it crosses the channel: its place in the primary's version order by number. */
export type WireOffer = Omit<Offer, 'place' | 'session'> & { session?: Uint8Array; placeId?: number };

/** What the primary serves its workers: the one resumption policy and store, the audit log, the config. */
export type PrimaryMethods = {
  /** The config in force (a worker starting or restarted gets the one the others run). */
  config(): Config;
  /** The worker's listeners are bound: where, and their load. */
  ready(stats: WorkerStats): void;
  offer(key: CacheKey): WireOffer;
  received(key: CacheKey, der: Uint8Array): Received;
  outcome(key: CacheKey, offer: WireOffer, result: { resumed: boolean; version?: string }): FullHandshakeCause | undefined;
  /** The worker has connected for this offer: the next offer to the destination may go. */
  handedOut(placeId: number): void;
  abandoned(placeId: number, reachedServer: boolean): void;
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
