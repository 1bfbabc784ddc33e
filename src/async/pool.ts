/**
 * Work over a list with a bound on how much of it runs at once: the one worker pool (a review's
 * images, a pod's pull secrets, the stuck pods `diagnose` examines, an audit pass's images).
 *
 * 1. Without lanes, `limit` workers take the items in order, each the next one when it is done.
 * 2. With lanes (the audit: one per registry host), the items of a lane run one after another in
 *    their order, lanes run side by side, and `limit` bounds the work of all of them at once.
 *    `pace` is waited for before an item takes its place, so a lane waiting for its registry's
 *    rate holds no place another lane could use.
 * 3. Once `signal` aborts, no item starts, and waiting for a place stops: those items have no result.
 *
 * Results come in the items' order. A failure rejects the pool with it at once; the worker (or
 * lane) that failed stops, and the others go on to the end of the list unawaited, as the loops
 * this pool replaced did.
 */

export interface PoolOptions<T> {
  /** Items worked on at once, at most. */
  limit: number
  /** Items of one lane run one after another, in order; without lanes any item runs beside any other. */
  lane?: (item: T) => string
  /** Waited for before each item's turn, without holding a place (pacing). */
  pace?: (item: T) => Promise<void>
}

/** With a signal: an item that had not started when it aborted has no result (undefined). */
export function pool<T, R>(
  items: readonly T[],
  options: PoolOptions<T> & { signal: AbortSignal },
  work: (item: T) => Promise<R>,
): Promise<Array<R | undefined>>
export function pool<T, R>(items: readonly T[], options: PoolOptions<T>, work: (item: T) => Promise<R>): Promise<R[]>
export async function pool<T, R>(
  items: readonly T[],
  options: PoolOptions<T> & { signal?: AbortSignal },
  work: (item: T) => Promise<R>,
): Promise<Array<R | undefined>> {
  const { signal, pace } = options
  // Read afresh each time: the signal may abort while a runner waits.
  const aborted = (): boolean => signal?.aborted === true
  const results = new Array<R | undefined>(items.length)
  const places = new Places(options.limit)
  // A runner takes the next index of its queue until the queue is done: workers share one queue,
  // a lane is a queue with one runner.
  const runner = async (queue: Iterator<number>): Promise<void> => {
    for (let next = queue.next(); next.done !== true; next = queue.next()) {
      if (aborted()) return
      const item = items[next.value]!
      if (pace !== undefined) {
        await pace(item)
        if (aborted()) return
      }
      if (!places.take() && !(await places.waitFor(signal))) return
      try {
        if (aborted()) return
        results[next.value] = await work(item)
      } finally {
        places.give()
      }
    }
  }
  const laneOf = options.lane
  if (laneOf === undefined) {
    const queue = items.keys()
    await Promise.all(Array.from({ length: Math.min(options.limit, items.length) }, () => runner(queue)))
  } else {
    const lanes = new Map<string, number[]>()
    items.forEach((item, i) => {
      const key = laneOf(item)
      const lane = lanes.get(key)
      if (lane === undefined) lanes.set(key, [i])
      else lane.push(i)
    })
    await Promise.all([...lanes.values()].map((lane) => runner(lane.values())))
  }
  return results
}

/** `limit` places, handed to waiters first come, first served. */
class Places {
  #free: number
  readonly #waiting: Array<() => void> = []

  constructor(limit: number) {
    if (!(limit > 0)) throw new RangeError('limit must be positive')
    this.#free = limit
  }

  /** A place now, if one is free. */
  take(): boolean {
    if (this.#free === 0) return false
    this.#free--
    return true
  }

  /** A place once one is given back: true; false when the signal aborts first. */
  waitFor(signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted === true) return Promise.resolve(false)
    return new Promise((resolve) => {
      const go = (): void => {
        signal?.removeEventListener('abort', abandon)
        resolve(true)
      }
      const abandon = (): void => {
        const i = this.#waiting.indexOf(go)
        if (i >= 0) this.#waiting.splice(i, 1)
        resolve(false)
      }
      this.#waiting.push(go)
      signal?.addEventListener('abort', abandon, { once: true })
    })
  }

  give(): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next()
    else this.#free++
  }
}
