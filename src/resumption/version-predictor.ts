import { BoundedMap } from '../util/bounded-map.js';
import type { NegotiatedVersion } from './store.js';

/**
 * Which version will a version-mixed destination (a balancer over TLS 1.2 and TLS 1.3 nodes)
 * negotiate on the next connection? A balancer assigns nodes in the order connections *arrive*,
 * which is the order ticketbooth offers in, not the order handshakes finish: with 8 concurrent
 * connections the completion order is scrambled, and reading it resumed 22-26 of 72.
 *
 * So per destination, in process memory, each offer takes the next *place* in an offer-ordered
 * history and its outcome fills the place in. Places still in flight are unknown. The prediction
 * for a new place n: the period p (1..4) that the known places follow best, then v(n - k*p) for the
 * smallest k whose place is known. No clear period (see `period`): the majority, a tie goes to
 * TLS 1.3. With too little of its own history (a fresh process in a fleet, a destination only just
 * seen mixed), the store's shared completion-ordered versions decide.
 *
 * Offers to a tracked destination leave `offer()` in place order and the dialer connects at once;
 * a host given by name is looked up per connection, which may still reorder them (an IP does not).
 *
 * History string alphabet (oldest first, used by `predictNext` and its tests):
 * `2`/`3` negotiated, `.` in flight, `?` reached the server but no version is known (failed).
 */

/** Places remembered per destination: well beyond the concurrency a period must be seen across. */
export const HISTORY_PLACES = 64;
const MAX_PERIOD = 4;
/** Known places needed before the local history outweighs the shared one. */
const MIN_KNOWN = 4;
/** Destinations tracked at most (least recently used go first): 64 bytes of history each. */
const MAX_TRACKED = 4096;

const IN_FLIGHT = 0;
const UNKNOWN = 1;
const TLS12 = 2;
const TLS13 = 3;
/** Never reached the server (dial failed before TCP was up): not part of the balancer's order. */
const GONE = 4;

const CHAR = ['.', '?', '2', '3'] as const;

interface History {
  /** Ring of place states; place `seq` lives at `seq % HISTORY_PLACES`. */
  places: Uint8Array;
  /** The sequence number the next place gets. */
  next: number;
  /** Resolves when the newest place's offer has been handed out (see `VersionPlace.inTurn`). */
  tail: Promise<void>;
}

/** One offer's place in a destination's offer order, as the policy and its callers use it. */
export interface Place {
  inTurn(): Promise<void>;
  /** The connection is on its way: the next place may go (see `reserve`'s `handOutLater`). */
  handOut(): void;
  settle(version: NegotiatedVersion | undefined): void;
  release(reachedServer: boolean): void;
}

/** One offer's place in a destination's offer order. */
export class VersionPlace implements Place {
  private handedOut!: () => void;
  /** Resolves when this offer has been handed out; the next place waits for it. */
  readonly handed = new Promise<void>((resolve) => (this.handedOut = resolve));

  constructor(
    private readonly history: History,
    private readonly seq: number,
    private readonly previous: Promise<void>,
    private readonly handOutLater = false,
  ) {}

  /**
   * Waits until every earlier offer to this destination has been handed out, then lets the next
   * one go: offers leave in the order they took their places, and the dialer connects right after.
   * With `handOutLater` the next one waits for `handOut()` instead (a worker's connect, in another process).
   */
  async inTurn(): Promise<void> {
    await this.previous;
    if (!this.handOutLater) this.handedOut();
  }

  handOut(): void {
    this.handedOut();
  }

  /** The handshake finished: the version it negotiated (none known: stays unknown). */
  settle(version: NegotiatedVersion | undefined): void {
    this.set(version === 'TLSv1.2' ? TLS12 : version === 'TLSv1.3' ? TLS13 : UNKNOWN);
  }

  /** The handshake never finished. `reachedServer`: TCP came up, so the balancer counted it. */
  release(reachedServer: boolean): void {
    this.set(reachedServer ? UNKNOWN : GONE);
  }

  private set(state: number): void {
    const h = this.history;
    // Only once, and only while the ring still holds this place.
    if (h.next - this.seq > HISTORY_PLACES) return;
    const at = this.seq % HISTORY_PLACES;
    if (h.places[at] === IN_FLIGHT) h.places[at] = state;
  }
}

export interface Turn {
  expect: NegotiatedVersion;
  /** Present when the destination is tracked (it has negotiated both versions). */
  place?: VersionPlace;
}

export class VersionPredictor {
  private readonly tracked: BoundedMap<string, History>;

  constructor(maxDestinations = MAX_TRACKED) {
    this.tracked = new BoundedMap(Math.max(1, Math.min(maxDestinations, MAX_TRACKED)));
  }

  /**
   * Takes the next place for `key` and predicts its version. `shared` is the store's recent
   * versions (completion order). Only destinations that have negotiated both versions get state.
   */
  reserve(key: string, shared: string, handOutLater = false): Turn {
    let h = this.tracked.get(key); // a get makes it the most recent
    if (!h) {
      if (!(shared.includes('2') && shared.includes('3'))) return { expect: predictNext('', shared) };
      h = { places: new Uint8Array(HISTORY_PLACES), next: 0, tail: Promise.resolve() };
      this.tracked.set(key, h);
    }
    const expect = predictNext(historyString(h), shared);
    const place = new VersionPlace(h, h.next, h.tail, handOutLater);
    h.places[h.next % HISTORY_PLACES] = IN_FLIGHT;
    h.next++;
    h.tail = place.handed;
    return { expect, place };
  }

  /** For tests and metrics: destinations with state. */
  get size(): number {
    return this.tracked.size;
  }
}

function historyString(h: History): string {
  let s = '';
  for (let seq = Math.max(0, h.next - HISTORY_PLACES); seq < h.next; seq++) {
    const state = h.places[seq % HISTORY_PLACES];
    if (state !== GONE) s += CHAR[state as 0 | 1 | 2 | 3];
  }
  return s;
}

/** The version expected at the place after `local` (offer order); `shared` when `local` knows too little. */
export function predictNext(local: string, shared: string): NegotiatedVersion {
  const known = [...local].filter(isKnown).length;
  if (known >= MIN_KNOWN) {
    const p = period(local);
    if (p !== undefined) {
      for (let i = local.length - p; i >= 0; i -= p) if (isKnown(local[i])) return asVersion(local[i]);
    }
    return majority(local);
  }
  // Completion order equals offer order only when nothing overlaps: with offers in flight here,
  // "what followed the last version" would phase-lock wrongly, so only the counts are trusted.
  return local.includes('.') ? majority(shared) : followsLast(shared);
}

/**
 * The period in 1..MAX_PERIOD the known places agree with best (the smallest on a tie), if clear:
 * its pairs agree at least as often as the commoner version occurs, so guessing by it beats
 * guessing by count (a swapped pair in an alternation keeps it; a random mix does not).
 */
export function period(local: string): number | undefined {
  let best: number | undefined;
  let bestShare = -1;
  for (let p = 1; p <= MAX_PERIOD; p++) {
    let pairs = 0;
    let agree = 0;
    for (let i = p; i < local.length; i++) {
      if (!isKnown(local[i]) || !isKnown(local[i - p])) continue;
      pairs++;
      if (local[i] === local[i - p]) agree++;
    }
    if (pairs < 2) continue; // one agreeing pair proves nothing
    if (agree / pairs > bestShare) {
      best = p;
      bestShare = agree / pairs;
    }
  }
  return bestShare >= majorityShare(local) ? best : undefined;
}

/**
 * Sequential connections only: what followed the last version before (a round-robin balancer over
 * one node of each alternates, which a majority vote phase-locks against). No such history: the majority.
 */
function followsLast(recent: string): NegotiatedVersion {
  if (recent.length === 0) return 'TLSv1.3';
  const last = recent[recent.length - 1];
  let next2 = 0;
  let next3 = 0;
  for (let i = 0; i + 1 < recent.length; i++) {
    if (recent[i] !== last) continue;
    if (recent[i + 1] === '2') next2++;
    else next3++;
  }
  if (next2 !== next3) return next2 > next3 ? 'TLSv1.2' : 'TLSv1.3';
  return majority(recent);
}

/** More TLS 1.2 than TLS 1.3 among the known: TLS 1.2; otherwise (ties too) TLS 1.3. */
function majority(s: string): NegotiatedVersion {
  let twelve = 0;
  let thirteen = 0;
  for (const c of s) {
    if (c === '2') twelve++;
    else if (c === '3') thirteen++;
  }
  return twelve > thirteen ? 'TLSv1.2' : 'TLSv1.3';
}

function majorityShare(s: string): number {
  let twelve = 0;
  let thirteen = 0;
  for (const c of s) {
    if (c === '2') twelve++;
    else if (c === '3') thirteen++;
  }
  return Math.max(twelve, thirteen) / Math.max(1, twelve + thirteen);
}

function isKnown(c: string): boolean {
  return c === '2' || c === '3';
}

function asVersion(c: string): NegotiatedVersion {
  return c === '2' ? 'TLSv1.2' : 'TLSv1.3';
}
