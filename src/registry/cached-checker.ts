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
import type { RegistryPauses } from './pauses.js'
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
  /** Told about every lookup (`hit`/`miss`) and about checks starting (+1) and ending (-1). */
  observer?: CheckObserver
}

export interface CheckObserver {
  lookup(cache: 'result' | 'tags', hit: boolean): void
  inflight(delta: 1 | -1): void
}

export const DEFAULT_EXISTS_TTL_MS = 5 * 60_000
export const DEFAULT_NEGATIVE_TTL_MS = 15_000
export const DEFAULT_MAX_ENTRIES = 100_000

/** A tag list feeds one suggestion; a minute is fresh enough and spares the registry. */
export const TAGS_TTL_MS = 60_000
/**
 * A list holds up to 10 000 tags of up to 128 characters (about 1.3 MB at worst, a few KB
 * usually), and repositories come from untrusted pod specs: keep few lists.
 */
const MAX_TAG_LISTS = 64

export interface ImageChecker {
  check(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<CheckResult>
  /** The repository's tags (for suggestions), or undefined when they cannot be had in time. */
  tags(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<readonly string[] | undefined>
}

export class CachedChecker implements ImageChecker {
  readonly #client: RegistryClient
  readonly #cache: TtlCache<string, CheckResult>
  readonly #flight = new SingleFlight<string, CheckResult>()
  readonly #clock: Clock
  readonly #existsTtl: number
  readonly #negativeTtl: number
  readonly #budget: number
  /** Tag lists are made lazily: most checkers never see a missing tag. */
  #tagCache: TtlCache<string, readonly string[] | null> | undefined
  #tagFlight: SingleFlight<string, readonly string[] | undefined> | undefined

  readonly #observer: CheckObserver | undefined
  /** Expiry of each cached result object (weak: an evicted result takes its entry with it). */
  readonly #expiry = new WeakMap<CheckResult, number>()

  constructor(client: RegistryClient, options: CachedCheckerOptions) {
    this.#client = client
    this.#observer = options.observer
    this.#clock = options.clock ?? systemClock
    this.#cache = new TtlCache({ maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES, clock: this.#clock })
    this.#existsTtl = options.existsTtlMs ?? DEFAULT_EXISTS_TTL_MS
    this.#negativeTtl = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS
    this.#budget = options.checkBudgetMs
  }

  /** Registries that answered 429 (the client's: shared by every review and the audit). */
  get pauses(): RegistryPauses {
    return this.#client.pauses
  }

  /**
   * Until when `result` (as returned by check) is served from the cache; undefined for answers that
   * are not cached (registry errors, rate limits, timeouts). A memo built on a result must not
   * outlive it.
   */
  expiresAt(result: CheckResult): number | undefined {
    return this.#expiry.get(result)
  }

  /** Results held now (bounded by maxEntries). */
  get size(): number {
    return this.#cache.size
  }

  async check(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<CheckResult> {
    const key = cacheKey(ref, credentials, namespace, this.#client.routeGeneration)
    const hit = this.#cache.get(key)
    this.#observer?.lookup('result', hit !== undefined)
    if (hit !== undefined) return hit
    return this.#ask(key, ref, credentials, signal)
  }

  /**
   * The registry's answer now, never a cached one, stored for everyone after (the audit: it is
   * there to see what changed since the cache was filled). Shares a check already in flight.
   */
  fresh(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<CheckResult> {
    return this.#ask(cacheKey(ref, credentials, namespace, this.#client.routeGeneration), ref, credentials, signal)
  }

  async #ask(key: string, ref: ImageReference, credentials: readonly Credential[], signal: AbortSignal | undefined): Promise<CheckResult> {
    // The shared check runs on its own budget: one waiter's deadline must not cut it short for the others.
    const shared = this.#flight.run(key, async () => {
      this.#observer?.inflight(1)
      // A paused registry (429) is answered by the client from memory, without a request.
      const result = await this.#client.checkManifest(ref, credentials, { signal: AbortSignal.timeout(this.#budget) }).finally(() => this.#observer?.inflight(-1))
      const ttl = result.code === 'Exists' ? this.#existsTtl : result.code === 'RateLimited' || result.code === 'RegistryUnreachable' ? 0 : this.#negativeTtl
      if (ttl <= 0) return result
      // Everyone, the first caller included, gets the object the cache holds, so expiresAt knows it.
      const cached = forCache(result)
      const expiresAt = this.#clock.now() + ttl
      this.#cache.set(key, cached, expiresAt)
      this.#expiry.set(cached, expiresAt)
      return cached
    })
    return within(shared, signal, timedOut)
  }

  /**
   * The repository's tags for a suggestion, cached for a minute under the same key scheme as
   * `check` (namespace and credential hashes; anonymous lists shared) and fetched once for all
   * concurrent waiters. A failed listing is remembered as briefly as a negative answer, so a
   * registry that refuses listing is not asked again by every review of a broken Deployment.
   * Never throws; undefined when no list could be read.
   */
  async tags(ref: ImageReference, credentials: readonly Credential[], namespace: string, signal?: AbortSignal): Promise<readonly string[] | undefined> {
    const key = `tags\n${this.#client.routeGeneration}\n${identityKey(credentials, namespace)}\n${ref.name}`
    const cache = (this.#tagCache ??= new TtlCache({ maxEntries: MAX_TAG_LISTS, clock: this.#clock }))
    const hit = cache.get(key)
    this.#observer?.lookup('tags', hit !== undefined)
    if (hit !== undefined) return hit ?? undefined
    const flight = (this.#tagFlight ??= new SingleFlight())
    // Like check: the shared listing keeps its own budget (the client's), whoever gave up waiting.
    const shared = flight.run(key, async () => {
      const tags = await this.#client.listTags(ref, credentials).catch(() => undefined)
      cache.set(key, tags ?? null, this.#clock.now() + (tags === undefined ? this.#negativeTtl : TAGS_TTL_MS))
      return tags
    })
    return within(shared, signal, () => undefined)
  }
}

/** `generation`: the mirrors' configuration the answer was had under (0 without mirrors). */
function cacheKey(ref: ImageReference, credentials: readonly Credential[], namespace: string, generation: number): string {
  const route = generation === 0 ? '' : `${generation}\n`
  if (credentials.length === 0) return `${route}anonymous\n${ref.canonical}`
  // Labels are part of the key so a cached answer names this pod's own secrets.
  const ids = credentials.map((c) => `${credentialIdentity(c)}:${c.label}`).join('\n')
  return `${route}${namespace}\n${ids}\n${ref.canonical}`
}

/**
 * What a cached answer keeps: the verdict without the per-attempt log, which only the first caller
 * can use (nothing downstream reads it) and which would be most of an entry's memory.
 */
const NO_ATTEMPTS: CheckResult['attempts'] = Object.freeze([]) as unknown as CheckResult['attempts']
function forCache(result: CheckResult): CheckResult {
  return result.attempts.length === 0 ? result : { ...result, attempts: NO_ATTEMPTS }
}

function timedOut(): CheckResult {
  return { code: 'RegistryUnreachable', cause: 'timeout', detail: "the review's time budget ran out before the registry answered", attempts: [] }
}

function identityKey(credentials: readonly Credential[], namespace: string): string {
  if (credentials.length === 0) return 'anonymous'
  return `${namespace}\n${credentials.map((c) => `${credentialIdentity(c)}:${c.label}`).join('\n')}`
}
