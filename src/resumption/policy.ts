import type { FullHandshakeCause, OfferKind } from '../audit/events.js';
import type { CacheKey } from './cache-key.js';
import { SEVEN_DAYS_S } from '../util/time.js';
import { parseSession, SessionParseError, type SessionInfo } from './session-der.js';
import type { UnreadableReason } from './session-error.js';
import type { DestinationFacts, NegotiatedVersion, StoredTicket, TicketStore } from './store.js';
import { ticketHash } from './ticket-hash.js';
import { VersionPredictor, type Place } from './version-predictor.js';

/**
 * The resumption policy, in one place:
 * - per destination key, TLS 1.3 tickets are single use (RFC 8446 C.4): one is taken out of the
 *   store before it is offered, and every ticket a connection receives goes in at the front;
 * - the TLS 1.2 session is multi-use, replaced when the server issues a new one;
 * - on a version-mixed destination (a balancer over TLS 1.2 and TLS 1.3 nodes), offer the kind of
 *   the version expected next, read from the versions in *offer* order (version-predictor.ts);
 * - `adaptive` reuse: with no fresh ticket, offer the newest spent one again, until the first refusal.
 */

export type ReusePolicy = 'never' | 'adaptive';

export interface PolicyOptions {
  ticketsPerDestination: number;
  /** Upper bound on any entry's age, seconds (also capped at 7 days, RFC 8446 4.6.1). */
  maxAgeSeconds: number;
  reuse: ReusePolicy;
  /** Bounds the version-mixed destinations tracked in memory (at most 4096 either way). */
  maxDestinations?: number;
}

export interface Offer {
  kind: OfferKind;
  /** The DER session for `tls.connect`; absent when kind is none. */
  session?: Buffer;
  hash?: string;
  /** True when this ticket was offered before (adaptive reuse). */
  reoffered: boolean;
  /** Why nothing was offered: the slot was empty, or held only expired entries. */
  emptyBecause?: 'empty' | 'expired';
  /** This connection's place in a version-mixed destination's offer order. */
  place?: Place;
}

/** What became of a session the server handed out. */
export type Received =
  | { kind: 'stored'; info: SessionInfo; hash: string }
  /** Resumption cannot work with what this runtime hands out: counted, audited, said on stderr. */
  | { kind: 'unreadable'; reason: UnreadableReason }
  /** Read, and rightly not kept (lifetime 0, expired on arrival, no identity, another version). */
  | { kind: 'not-resumable' };

const NOT_RESUMABLE: Received = { kind: 'not-resumable' };

/**
 * What listeners and the tlsmgr server need of the policy: the ResumptionCache itself, or in a
 * worker process (`workers`), its line to the one the primary holds (workers/cache-client.ts).
 */
export type Resumption = Pick<
  ResumptionCache,
  'options' | 'offer' | 'received' | 'outcome' | 'abandoned' | 'ticketsLeft' | 'negotiatedElsewhere' | 'forget' | 'withOptions'
>;

/** The only way to the tickets: nothing else holds the TicketStore. */
export class ResumptionCache {
  private readonly versions: VersionPredictor;

  constructor(
    private readonly store: TicketStore,
    readonly options: PolicyOptions,
    private readonly clock: () => number = Date.now,
  ) {
    this.versions = new VersionPredictor(options.maxDestinations);
  }

  /**
   * Chooses what to offer on the next connection to `key`; a TLS 1.3 ticket returned here is
   * already spent. Connect right after it resolves, and report back with `outcome` or `abandoned`.
   * `handOutLater`: the connect happens elsewhere (a worker); the next offer to a version-mixed
   * destination waits for the place's `handOut()`, so connections still leave in place order.
   */
  async offer(key: CacheKey, opts: { handOutLater?: boolean } = {}): Promise<Offer> {
    const now = this.clock();
    const facts = await this.store.facts(key.id);
    // From the store's answer to the place taken, nothing awaits: places follow call order.
    const { expect, place } = this.versions.reserve(key.id, facts.recentVersions, opts.handOutLater);
    let failed = false;
    try {
      const chosen = await this.choose(key, now, facts, expect);
      return place ? { ...chosen, place } : chosen;
    } catch (err) {
      failed = true;
      place?.release(false);
      throw err;
    } finally {
      // A balancer assigns nodes in connection order: offers to one mixed destination leave in
      // the order of their places (store calls may finish out of order), and the caller connects next.
      if (place) await place.inTurn();
      // No connection follows a failed offer: the next one must not wait for its hand-out.
      if (failed) place?.handOut();
    }
  }

  private async choose(key: CacheKey, now: number, facts: DestinationFacts, expect: NegotiatedVersion): Promise<Offer> {
    const tls12 = await this.store.tls12Session(key.id, now);
    if (tls12 && expect === 'TLSv1.2') {
      return { kind: 'tls12-session', session: tls12.session, hash: tls12.hash, reoffered: false };
    }
    const taken = await this.store.takeTls13Ticket(key.id, now);
    if (taken.ticket) {
      return { kind: 'tls13-ticket', session: taken.ticket.session, hash: taken.ticket.hash, reoffered: false };
    }
    if (tls12) return { kind: 'tls12-session', session: tls12.session, hash: tls12.hash, reoffered: false };
    if (this.options.reuse === 'adaptive' && !facts.refusesReuse) {
      const spent = await this.store.lastSpentTls13Ticket(key.id, now);
      if (spent) return { kind: 'tls13-ticket', session: spent.session, hash: spent.hash, reoffered: true };
    }
    return { kind: 'none', reoffered: false, emptyBecause: taken.expired > 0 ? 'expired' : 'empty' };
  }

  /**
   * Stores a session Node handed out in a `'session'` event, whole (Node's envelope included: it
   * is what `tls.connect` takes back). Says what became of it, for the audit line.
   */
  async received(key: CacheKey, buf: Buffer): Promise<Received> {
    let info: SessionInfo;
    try {
      info = parseSession(buf);
    } catch (err) {
      // Never worth a failed connection, never silent: the caller counts and reports it.
      if (err instanceof SessionParseError) return { kind: 'unreadable', reason: err.reason };
      throw err;
    }
    const identity = info.ticket && info.ticket.length > 0 ? info.ticket : info.sessionId;
    if (identity.length === 0) return NOT_RESUMABLE;
    // A TLS 1.3 ticket with lifetime 0 must be discarded at once (RFC 8446 4.6.1); OpenSSL leaves
    // zero fields out of the DER, so for TLS 1.3 "no hint" is that zero.
    if (info.version === 'TLSv1.3' && !(info.lifetimeHint && info.lifetimeHint > 0)) return NOT_RESUMABLE;
    const stored: StoredTicket = { session: buf, hash: ticketHash(identity), expiresAt: this.expiry(info) };
    if (stored.expiresAt <= this.clock()) return NOT_RESUMABLE;
    if (info.version === 'TLSv1.3') {
      await this.store.insertTls13Ticket(key.id, stored, this.options.ticketsPerDestination, this.clock());
    } else if (info.version === 'TLSv1.2') {
      await this.store.setTls12Session(key.id, stored);
    } else {
      return NOT_RESUMABLE;
    }
    return { kind: 'stored', info, hash: stored.hash };
  }

  /** Learns from a finished handshake; returns why it was a full handshake, if it was. */
  async outcome(key: CacheKey, offer: Offer, result: { resumed: boolean; version?: string }): Promise<FullHandshakeCause | undefined> {
    const version = negotiated(result.version);
    offer.place?.settle(version);
    const cause = fullHandshakeCause(offer, result);
    const refusedReuse = cause === 'refused' && offer.reoffered;
    // A refused TLS 1.2 session would be refused again: forget it (a new one arrives with this handshake).
    if (cause === 'refused' && offer.kind === 'tls12-session') await this.store.removeTls12Session(key.id);
    await this.store.learn(key.id, version, refusedReuse);
    return cause;
  }

  /** The handshake never finished; `reachedServer`: TCP was up (a balancer counted the connection). */
  abandoned(offer: Offer, reachedServer: boolean): void {
    offer.place?.release(reachedServer);
  }

  async ticketsLeft(key: CacheKey): Promise<number> {
    return this.store.countTls13Tickets(key.id, this.clock());
  }

  /** A version negotiated elsewhere (Postfix's own handshake, through tlsmgr): the history a mixed destination is told by. */
  async negotiatedElsewhere(key: CacheKey, version: NegotiatedVersion): Promise<void> {
    await this.store.learn(key.id, version, false);
  }

  /** Drops a destination's slot: tickets, session and facts (by id: a reload knows only ids). */
  async forget(id: string): Promise<void> {
    await this.store.forget(id);
  }

  /** The same store under other settings (a reload): version history in memory starts afresh. */
  withOptions(options: PolicyOptions): Resumption {
    return new ResumptionCache(this.store, options, this.clock);
  }

  private expiry(info: SessionInfo): number {
    const issued = info.issuedAt > 0 ? info.issuedAt : Math.floor(this.clock() / 1000);
    let lifetime = Math.min(this.options.maxAgeSeconds, SEVEN_DAYS_S);
    if (info.lifetimeHint !== undefined && info.lifetimeHint > 0) lifetime = Math.min(lifetime, info.lifetimeHint);
    return (issued + lifetime) * 1000;
  }
}

/** Why a handshake was full, if it was: from what was offered and what was negotiated. */
export function fullHandshakeCause(offer: Offer, result: { resumed: boolean; version?: string }): FullHandshakeCause | undefined {
  if (result.resumed) return undefined;
  if (offer.kind === 'none') return offer.emptyBecause === 'expired' ? 'expired' : 'nothing-offered';
  const version = negotiated(result.version);
  const offeredVersion = offer.kind === 'tls13-ticket' ? 'TLSv1.3' : 'TLSv1.2';
  return version && offeredVersion !== version ? 'version-mismatch' : 'refused';
}

function negotiated(version: string | undefined): NegotiatedVersion | undefined {
  return version === 'TLSv1.3' || version === 'TLSv1.2' ? version : undefined;
}
