/**
 * Registries that answered 429: until the pause they asked for (Retry-After) is over, no review
 * asks them again. A rate-limited registry counts every request, so asking it on each review only
 * keeps the limit in force (Docker Hub's is per source IP: every node pulling behind the same NAT
 * pays for it); meanwhile pullguard answers RateLimited from memory and --on-registry-error decides.
 */
import type { Clock } from '../cache/ttl-cache.js'

/** Without Retry-After: long enough to let a burst pass, short enough not to lose much checking. */
export const DEFAULT_PAUSE_MS = 30_000
/** A Retry-After of hours (or a bogus one) must not switch checking off for that long. */
export const MAX_PAUSE_MS = 15 * 60_000
/** Hosts come from pod specs; a 429 needs an HTTP answer, but anyone can run a server that sends one. */
const MAX_PAUSED_HOSTS = 1024

export class RegistryPauses {
  readonly #until = new Map<string, number>()

  constructor(private readonly clock: Clock) {}

  /** Starts (or extends) a pause for `host`; returns when it ends. */
  pause(host: string, retryAfterSeconds: number | undefined): number {
    const ms = retryAfterSeconds === undefined ? DEFAULT_PAUSE_MS : Math.min(MAX_PAUSE_MS, Math.max(1_000, retryAfterSeconds * 1000))
    const until = Math.max(this.#until.get(host) ?? 0, this.clock.now() + ms)
    this.#until.delete(host)
    this.#until.set(host, until)
    if (this.#until.size > MAX_PAUSED_HOSTS) {
      const oldest = this.#until.keys().next().value
      if (oldest !== undefined) this.#until.delete(oldest)
    }
    return until
  }

  /** Milliseconds left of `host`'s pause, or undefined when it may be asked. */
  remaining(host: string): number | undefined {
    const until = this.#until.get(host)
    if (until === undefined) return undefined
    const left = until - this.clock.now()
    if (left > 0) return left
    this.#until.delete(host)
    return undefined
  }

  /** Every pause still running, host → milliseconds left (for metrics). */
  current(): Map<string, number> {
    const out = new Map<string, number>()
    for (const host of [...this.#until.keys()]) {
      const left = this.remaining(host)
      if (left !== undefined) out.set(host, left)
    }
    return out
  }
}
