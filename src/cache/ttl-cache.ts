/**
 * Bounded maps whose entries expire, in two shapes: ExpiringMap for entries that carry their own
 * expiry (read by a function given once, so an entry is the caller's object and nothing more),
 * TtlCache for plain values, each kept with its expiry. Both evict through BoundedMap.
 */
import { BoundedMap } from './bounded-map.js'

export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

export interface ExpiringMapOptions<V> {
  maxEntries: number
  clock?: Clock
  /** Until when (epoch ms) an entry is served: an entry is expired from that instant on. */
  expiresAt: (entry: V) => number
}

export class ExpiringMap<K, V> {
  readonly #entries: BoundedMap<K, V>
  readonly #clock: Clock
  readonly #expiresAt: (entry: V) => number

  constructor(options: ExpiringMapOptions<V>) {
    this.#entries = new BoundedMap(options.maxEntries)
    this.#clock = options.clock ?? systemClock
    this.#expiresAt = options.expiresAt
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (this.#expiresAt(entry) <= this.#clock.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  /** Stores `entry` as the newest. An entry already expired is not stored (and the key's old one is gone). */
  set(key: K, entry: V): void {
    if (this.#expiresAt(entry) <= this.#clock.now()) {
      this.#entries.delete(key)
      return
    }
    this.#entries.set(key, entry)
  }

  delete(key: K): void {
    this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }

  /** Oldest first, expired ones included (get drops them). */
  keys(): IterableIterator<K> {
    return this.#entries.keys()
  }
}

interface Entry<V> {
  value: V
  expiresAt: number
}

export class TtlCache<K, V> {
  readonly #entries: ExpiringMap<K, Entry<V>>

  constructor(options: { maxEntries: number; clock?: Clock }) {
    this.#entries = new ExpiringMap({
      maxEntries: options.maxEntries,
      clock: options.clock,
      expiresAt: (entry) => entry.expiresAt,
    })
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)?.value
  }

  /** Stores `value` until `expiresAt` (epoch ms). Entries already expired are not stored. */
  set(key: K, value: V, expiresAt: number): void {
    this.#entries.set(key, { value, expiresAt })
  }

  delete(key: K): void {
    this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }
}
