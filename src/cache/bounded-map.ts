/**
 * A Map with a bound on its entries, the one eviction every cache here uses. Bounded because keys
 * come from untrusted input (image names in pod specs): without a cap, a flood of distinct names
 * would grow memory without limit. Setting a key makes it the newest; past the bound the oldest
 * goes: least recently set (Map insertion order), which is cheap and good enough for caches whose
 * hot keys are set again on every refresh. A caller that wants least recently used sets a key
 * again when it uses it. Values are stored as given: no object per entry.
 */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>()
  readonly #maxEntries: number
  readonly #onEvict: ((key: K, value: V) => void) | undefined

  /** @param onEvict Told of each entry the bound pushes out (not of delete or clear): to close what it holds. */
  constructor(maxEntries: number, onEvict?: (key: K, value: V) => void) {
    if (!(maxEntries > 0)) throw new RangeError('maxEntries must be positive')
    this.#maxEntries = maxEntries
    this.#onEvict = onEvict
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)
  }

  /** Stores `value` as the newest entry; the oldest leave while there are more than maxEntries. */
  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.entries().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value[0])
      this.#onEvict?.(oldest.value[0], oldest.value[1])
    }
  }

  delete(key: K): void {
    this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }

  /** Oldest first. */
  keys(): IterableIterator<K> {
    return this.#entries.keys()
  }

  /** Oldest first. */
  values(): IterableIterator<V> {
    return this.#entries.values()
  }
}
