import type { Store } from '../resumption/create-store.js';
import type { CacheKey } from '../resumption/cache-key.js';
import { fullHandshakeCause, type Offer, type PolicyOptions, type Received, type Resumption } from '../resumption/policy.js';
import type { NegotiatedVersion } from '../resumption/store.js';
import type { Place } from '../resumption/version-predictor.js';
import { BoundedMap } from '../util/bounded-map.js';
import type { Channel } from './channel.js';
import { asBuffer, type PrimaryMethods, type WireOffer, type WorkerMethods } from './protocol.js';

type ToPrimary = Channel<WorkerMethods, PrimaryMethods>;

/** Destinations whose ticket count a worker keeps: those with connections in flight are the ones read. */
const COUNTS_KEPT = 1024;

/** A place the primary holds; the worker only names it back in `outcome` and `abandoned`. */
class RemotePlace implements Place {
  constructor(readonly id: number) {}
  inTurn(): Promise<void> {
    return Promise.resolve(); // the primary waited for the turn before it answered
  }
  handOut(): void {}
  settle(): void {}
  release(): void {}
}

/**
 * A worker's resumption policy: every verb is the primary's, so all workers take from one list of
 * single-use tickets per destination, one version order and one record of refused reuse.
 */
export class RemoteResumption implements Resumption {
  /**
   * Each destination's TLS 1.3 tickets left, as the primary's latest reply to an offer or a
   * received session said: a count for audit lines, never a ticket (those stay in the primary).
   */
  private readonly left = new BoundedMap<string, number>(COUNTS_KEPT);

  constructor(
    private readonly primary: ToPrimary,
    readonly options: PolicyOptions,
  ) {}

  async offer(key: CacheKey): Promise<Offer> {
    const { offer, ticketsLeft } = await this.primary.call('offer', key);
    this.left.set(key.id, ticketsLeft);
    const { session, placeId, ...rest } = offer;
    // The dialer connects in the same turn as this resolves (an IP needs no lookup): once that turn is
    // over the connection is on its way, and the primary may answer the next offer to a mixed destination.
    // The channel sends at the end of the turn (channel.ts `post`): the note leaves after the connect.
    if (placeId !== undefined) void this.primary.note('handedOut', placeId);
    return {
      ...rest,
      ...(session ? { session: asBuffer(session) } : {}),
      ...(placeId !== undefined ? { place: new RemotePlace(placeId) } : {}),
    };
  }

  async received(key: CacheKey, der: Buffer): Promise<Received> {
    const { received, ticketsLeft } = await this.primary.call('received', key, der);
    this.left.set(key.id, ticketsLeft);
    return received;
  }

  /** The primary learns without answering: the cause is the same pure function of offer and result it would return. */
  async outcome(key: CacheKey, offer: Offer, result: { resumed: boolean; version?: string }): ReturnType<Resumption['outcome']> {
    void this.primary.note('outcome', key, wire(offer), result);
    return fullHandshakeCause(offer, result);
  }

  abandoned(offer: Offer, reachedServer: boolean): void {
    if (offer.place instanceof RemotePlace) void this.primary.note('abandoned', offer.place.id, reachedServer);
  }

  /** A connection asks after its own offer and sessions: their replies brought the count (the line shows it as of then). */
  async ticketsLeft(key: CacheKey): Promise<number> {
    return this.left.peek(key.id) ?? this.primary.call('ticketsLeft', key);
  }

  negotiatedElsewhere(key: CacheKey, version: NegotiatedVersion): Promise<void> {
    return this.primary.call('negotiatedElsewhere', key, version);
  }

  forget(id: string): Promise<void> {
    this.left.delete(id);
    return this.primary.call('forget', id);
  }

  /** The primary applies new cache settings to its own policy on a reload; this only carries them. */
  withOptions(options: PolicyOptions): Resumption {
    return new RemoteResumption(this.primary, options);
  }
}

/** The store's values and health, asked of the primary; closing it is the primary's business. */
export function remoteStore(primary: ToPrimary, options: PolicyOptions): Store {
  return {
    resumption: new RemoteResumption(primary, options),
    values: {
      value: (name) => primary.call('value', name),
      setValue: (name, value, ttlMs) => primary.call('setValue', name, value, ttlMs),
    },
    health: {
      size: () => primary.call('size'),
      ping: () => primary.call('ping'),
      close: () => Promise.resolve(),
    },
  };
}

function wire(offer: Offer): WireOffer {
  const { session, place, ...rest } = offer;
  return place instanceof RemotePlace ? { ...rest, placeId: place.id } : rest;
}
