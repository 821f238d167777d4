import NodeCache from 'node-cache';
import {
  appendVersion,
  type DestinationFacts,
  type NegotiatedVersion,
  type StoredTicket,
  type TakeResult,
  type TicketStore,
} from './store.js';

/** Per destination: up to `cap` TLS 1.3 tickets, newest first; zero or one TLS 1.2 session. */
interface Slot {
  tickets: StoredTicket[];
  spent?: StoredTicket;
  tls12?: StoredTicket;
  facts: DestinationFacts;
}

const SEVEN_DAYS_S = 7 * 24 * 3600;

/**
 * The embedded store: one process, no dependencies. node-cache expires idle slots; the
 * destination bound is least-recently-used, kept in a Map's insertion order.
 */
export class MemoryTicketStore implements TicketStore {
  private readonly cache = new NodeCache({ useClones: false, stdTTL: SEVEN_DAYS_S, checkperiod: 600 });
  private readonly recency = new Map<string, true>();
  /** Shared values (MTA-STS policies), bounded like the slots. */
  private readonly values = new NodeCache({ useClones: false, checkperiod: 600, maxKeys: -1 });

  constructor(private readonly maxDestinations: number) {
    this.cache.on('del', (key: string) => this.recency.delete(key));
    this.cache.on('expired', (key: string) => this.recency.delete(key));
  }

  private slot(key: string): Slot {
    let slot = this.cache.get<Slot>(key);
    if (!slot) {
      slot = { tickets: [], facts: { recentVersions: '', refusesReuse: false } };
      this.cache.set(key, slot);
      while (this.recency.size >= this.maxDestinations) {
        const oldest = this.recency.keys().next().value as string;
        this.cache.del(oldest); // the 'del' handler drops it from recency
      }
    } else {
      this.cache.ttl(key, SEVEN_DAYS_S);
    }
    this.recency.delete(key);
    this.recency.set(key, true);
    return slot;
  }

  private peek(key: string): Slot | undefined {
    return this.cache.get<Slot>(key);
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
    slot.tickets = [ticket, ...slot.tickets.filter((t) => t.expiresAt > now && t.hash !== ticket.hash)].slice(0, cap);
    return slot.tickets.length;
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
    return this.values.get<string>(name);
  }

  async setValue(name: string, value: string, ttlMs: number): Promise<void> {
    if (!this.values.has(name) && this.values.keys().length >= this.maxDestinations) return;
    this.values.set(name, value, Math.max(1, Math.ceil(ttlMs / 1000)));
  }

  async forget(key: string): Promise<void> {
    this.cache.del(key);
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
    let tickets = 0;
    for (const key of this.cache.keys()) tickets += this.peek(key)?.tickets.length ?? 0;
    return { destinations: this.cache.keys().length, tickets };
  }

  /** Always answers: the store is this process. */
  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.cache.close();
    this.values.close();
  }
}
