// Virtual time for paced loops: every sleeper wakes in order of its wake time, once everything
// else is waiting (a setImmediate per sleep lets pending promise chains run first).
import type { PassClock } from '../../src/auditor/pass.js'

export function virtualClock(): PassClock & { t: number } {
  const waiters: Array<{ at: number; wake: () => void }> = []
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted === true) return resolve()
        const waiter = { at: clock.t + Math.max(0, ms), wake: resolve }
        waiters.push(waiter)
        signal?.addEventListener(
          'abort',
          () => {
            const i = waiters.indexOf(waiter)
            if (i >= 0) waiters.splice(i, 1)
            resolve()
          },
          { once: true },
        )
        setImmediate(() => {
          waiters.sort((a, b) => a.at - b.at)
          const next = waiters.shift()
          if (next === undefined) return
          clock.t = Math.max(clock.t, next.at)
          next.wake()
        })
      }),
  }
  return clock
}
