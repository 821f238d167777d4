/**
 * The one least-recently-used map every in-process cache uses: at most `max` entries; `get` and
 * `set` make an entry the most recent, `peek` does not; the least recent goes first when full.
 * A Map keeps insertion order, so re-inserting is the whole bookkeeping.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private readonly max: number;

  /** `onEvict` hears each entry dropped to make room (not those deleted or replaced). */
  constructor(
    max: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap max must be a positive integer, got ${max}`);
    this.max = max;
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, made the most recent. */
  get(key: K): V | undefined {
    if (!this.map.has(key)) return undefined;
    const value = this.map.get(key) as V;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  /** The value, its place left alone. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  /** Stores `value` as the most recent, dropping the least recent entries past `max`. */
  set(key: K, value: V): this {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const [oldKey, oldValue] = this.map.entries().next().value as [K, V];
      this.map.delete(oldKey);
      this.onEvict?.(oldKey, oldValue);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Least recent first. */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  /** Least recent first. */
  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}
