/**
 * Registries that answered 429: until the pause they asked for (Retry-After) is over, no review
 * asks them again. A rate-limited registry counts every request, so asking it on each review only
 * keeps the limit in force (Docker Hub's is per source IP: every node pulling behind the same NAT
 * pays for it); meanwhile pullguard answers RateLimited from memory and --on-registry-error decides.
 */
import { ExpiringMap, type Clock } from '../cache/ttl-cache.js'

/** Without Retry-After: long enough to let a burst pass, short enough not to lose much checking. */
export const DEFAULT_PAUSE_MS = 30_000
/** A Retry-After of hours (or a bogus one) must not switch checking off for that long. */
export const MAX_PAUSE_MS = 15 * 60_000
/** Hosts come from pod specs; a 429 needs an HTTP answer, but anyone can run a server that sends one. */
const MAX_PAUSED_HOSTS = 1024

export class RegistryPauses {
  /** Host → when its pause ends: the entry is its own expiry. */
  readonly #until: ExpiringMap<string, number>

  constructor(private readonly clock: Clock) {
    this.#until = new ExpiringMap({ maxEntries: MAX_PAUSED_HOSTS, clock, expiresAt: (until) => until })
  }

  /** Starts (or extends) a pause for `host`; returns when it ends. */
  pause(host: string, retryAfterSeconds: number | undefined): number {
    const ms =
      retryAfterSeconds === undefined
        ? DEFAULT_PAUSE_MS
        : Math.min(MAX_PAUSE_MS, Math.max(1_000, retryAfterSeconds * 1000))
    const until = Math.max(this.#until.get(host) ?? 0, this.clock.now() + ms)
    this.#until.set(host, until)
    return until
  }

  /** Milliseconds left of `host`'s pause, or undefined when it may be asked. */
  remaining(host: string): number | undefined {
    const until = this.#until.get(host)
    const left = until === undefined ? 0 : until - this.clock.now()
    return left > 0 ? left : undefined
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
