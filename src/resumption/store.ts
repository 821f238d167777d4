import type { OpenFailure } from './seal.js';

/**
 * Where resumption state lives. The verbs name the semantics (after rustls' ClientSessionStore):
 * a TLS 1.3 ticket is *taken* (it leaves the store: single use), a TLS 1.2 session is *read*
 * (multi-use). Every verb is async so that a shared store (Redis) fits the same interface, and
 * each must be atomic per key: two concurrent takes never return the same ticket.
 */

export interface StoredTicket {
  /** The DER session buffer Node hands back to `tls.connect({ session })`. Secret. */
  session: Buffer;
  /** Short hash of the ticket, the only form of it that may be logged. */
  hash: string;
  /** Milliseconds since the epoch after which it must not be offered. */
  expiresAt: number;
}

export type NegotiatedVersion = 'TLSv1.2' | 'TLSv1.3';

export interface DestinationFacts {
  /** The last few negotiated versions, oldest first ("2" or "3" each): a version-mixed balancer shows both. */
  recentVersions: string;
  /** Set once the destination refused a ticket offered for the second time (adaptive reuse ends there). */
  refusesReuse: boolean;
}

export interface TakeResult {
  ticket?: StoredTicket;
  /** How many expired tickets were dropped on the way (tells "expired" from "empty"). */
  expired: number;
}

/**
 * Tickets, sessions and what was learnt of each destination, by destination id. Only the policy
 * (policy.ts) holds one: every ticket leaves and enters through it.
 */
export interface TicketStore {
  /** Removes and returns the newest unexpired TLS 1.3 ticket; remembers it as the last spent one. */
  takeTls13Ticket(key: string, now: number): Promise<TakeResult>;
  /** Adds a ticket at the front, trims to `cap` (oldest go) and drops expired ones. Returns the count kept. */
  insertTls13Ticket(key: string, ticket: StoredTicket, cap: number, now: number): Promise<number>;
  /** The newest ticket already spent at this destination (for adaptive reuse), if unexpired. */
  lastSpentTls13Ticket(key: string, now: number): Promise<StoredTicket | undefined>;
  countTls13Tickets(key: string, now: number): Promise<number>;

  tls12Session(key: string, now: number): Promise<StoredTicket | undefined>;
  setTls12Session(key: string, session: StoredTicket): Promise<void>;
  removeTls12Session(key: string): Promise<void>;

  facts(key: string): Promise<DestinationFacts>;
  /** Appends a negotiated version and/or marks reuse refused. */
  learn(key: string, version: NegotiatedVersion | undefined, refusedReuse: boolean): Promise<void>;

  /** Drops the slot: its tickets, session and facts (a reload left no listener that would use it). */
  forget(key: string): Promise<void>;
}

/**
 * Small values shared beside the tickets (MTA-STS policies); a fleet shares them. Bounded like
 * the destinations: at most `maxDestinations` names, the least recently used (read or written)
 * goes first, so a policy in use is never pushed out; an expired value reads as absent and frees its place.
 */
export interface SharedValues {
  value(name: string): Promise<string | undefined>;
  /** Writes (or overwrites) `name`, gone after `ttlMs`; the write makes it the most recent. */
  setValue(name: string, value: string, ttlMs: number): Promise<void>;
}

/** What metrics, the readiness probe and shutdown need of the store. */
export interface StoreHealth {
  /** Counts for metrics: destinations with a slot, tickets held. Not cheap on a shared store. */
  size(): Promise<{ destinations: number; tickets: number }>;
  /**
   * Resolves when the store can answer now; rejects, saying why, when it cannot (Redis away). The
   * readiness probe: cheap, and not degraded like the verbs above, which answer "nothing" instead.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Operations that failed and answered "nothing" instead (Redis away); absent where none can fail. */
  readonly errors?: number;
  /** Entries read back but not used, by why they did not open (sealing); absent where nothing is sealed. */
  readonly dropped?: Readonly<Record<OpenFailure, number>>;
}

/** What each backend (memory, Redis) implements; callers see one of the three parts only. */
export type StoreBackend = TicketStore & SharedValues & StoreHealth;

/** How many negotiated versions a slot remembers. */
export const RECENT_VERSIONS = 8;

export function appendVersion(recent: string, version: NegotiatedVersion): string {
  return (recent + (version === 'TLSv1.3' ? '3' : '2')).slice(-RECENT_VERSIONS);
}
