/**
 * A list read from the API and kept, for reviews that must not wait on the API server:
 *  1. The first caller starts a read and waits for it only as long as its own deadline allows;
 *     until a value exists the answer is undefined (unknown).
 *  2. After that, callers get the last value at once. Once it is older than the refresh interval,
 *     the next caller starts a background read (stale-while-revalidate).
 *  3. A failed read keeps the last value and is retried after a short pause, not on every call:
 *     an API server in trouble must not get one list per admission request.
 */
import { within } from '../async/deadline.js'
import { systemClock, type Clock } from '../cache/ttl-cache.js'
import type { Lookup } from './sources.js'

export interface RefreshedOptions {
  /** How long a value read is used before it is read again. */
  refreshMs: number
  /** After a failed read, how long before the next try. */
  retryMs: number
  /** Bound on one read (all pages), whoever waits for it. */
  readTimeoutMs: number
  clock?: Clock
  /** Told after each read: the value, or why there is none (the last value is kept). */
  onRead?: (result: { ok: true } | { ok: false; detail: string }) => void
}

export class Refreshed<T> {
  readonly #read: (signal: AbortSignal) => Promise<Lookup<T>>
  readonly #options: RefreshedOptions
  readonly #clock: Clock
  #known: T | undefined
  #dueAt = 0
  #reading: Promise<void> | undefined

  constructor(read: (signal: AbortSignal) => Promise<Lookup<T>>, options: RefreshedOptions) {
    this.#read = read
    this.#options = options
    this.#clock = options.clock ?? systemClock
  }

  /** The value, waiting (within `signal`) only while none has been read. Never throws. */
  async get(signal?: AbortSignal): Promise<T | undefined> {
    const now = this.current()
    if (now !== undefined) return now
    await within(this.#reading ?? Promise.resolve(), signal, () => undefined)
    return this.#known
  }

  /** The value now, without waiting; starts a due read. */
  current(): T | undefined {
    if (this.#clock.now() >= this.#dueAt) this.#start()
    return this.#known
  }

  #start(): void {
    if (this.#reading !== undefined) return
    this.#reading = this.#readOnce().finally(() => {
      this.#reading = undefined
    })
  }

  async #readOnce(): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.#options.readTimeoutMs)
    timer.unref()
    let detail: string
    try {
      const r = await this.#read(controller.signal)
      if (r.kind === 'found') {
        this.#known = r.object
        this.#dueAt = this.#clock.now() + this.#options.refreshMs
        this.#options.onRead?.({ ok: true })
        return
      }
      detail = r.kind === 'missing' ? 'the list was not found (HTTP 404)' : r.detail
    } catch (err) {
      // Sources return Lookups; a throw is a bug in one, and must not break a review.
      detail = `the source failed (${err instanceof Error ? err.name : 'unknown error'})`
    } finally {
      clearTimeout(timer)
    }
    this.#dueAt = this.#clock.now() + this.#options.retryMs
    this.#options.onRead?.({ ok: false, detail })
  }
}
