import type { AuditLog } from '../audit/audit-log.js';
import type { Store } from '../resumption/create-store.js';
import type { Offer, Resumption } from '../resumption/policy.js';
import type { Place } from '../resumption/version-predictor.js';
import { BoundedMap } from '../util/bounded-map.js';
import type { Served } from './channel.js';
import { asBuffer, type PrimaryMethods, type WireOffer } from './protocol.js';

/** What the primary shares with its workers; `cache` is read per call: a reload may replace it. */
export interface Shared {
  cache: () => Resumption;
  store: Omit<Store, 'resumption'>;
  audit: AuditLog;
}

/** Offers to version-mixed destinations in flight in one worker, at most (each is a connection being set up). */
const MAX_PLACES = 65_536;

/**
 * The primary's side of one worker's channel: the policy's verbs on the one cache. An offer's place
 * in a mixed destination's version order stays here under a number until its outcome (or the
 * worker's end) settles it.
 */
export class CacheService {
  /** Bounded whatever a worker fails to report: the oldest place left open goes as if its handshake failed. */
  private readonly places = new BoundedMap<number, Place>(MAX_PLACES, (_, place) => close(place));
  private nextPlace = 1;
  private gone = false;

  constructor(private readonly shared: Shared) {}

  /** The methods a worker may call, apart from `config` and `ready` (the primary's own business). */
  methods(): Omit<Served<PrimaryMethods>, 'config' | 'ready'> {
    const { shared } = this;
    return {
      offer: async (key) => {
        const offer = this.wire(await shared.cache().offer(key, { handOutLater: true }));
        return { offer, ticketsLeft: await shared.cache().ticketsLeft(key) };
      },
      handedOut: (placeId) => this.places.peek(placeId)?.handOut(),
      received: async (key, der) => {
        const received = await shared.cache().received(key, asBuffer(der));
        return { received, ticketsLeft: await shared.cache().ticketsLeft(key) };
      },
      outcome: async (key, offer, result) => void (await shared.cache().outcome(key, this.unwire(offer), result)),
      abandoned: (placeId, reached) => this.take(placeId)?.release(reached),
      ticketsLeft: (key) => shared.cache().ticketsLeft(key),
      negotiatedElsewhere: (key, version) => shared.cache().negotiatedElsewhere(key, version),
      forget: (id) => shared.cache().forget(id),
      value: (name) => shared.store.values.value(name),
      setValue: (name, value, ttlMs) => shared.store.values.setValue(name, value, ttlMs),
      ping: () => shared.store.health.ping(),
      size: () => shared.store.health.size(),
      events: (lines) => {
        for (const line of lines) shared.audit.accept(line);
      },
    };
  }

  /** The worker is gone: its handshakes in flight never finish (TCP may have been up: the balancer counted them). */
  releaseAll(): void {
    this.gone = true;
    for (const place of this.places.values()) close(place);
    this.places.clear();
  }

  private wire(offer: Offer): WireOffer {
    const { place, ...rest } = offer;
    if (!place) return rest;
    if (this.gone) {
      close(place); // an offer answered after its worker ended: nobody will report it
      return rest;
    }
    const placeId = this.nextPlace++;
    this.places.set(placeId, place);
    return { ...rest, placeId };
  }

  private unwire(offer: WireOffer): Offer {
    const { placeId, session, ...rest } = offer;
    const place = placeId === undefined ? undefined : this.take(placeId);
    return place ? { ...rest, place } : rest;
  }

  /** The place, no longer held here; handed out if the worker's note has not come (it never holds up the next). */
  private take(placeId: number): Place | undefined {
    const place = this.places.peek(placeId);
    this.places.delete(placeId);
    place?.handOut();
    return place;
  }
}

/** A place whose worker will not report: failed after TCP may have been up, and the next may go. */
function close(place: Place): void {
  place.release(true);
  place.handOut();
}
