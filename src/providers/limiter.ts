/**
 * At most N plugin processes at once across all providers: a flood of reviews naming new images
 * must not fork without bound. Waiters are served in arrival order.
 */
export class ExecLimiter {
  readonly #max: number
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(max: number) {
    if (!(Number.isInteger(max) && max > 0)) throw new RangeError('max must be a positive integer')
    this.#max = max
  }

  get running(): number {
    return this.#running
  }

  /** Resolves with a release function once a slot is free. */
  acquire(): Promise<() => void> {
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
