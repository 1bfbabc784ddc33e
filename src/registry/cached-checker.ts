/**
 * The registry client behind a result cache and single-flight, for the admission hot path:
 * a Deployment scaled to 500 replicas asks about one image 500 times at once, and must cost one
 * registry request.
 *
 * Keys never hold a credential in clear (a hash identifies it), and a check made with
 * credentials is keyed by namespace too: an answer earned with namespace A's secret is never
 * served to namespace B, even for the same image and the same secret name. Anonymous checks
 * are shared by everyone, since everyone would get the same answer.
 */
import { within } from '../cache/deadline.js'
import { SingleFlight } from '../cache/single-flight.js'
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { ImageReference } from '../reference/index.js'
import type { RegistryClient } from './client.js'
import { credentialIdentity, type Credential } from './credential.js'
import type { CheckResult } from './result.js'

export interface CachedCheckerOptions {
  /** "Exists" answers: long, since a pushed image rarely disappears. */
  existsTtlMs?: number
  /** Missing / denied answers: short, so a push or a new secret is seen quickly. */
  negativeTtlMs?: number
  /** Registry errors are never cached. Bound on entries (keys come from untrusted pod specs). */
  maxEntries?: number
  /** How long a shared registry check may run, whoever is waiting for it. */
  checkBudgetMs: number
  clock?: Clock
}

export const DEFAULT_EXISTS_TTL_MS = 5 * 60_000
export const DEFAULT_NEGATIVE_TTL_MS = 15_000
export const DEFAULT_MAX_ENTRIES = 100_000

export interface ImageChecker {
  check(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<CheckResult>
}

export class CachedChecker implements ImageChecker {
  readonly #client: RegistryClient
  readonly #cache: TtlCache<string, CheckResult>
  readonly #flight = new SingleFlight<string, CheckResult>()
  readonly #clock: Clock
  readonly #existsTtl: number
  readonly #negativeTtl: number
  readonly #budget: number

  constructor(client: RegistryClient, options: CachedCheckerOptions) {
    this.#client = client
    this.#clock = options.clock ?? systemClock
    this.#cache = new TtlCache({ maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES, clock: this.#clock })
    this.#existsTtl = options.existsTtlMs ?? DEFAULT_EXISTS_TTL_MS
    this.#negativeTtl = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS
    this.#budget = options.checkBudgetMs
  }

  async check(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<CheckResult> {
    const key = cacheKey(ref, credentials, namespace)
    const hit = this.#cache.get(key)
    if (hit !== undefined) return hit
    // The shared check runs on its own budget: one waiter's deadline must not cut it short for the others.
    const shared = this.#flight.run(key, async () => {
      const result = await this.#client.checkManifest(ref, credentials, { signal: AbortSignal.timeout(this.#budget) })
      const ttl = result.code === 'Exists' ? this.#existsTtl : result.code === 'RateLimited' || result.code === 'RegistryUnreachable' ? 0 : this.#negativeTtl
      if (ttl > 0) this.#cache.set(key, result, this.#clock.now() + ttl)
      return result
    })
    return within(shared, signal, timedOut)
  }
}

function cacheKey(ref: ImageReference, credentials: readonly Credential[], namespace: string): string {
  if (credentials.length === 0) return `anonymous\n${ref.canonical}`
  // Labels are part of the key so a cached answer names this pod's own secrets.
  const ids = credentials.map((c) => `${credentialIdentity(c)}:${c.label}`).join('\n')
  return `${namespace}\n${ids}\n${ref.canonical}`
}

function timedOut(): CheckResult {
  return { code: 'RegistryUnreachable', cause: 'timeout', detail: "the review's time budget ran out before the registry answered", attempts: [] }
}
