/**
 * The frame of the report's statistics tables (handshake-figures.ts, and the upstream errors in
 * aggregate.ts): a table lists its figures by report name, in report order; `Tabulation` keeps
 * them per destination and merges destinations into the overall view. The kinds of figure are in
 * figure-kinds.ts.
 *
 * Lines come with the set of conditions they meet, as bits (`conditionBits`). Most figures are
 * counts of the lines that meet some conditions, or are made of such counts (shares, a count per
 * key): those are kept in one array and cost a test a line, not a call. The others (sums,
 * histograms ...) are objects called for the lines that meet their conditions.
 */
export interface Figure<R, V> {
  add(record: R): void;
  /** `other` is the same figure of another destination's table. */
  merge(other: Figure<R, V>): void;
  value(): V;
}

/** Where a figure appears: every statistics block, per destination only, or nowhere (verdicts only). */
export type Placement = 'stats' | 'destination' | 'internal';

interface KindBase<V, P extends Placement> {
  readonly placement: P;
  /** Never set: carries the type of the figure's value. */
  readonly type?: V;
}

/** A figure with state of its own, given the lines that meet all of `when`. */
export interface ObjectKind<R, V, C extends string = string, P extends Placement = Placement> extends KindBase<V, P> {
  readonly when: readonly C[];
  create: () => Figure<R, V>;
}

/** A figure made of counts: one per entry of `counts`, of the lines that meet all its conditions. */
export interface CountsKind<V, C extends string = string, P extends Placement = Placement> extends KindBase<V, P> {
  readonly counts: readonly (readonly C[])[];
  /** Its counts are `n[at]`, `n[at + 1]` ... in the order of `counts`. */
  fromCounts: (n: Float64Array, at: number) => V;
}

export type FigureKind<R, V, C extends string = string, P extends Placement = Placement> = ObjectKind<R, V, C, P> | CountsKind<V, C, P>;

/** Figures reported together as one object; each keeps its own conditions. */
export interface GroupKind<R, V, C extends string = string, P extends Placement = Placement> extends KindBase<V, P> {
  readonly members: Record<string, FigureKind<R, unknown, C>>;
}

export type Kind<R, V, C extends string = string, P extends Placement = Placement> = FigureKind<R, V, C, P> | GroupKind<R, V, C, P>;

export type Table<R, C extends string = string> = Record<string, Kind<R, unknown, C>>;
type ValueOf<K> = K extends KindBase<infer V, Placement> ? V : never;
/** Every figure of a table by name. */
export type Values<T> = { [N in keyof T]: ValueOf<T[N]> };
/** The figures of one placement. */
export type Placed<T, P extends Placement> = { [N in keyof T as T[N] extends KindBase<unknown, P> ? N : never]: ValueOf<T[N]> };

export const perDestination = <R, V, C extends string>(k: FigureKind<R, V, C>): FigureKind<R, V, C, 'destination'> => ({
  ...k,
  placement: 'destination',
});
export const internal = <R, V, C extends string>(k: FigureKind<R, V, C>): FigureKind<R, V, C, 'internal'> => ({
  ...k,
  placement: 'internal',
});
export const group = <R, C extends string, M extends Record<string, FigureKind<R, unknown, C>>>(
  members: M,
): GroupKind<R, Values<M>, C, 'stats'> => ({
  placement: 'stats',
  members,
});

/** Bits for a table's conditions, in the order listed: a line's conditions are their `|`. */
export function conditionBits<C extends string>(conditions: readonly C[]): Record<C, number> {
  if (conditions.length > 31) throw new Error('at most 31 conditions fit a line');
  return Object.fromEntries(conditions.map((c, i) => [c, 1 << i])) as Record<C, number>;
}

/** Where a figure's value is: its counts from `at` on in the count array, or an object. */
type Slot = { name: string; member?: string } & ({ at: number; fromCounts: (n: Float64Array, at: number) => unknown } | { object: number });

/** Where a table's figures are kept, worked out once a table. */
interface Layout<R> {
  slots: Slot[];
  /** Figures outside groups by name. */
  byName: Map<string, Slot>;
  countMasks: number[];
  objectMasks: number[];
  creators: (() => Figure<R, unknown>)[];
}

/** By table: a table is always used with the same conditions. */
const layouts = new WeakMap<object, Layout<never>>();

function layoutOf<R, C extends string>(table: Table<R, C>, bits: Record<C, number>): Layout<R> {
  const known = layouts.get(table) as Layout<R> | undefined;
  if (known) return known;
  const l: Layout<R> = { slots: [], byName: new Map(), countMasks: [], objectMasks: [], creators: [] };
  const mask = (when: readonly C[]): number => when.reduce((m, c) => m | bits[c], 0);
  const put = (k: FigureKind<R, unknown, C>, name: string, member?: string): void => {
    if ('create' in k) {
      l.slots.push({ name, member, object: l.creators.push(k.create) - 1 });
      l.objectMasks.push(mask(k.when));
    } else {
      l.slots.push({ name, member, at: l.countMasks.length, fromCounts: k.fromCounts });
      l.countMasks.push(...k.counts.map(mask));
    }
  };
  for (const [name, k] of Object.entries(table)) {
    if ('members' in k) for (const [member, m] of Object.entries(k.members)) put(m, name, member);
    else put(k, name);
  }
  for (const slot of l.slots) if (slot.member === undefined) l.byName.set(slot.name, slot);
  layouts.set(table, l);
  return l;
}

/** Where a table's plain count `name` is kept in every `Tabulation` of it (for figures read often). */
export function countIndex<R, C extends string>(table: Table<R, C>, bits: Record<C, number>, name: string): number {
  const slot = layoutOf(table, bits).byName.get(name);
  if (!slot || !('at' in slot)) throw new Error(`${name} is no count`);
  return slot.at;
}

/** One table's figures for one destination (or for all of them, merged). Groups are kept flat. */
export class Tabulation<R, C extends string, T extends Table<R, C>> {
  private readonly layout: Layout<R>;
  protected readonly counts: Float64Array;
  private readonly objects: Figure<R, unknown>[];

  constructor(table: T, bits: Record<C, number>) {
    this.layout = layoutOf(table, bits);
    this.counts = new Float64Array(this.layout.countMasks.length);
    this.objects = this.layout.creators.map((create) => create());
  }

  /** A line that meets the conditions `is` (from `conditionBits`). */
  add(record: R, is: number): void {
    const { countMasks, objectMasks } = this.layout;
    for (let i = 0; i < countMasks.length; i++) if ((is & countMasks[i]) === countMasks[i]) this.counts[i]++;
    for (let i = 0; i < objectMasks.length; i++) if ((is & objectMasks[i]) === objectMasks[i]) this.objects[i].add(record);
  }

  merge(other: Tabulation<R, C, T>): void {
    other.counts.forEach((n, i) => (this.counts[i] += n));
    this.objects.forEach((f, i) => f.merge(other.objects[i]));
  }

  values(): Values<T> {
    const out: Record<string, unknown> = {};
    for (const slot of this.layout.slots) {
      const v = this.valueOf(slot);
      if (slot.member === undefined) out[slot.name] = v;
      else ((out[slot.name] ??= {}) as Record<string, unknown>)[slot.member] = v;
    }
    return out as Values<T>;
  }

  private valueOf(slot: Slot): unknown {
    return 'object' in slot ? this.objects[slot.object].value() : slot.fromCounts(this.counts, slot.at);
  }
}

/** The figures of one placement, in table order; absent values (no time seen) are left out. */
export function placed<T extends Table<never>, P extends Placement>(table: T, values: Values<T>, placement: P): Placed<T, P> {
  const out: Record<string, unknown> = {};
  for (const n of Object.keys(table)) if (table[n].placement === placement && values[n] !== undefined) out[n] = values[n];
  return out as Placed<T, P>;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
