import { BoundedMap } from '../util/bounded-map.js';
import { SEVEN_DAYS_S } from '../util/time.js';
import {
  appendVersion,
  type DestinationFacts,
  type NegotiatedVersion,
  type StoreBackend,
  type StoredTicket,
  type TakeResult,
} from './store.js';

/** Per destination: up to `cap` TLS 1.3 tickets, newest first; zero or one TLS 1.2 session. */
interface Slot {
  tickets: StoredTicket[];
  spent?: StoredTicket;
  tls12?: StoredTicket;
  facts: DestinationFacts;
  /** Wall clock of the last write or use: a slot idle for 7 days is gone (no ticket outlives that). */
  touchedAt: number;
}

const IDLE_MS = SEVEN_DAYS_S * 1000;

/**
 * The embedded store: one process, no dependencies. Destinations and shared values are two
 * BoundedMaps of `maxDestinations` entries each, least recently used first (a value's read is a
 * use), as the Redis store bounds them.
 */
export class MemoryTicketStore implements StoreBackend {
  private readonly slots: BoundedMap<string, Slot>;
  /** Shared values (MTA-STS policies) with their expiry (wall clock, ms). */
  private readonly values: BoundedMap<string, { value: string; expiresAt: number }>;

  constructor(maxDestinations: number) {
    this.slots = new BoundedMap(maxDestinations);
    this.values = new BoundedMap(maxDestinations);
  }

  /** The slot made the most recent (created if absent), its idle expiry restarted. */
  private slot(key: string): Slot {
    let slot = this.peek(key);
    if (!slot) slot = { tickets: [], facts: { recentVersions: '', refusesReuse: false }, touchedAt: 0 };
    slot.touchedAt = Date.now();
    this.slots.set(key, slot);
    return slot;
  }

  /** The slot, its place left alone; one idle past 7 days is dropped here. */
  private peek(key: string): Slot | undefined {
    const slot = this.slots.peek(key);
    if (slot && slot.touchedAt + IDLE_MS <= Date.now()) {
      this.slots.delete(key);
      return undefined;
    }
    return slot;
  }

  async takeTls13Ticket(key: string, now: number): Promise<TakeResult> {
    const slot = this.peek(key);
    if (!slot) return { expired: 0 };
    this.slot(key); // touch
    let expired = 0;
    while (slot.tickets.length > 0) {
      const ticket = slot.tickets.shift() as StoredTicket;
      if (ticket.expiresAt > now) {
        slot.spent = ticket;
        return { ticket, expired };
      }
      expired++;
    }
    return { expired };
  }

  async insertTls13Ticket(key: string, ticket: StoredTicket, cap: number, now: number): Promise<number> {
    const slot = this.slot(key);
    // One array, not a filter, a spread and a slice: this runs for every ticket a server hands out.
    const kept: StoredTicket[] = cap > 0 ? [ticket] : [];
    for (const t of slot.tickets) {
      if (kept.length >= cap) break;
      if (t.expiresAt > now && t.hash !== ticket.hash) kept.push(t);
    }
    slot.tickets = kept;
    return kept.length;
  }

  async lastSpentTls13Ticket(key: string, now: number): Promise<StoredTicket | undefined> {
    const spent = this.peek(key)?.spent;
    return spent && spent.expiresAt > now ? spent : undefined;
  }

  async countTls13Tickets(key: string, now: number): Promise<number> {
    return this.peek(key)?.tickets.filter((t) => t.expiresAt > now).length ?? 0;
  }

  async tls12Session(key: string, now: number): Promise<StoredTicket | undefined> {
    const slot = this.peek(key);
    if (!slot?.tls12) return undefined;
    if (slot.tls12.expiresAt <= now) {
      slot.tls12 = undefined; // an expired TLS 1.2 ticket would still be sent: drop it here
      return undefined;
    }
    this.slot(key);
    return slot.tls12;
  }

  async setTls12Session(key: string, session: StoredTicket): Promise<void> {
    this.slot(key).tls12 = session;
  }

  async removeTls12Session(key: string): Promise<void> {
    const slot = this.peek(key);
    if (slot) slot.tls12 = undefined;
  }

  async value(name: string): Promise<string | undefined> {
    const entry = this.values.get(name); // a read is a use: a policy in use is never the one to go
    if (!entry) return undefined;
    if (entry.expiresAt > Date.now()) return entry.value;
    this.values.delete(name); // expired: frees its place
    return undefined;
  }

  async setValue(name: string, value: string, ttlMs: number): Promise<void> {
    this.values.set(name, { value, expiresAt: Date.now() + Math.max(1, Math.round(ttlMs)) });
  }

  async forget(key: string): Promise<void> {
    this.slots.delete(key);
  }

  async facts(key: string): Promise<DestinationFacts> {
    const f = this.peek(key)?.facts;
    return f ? { ...f } : { recentVersions: '', refusesReuse: false };
  }

  async learn(key: string, version: NegotiatedVersion | undefined, refusedReuse: boolean): Promise<void> {
    const slot = this.slot(key);
    if (version) slot.facts.recentVersions = appendVersion(slot.facts.recentVersions, version);
    if (refusedReuse) slot.facts.refusesReuse = true;
  }

  async size(): Promise<{ destinations: number; tickets: number }> {
    let [destinations, tickets] = [0, 0];
    for (const key of [...this.slots.keys()]) {
      const slot = this.peek(key);
      if (!slot) continue;
      destinations++;
      tickets += slot.tickets.length;
    }
    return { destinations, tickets };
  }

  /** Always answers: the store is this process. */
  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.slots.clear();
    this.values.clear();
  }
}
