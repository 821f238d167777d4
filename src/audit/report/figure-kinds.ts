import { round, type CountsKind, type Figure, type ObjectKind } from './figures.js';
import { LogHistogram } from './histogram.js';

/**
 * The kinds of figure a statistics table is made of. Each takes the conditions a line must meet
 * (figures.ts) and what to read from the record; state is fixed in size.
 */

/** One condition or several, all to be met. */
export type When<C extends string> = C | readonly C[];

const all = <C extends string>(when: When<C>): readonly C[] => (typeof when === 'string' ? [when] : when);
const kind = <R, V, C extends string>(when: When<C>, create: () => Figure<R, V>): ObjectKind<R, V, C, 'stats'> => ({
  placement: 'stats',
  when: all(when),
  create,
});

/** How many lines met the conditions. */
export const count = <C extends string>(...when: C[]): CountsKind<number, C, 'stats'> => ({
  placement: 'stats',
  counts: [when],
  fromCounts: (n, at) => n[at],
});

/** The share of the `whole` lines that are also `part`, rounded; null when there were none. */
export const share = <C extends string>(part: When<C>, whole: When<C>, digits: number): CountsKind<number | null, C, 'stats'> => ({
  placement: 'stats',
  counts: [[...all(part), ...all(whole)], all(whole)],
  fromCounts: (n, at) => (n[at + 1] === 0 ? null : round(n[at] / n[at + 1], digits)),
});

/** A count for each of `keys` (every one reported, 0 or not), of the lines meeting `when(key)`. */
export const countsBy = <K extends string, C extends string>(
  keys: readonly K[],
  when: (key: K) => When<C>,
): CountsKind<Record<K, number>, C, 'stats'> => ({
  placement: 'stats',
  counts: keys.map((k) => all(when(k))),
  fromCounts: (n, at) => Object.fromEntries(keys.map((k, i) => [k, n[at + i]])) as Record<K, number>,
});

/** The sum of `amount` over the lines. */
export const sum = <R, C extends string>(when: When<C>, amount: (r: R) => number): ObjectKind<R, number, C, 'stats'> =>
  kind(when, () => new Sum(amount));

class Sum<R> implements Figure<R, number> {
  private n = 0;
  constructor(private readonly amount: (r: R) => number) {}
  add(r: R): void {
    this.n += this.amount(r);
  }
  merge(o: Sum<R>): void {
    this.n += o.n;
  }
  value(): number {
    return this.n;
  }
}

/** The mean of `amount` over the lines, rounded; null when there were none. */
export const mean = <R, C extends string>(
  when: When<C>,
  amount: (r: R) => number,
  digits: number,
): ObjectKind<R, number | null, C, 'stats'> => kind(when, () => new Mean(amount, digits));

class Mean<R> implements Figure<R, number | null> {
  private sum = 0;
  private n = 0;
  constructor(
    private readonly amount: (r: R) => number,
    private readonly digits: number,
  ) {}
  add(r: R): void {
    this.sum += this.amount(r);
    this.n++;
  }
  merge(o: Mean<R>): void {
    this.sum += o.sum;
    this.n += o.n;
  }
  value(): number | null {
    return this.n === 0 ? null : round(this.sum / this.n, this.digits);
  }
}

export interface TallyOptions<K extends string> {
  /** Reported first, in this order (when not 0); other keys follow in first-seen order. */
  keys?: readonly K[];
  /** Other keys kept at most; further ones are counted as `other`. */
  max?: number;
}

/** Lines by a key (undefined: not counted). */
export const tally = <R, C extends string, K extends string = string>(
  when: When<C>,
  key: (r: R) => K | undefined,
  options: TallyOptions<K> = {},
): ObjectKind<R, Record<K, number>, C, 'stats'> => kind(when, () => new Tally(key, options.keys ?? [], options.max ?? Infinity));

class Tally<R, K extends string> implements Figure<R, Record<K, number>> {
  private readonly counts: number[];
  private rest: Map<string, number> | undefined;
  constructor(
    private readonly key: (r: R) => K | undefined,
    private readonly keys: readonly K[],
    private readonly max: number,
  ) {
    this.counts = keys.map(() => 0);
  }
  add(r: R): void {
    const k = this.key(r);
    if (k === undefined) return;
    const i = this.keys.indexOf(k);
    if (i >= 0) this.counts[i]++;
    else {
      this.rest ??= new Map();
      bump(this.rest, this.rest.has(k) || this.rest.size < this.max ? k : 'other', 1);
    }
  }
  merge(o: Tally<R, K>): void {
    o.counts.forEach((n, i) => (this.counts[i] += n));
    if (o.rest) for (const [k, n] of o.rest) bump((this.rest ??= new Map<K, number>()), k, n);
  }
  value(): Record<K, number> {
    const fixed = this.keys.map((k, i) => [k, this.counts[i]] as const).filter(([, n]) => n > 0);
    return Object.fromEntries([...fixed, ...(this.rest ?? [])]) as Record<K, number>;
  }
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p95: number | null;
  mean: number | null;
}

/** Durations in a log-scale histogram (histogram.ts), reported as percentiles. */
export const durations = <R, C extends string>(when: When<C>, ms: (r: R) => number): ObjectKind<R, Percentiles, C, 'stats'> =>
  kind(when, () => new Durations(ms));

class Durations<R> implements Figure<R, Percentiles> {
  private readonly h = new LogHistogram();
  constructor(private readonly ms: (r: R) => number) {}
  add(r: R): void {
    this.h.add(this.ms(r));
  }
  merge(o: Durations<R>): void {
    this.h.merge(o.h);
  }
  value(): Percentiles {
    return { n: this.h.count, p50: this.h.quantile(0.5), p95: this.h.quantile(0.95), mean: this.h.mean() };
  }
}

/** How many lines had 0, 1, 2 ... of something (up to `size - 1`; more in the last cell). */
export const distribution = <R, C extends string>(
  when: When<C>,
  of: (r: R) => number,
  size: number,
): ObjectKind<R, Uint32Array, C, 'stats'> => kind(when, () => new Distribution(of, size));

class Distribution<R> implements Figure<R, Uint32Array> {
  private readonly cells: Uint32Array;
  constructor(
    private readonly of: (r: R) => number,
    size: number,
  ) {
    this.cells = new Uint32Array(size);
  }
  add(r: R): void {
    this.cells[Math.min(this.cells.length - 1, Math.max(0, this.of(r) | 0))]++;
  }
  merge(o: Distribution<R>): void {
    o.cells.forEach((n, i) => (this.cells[i] += n));
  }
  value(): Uint32Array {
    return this.cells;
  }
}

/** The first few distinct non-empty values. */
export const distinct = <R, C extends string>(when: When<C>, of: (r: R) => string, max: number): ObjectKind<R, string[], C, 'stats'> =>
  kind(when, () => new Distinct(of, max));

class Distinct<R> implements Figure<R, string[]> {
  private readonly seen = new Set<string>();
  /** Most lines repeat the one before: compared, not hashed. */
  private last = '';
  constructor(
    private readonly of: (r: R) => string,
    private readonly max: number,
  ) {}
  add(r: R): void {
    if (this.seen.size >= this.max) return;
    const v = this.of(r);
    if (v === this.last) return;
    this.last = v;
    this.put(v);
  }
  merge(o: Distinct<R>): void {
    for (const v of o.seen) if (this.seen.size < this.max) this.put(v);
  }
  value(): string[] {
    return [...this.seen];
  }
  private put(v: string): void {
    if (v !== '') this.seen.add(v);
  }
}

/** The earliest or latest of the lines' times (ISO 8601 strings compare as times). */
export const extreme = <R, C extends string>(
  when: When<C>,
  of: (r: R) => string | undefined,
  which: 'min' | 'max',
): ObjectKind<R, string | undefined, C, 'stats'> => kind(when, () => new Extreme(of, which));

class Extreme<R> implements Figure<R, string | undefined> {
  private v: string | undefined;
  constructor(
    private readonly of: (r: R) => string | undefined,
    private readonly which: 'min' | 'max',
  ) {}
  add(r: R): void {
    this.put(this.of(r));
  }
  merge(o: Extreme<R>): void {
    this.put(o.v);
  }
  value(): string | undefined {
    return this.v;
  }
  private put(t: string | undefined): void {
    if (t !== undefined && (this.v === undefined || (this.which === 'min' ? t < this.v : t > this.v))) this.v = t;
  }
}

/**
 * A level as of the latest line (by time; a line without one counts as the latest so far), such
 * as a destination's ticket stock; merged, the levels add up (the whole stock).
 */
export const level = <R, C extends string>(
  when: When<C>,
  time: (r: R) => string | undefined,
  of: (r: R) => number,
): ObjectKind<R, number, C, 'stats'> => kind(when, () => new Level(time, of));

class Level<R> implements Figure<R, number> {
  private at: string | undefined;
  private v = 0;
  constructor(
    private readonly time: (r: R) => string | undefined,
    private readonly of: (r: R) => number,
  ) {}
  add(r: R): void {
    const t = this.time(r);
    if (t !== undefined) {
      if (this.at !== undefined && t < this.at) return;
      this.at = t;
    }
    this.v = this.of(r);
  }
  merge(o: Level<R>): void {
    this.v += o.v;
  }
  value(): number {
    return this.v;
  }
}

function bump(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}
