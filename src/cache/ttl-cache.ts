/**
 * A bounded map whose entries expire. Bounded because keys come from untrusted input
 * (image names in pod specs): without a cap, a flood of distinct names would grow memory
 * without limit. Eviction is least-recently-set (Map insertion order), which is cheap and
 * good enough for caches whose hot keys are re-set on every refresh.
 */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

interface Entry<V> {
  value: V
  expiresAt: number
}

export class TtlCache<K, V> {
  readonly #entries = new Map<K, Entry<V>>()
  readonly #maxEntries: number
  readonly #clock: Clock

  constructor(options: { maxEntries: number; clock?: Clock }) {
    if (!(options.maxEntries > 0)) throw new RangeError('maxEntries must be positive')
    this.#maxEntries = options.maxEntries
    this.#clock = options.clock ?? systemClock
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#clock.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** Stores `value` until `expiresAt` (epoch ms). Entries already expired are not stored. */
  set(key: K, value: V, expiresAt: number): void {
    this.#entries.delete(key)
    if (expiresAt <= this.#clock.now()) return
    this.#entries.set(key, { value, expiresAt })
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
  }

  delete(key: K): void {
    this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }
}
