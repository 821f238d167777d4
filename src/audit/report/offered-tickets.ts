import { SEVEN_DAYS_S } from '../../util/time.js';

/**
 * Which ticket hashes were offered before: the "offered twice" check of single use, exact (no
 * false positives, unlike a Bloom filter) and bounded in memory.
 *
 * - A hash (12 hex = 48 bits) is stored as a number in an open-addressing Float64Array: 8 bytes
 *   a slot, at most half full, so about 16 bytes per remembered offer.
 * - Only offers within the ticket lifetime window are kept (default 7 days, the RFC 8446 cap: no
 *   client may hold a ticket longer, so an older offer cannot be repeated legitimately or not).
 *   Two generations: when the current one is `window` old, the previous one (all older than the
 *   window) is dropped. Offers within the window are always remembered, none older than two
 *   windows; memory is at most two windows' worth of offers.
 * - A generation holds at most `maxPerGeneration` hashes; past that it turns over early and the
 *   horizon of the check shrinks, which the report states (`horizonShortened`).
 */
export class OfferedTickets {
  private current: HashSet48;
  private previous: HashSet48 | undefined;
  private currentStart = -Infinity;
  private currentLast = -Infinity;
  private latest = -Infinity;
  /** Shortest history guaranteed to have been checked, when a generation turned over early. */
  shortestHorizonMs: number | undefined;

  constructor(
    readonly windowMs = SEVEN_DAYS_S * 1000,
    readonly maxPerGeneration = 1 << 20,
  ) {
    this.current = new HashSet48();
  }

  /** Records an offer at `timeMs`; true when the same hash was offered before (within the window). */
  offer(hash: string, timeMs: number | undefined): boolean {
    if (timeMs !== undefined && timeMs > this.latest) this.latest = timeMs;
    const now = this.latest;
    if (this.currentStart === -Infinity && Number.isFinite(now)) this.currentStart = now;
    if (now - this.currentStart >= this.windowMs) this.turnOver(now);
    const value = hashValue(hash);
    const before = this.current.has(value) || (this.previous?.has(value) ?? false);
    if (!before) {
      if (this.current.size >= this.maxPerGeneration) {
        this.shortestHorizonMs = Math.min(
          this.shortestHorizonMs ?? Infinity,
          Number.isFinite(now - this.currentStart) ? now - this.currentStart : 0,
        );
        this.turnOver(now);
      }
      this.current.add(value);
    }
    this.currentLast = now;
    return before;
  }

  get size(): number {
    return this.current.size + (this.previous?.size ?? 0);
  }

  private turnOver(now: number): void {
    // The current generation becomes the previous one, unless all of it is already out of the window.
    this.previous = now - this.currentLast > this.windowMs ? undefined : this.current;
    this.current = new HashSet48();
    this.currentStart = now;
  }
}

/** A 12-hex hash as an exact number; anything else folded to 48 bits (FNV-1a over its characters). */
function hashValue(hash: string): number {
  return hexValue(hash) ?? folded(hash);
}

/** Up to 12 hex digits as a number (a loop: the regular expression and parseInt it replaced were a twentieth of a run). */
function hexValue(hash: string): number | undefined {
  if (hash.length === 0 || hash.length > 12) return undefined;
  let v = 0;
  for (let i = 0; i < hash.length; i++) {
    const c = hash.charCodeAt(i);
    const lower = c | 0x20; // only A-F and a-f land on a-f
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
    if (d < 0) return undefined;
    v = v * 16 + d;
  }
  return v;
}

function folded(hash: string): number {
  let h = 0x811c9dc5;
  let g = 0x01000193;
  for (let i = 0; i < hash.length; i++) {
    h = Math.imul(h ^ hash.charCodeAt(i), 0x01000193) >>> 0;
    g = Math.imul(g ^ hash.charCodeAt(i), 0x85ebca6b) >>> 0;
  }
  return (g & 0xffff) * 0x100000000 + h;
}

/** Open addressing, linear probing, non-negative numbers below 2^53 (stored +1: 0 marks empty). */
class HashSet48 {
  private slots = new Float64Array(1 << 12);
  size = 0;

  has(value: number): boolean {
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let i = slotOf(value, mask); ; i = (i + 1) & mask) {
      const s = slots[i];
      if (s === 0) return false;
      if (s === value + 1) return true;
    }
  }

  add(value: number): void {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    this.place(this.slots, value);
    this.size++;
  }

  private place(slots: Float64Array, value: number): void {
    const mask = slots.length - 1;
    let i = slotOf(value, mask);
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = value + 1;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    for (const s of old) if (s !== 0) this.place(this.slots, s - 1);
  }
}

function slotOf(value: number, mask: number): number {
  const lo = (value % 0x100000000) >>> 0;
  const hi = Math.floor(value / 0x100000000) >>> 0;
  return (Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 0) & mask;
}
