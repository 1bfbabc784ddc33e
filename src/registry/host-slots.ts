/**
 * A cap on the requests in flight to one registry host, shared by everything that asks it (every
 * review, the audit, tag listings): a slow registry then holds at most `limit` requests, and the
 * rest wait their turn in order, each no longer than its own deadline. A registry that lets
 * requests hang cannot take every socket, and one that throttles busy clients is not pushed into
 * throttling.
 */
import { TransportError } from './transport-error.js'

export const DEFAULT_REQUESTS_PER_REGISTRY = 8

interface Waiter {
  resolve(release: () => void): void
  reject(err: unknown): void
}

interface HostState {
  active: number
  queue: Waiter[]
}

export class HostSlots {
  readonly #limit: number
  readonly #hosts = new Map<string, HostState>()

  constructor(limit: number = DEFAULT_REQUESTS_PER_REGISTRY) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError('the per-registry request cap must be a positive integer')
    this.#limit = limit
  }

  get limit(): number {
    return this.#limit
  }

  /**
   * A slot for `host`; call the returned function exactly once when the request is done. Rejects
   * with a timeout TransportError when `signal` fires while waiting.
   */
  acquire(host: string, signal: AbortSignal | undefined): Promise<() => void> {
    let state = this.#hosts.get(host)
    if (state === undefined) this.#hosts.set(host, (state = { active: 0, queue: [] }))
    if (state.active < this.#limit) {
      state.active++
      return Promise.resolve(this.#releaser(host, state))
    }
    if (signal?.aborted === true) return Promise.reject(waitedTooLong(host))
    const s = state
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (release) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
        reject,
      }
      const onAbort = (): void => {
        const i = s.queue.indexOf(waiter)
        if (i >= 0) s.queue.splice(i, 1)
        this.#forgetIfIdle(host, s)
        reject(waitedTooLong(host))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      s.queue.push(waiter)
    })
  }

  /** Requests in flight and waiting, per host with any (for the metrics). */
  current(): ReadonlyMap<string, { active: number; queued: number }> {
    const out = new Map<string, { active: number; queued: number }>()
    for (const [host, s] of this.#hosts) out.set(host, { active: s.active, queued: s.queue.length })
    return out
  }

  #releaser(host: string, state: HostState): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = state.queue.shift()
      // The slot passes straight to the next waiter: no one can overtake the queue in between.
      if (next !== undefined) next.resolve(this.#releaser(host, state))
      else {
        state.active--
        this.#forgetIfIdle(host, state)
      }
    }
  }

  /** Hosts come from untrusted pod specs: keep state only while it is in use. */
  #forgetIfIdle(host: string, state: HostState): void {
    if (state.active === 0 && state.queue.length === 0 && this.#hosts.get(host) === state) this.#hosts.delete(host)
  }
}

function waitedTooLong(host: string): TransportError {
  return new TransportError(
    'timeout',
    `the time budget ran out waiting for a free request slot to ${host} (the per-registry request cap)`,
  )
}
