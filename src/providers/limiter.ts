/**
 * At most N plugin processes at once across all providers: a flood of reviews naming new images
 * must not fork without bound. Waiters are served in arrival order, and at most `maxWaiting` wait:
 * with plugins that hang, a queue of one run per new image name would otherwise grow without end.
 */
export class ExecLimiter {
  readonly #max: number
  readonly #maxWaiting: number
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(max: number, maxWaiting = 256) {
    if (!(Number.isInteger(max) && max > 0)) throw new RangeError('max must be a positive integer')
    this.#max = max
    this.#maxWaiting = maxWaiting
  }

  get running(): number {
    return this.#running
  }

  /** Resolves with a release function once a slot is free; undefined at once when too many wait. */
  acquire(): Promise<(() => void) | undefined> {
    if (this.#running >= this.#max && this.#waiting.length >= this.#maxWaiting) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const start = (): void => {
        this.#running++
        let released = false
        resolve(() => {
          if (released) return
          released = true
          this.#running--
          this.#waiting.shift()?.()
        })
      }
      if (this.#running < this.#max) start()
      else this.#waiting.push(start)
    })
  }
}
