import type { Store } from '../resumption/create-store.js';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Offer, PolicyOptions, Received, Resumption } from '../resumption/policy.js';
import type { NegotiatedVersion } from '../resumption/store.js';
import type { Place } from '../resumption/version-predictor.js';
import type { Channel } from './channel.js';
import type { PrimaryMethods, WireOffer, WorkerMethods } from './protocol.js';

type ToPrimary = Channel<WorkerMethods, PrimaryMethods>;

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
  constructor(
    private readonly primary: ToPrimary,
    readonly options: PolicyOptions,
  ) {}

  async offer(key: CacheKey): Promise<Offer> {
    const { session, placeId, ...rest } = await this.primary.call('offer', key);
    // The dialer connects in the same turn as this resolves (an IP needs no lookup): once that turn is
    // over the connection is on its way, and the primary may answer the next offer to a mixed destination.
    if (placeId !== undefined) setImmediate(() => void this.primary.note('handedOut', placeId));
    return {
      ...rest,
      ...(session ? { session: asBuffer(session) } : {}),
      ...(placeId !== undefined ? { place: new RemotePlace(placeId) } : {}),
    };
  }

  received(key: CacheKey, der: Buffer): Promise<Received> {
    return this.primary.call('received', key, der);
  }

  outcome(key: CacheKey, offer: Offer, result: { resumed: boolean; version?: string }): ReturnType<Resumption['outcome']> {
    return this.primary.call('outcome', key, wire(offer), result);
  }

  abandoned(offer: Offer, reachedServer: boolean): void {
    if (offer.place instanceof RemotePlace) void this.primary.note('abandoned', offer.place.id, reachedServer);
  }

  ticketsLeft(key: CacheKey): Promise<number> {
    return this.primary.call('ticketsLeft', key);
  }

  negotiatedElsewhere(key: CacheKey, version: NegotiatedVersion): Promise<void> {
    return this.primary.call('negotiatedElsewhere', key, version);
  }

  forget(id: string): Promise<void> {
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

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
