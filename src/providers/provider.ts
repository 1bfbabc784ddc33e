/**
 * One configured credential provider: the kubelet's pluginProvider.provide (plugin.go, v1.37) for
 * pods without service-account tokens.
 * 1. An image (its repository name, `docker.io/library/nginx`) outside `matchImages`: nothing, and
 *    no exec.
 * 2. The cache is asked for the image, then its registry (the first path segment, port included),
 *    then the global key: the first live answer is used.
 * 3. Otherwise one exec per image at a time (single-flight; the kubelet's key is the image too),
 *    and at most `maxConcurrentExecs` plugin processes across all images; waiting callers give up at
 *    their own deadline while the exec goes on for the others.
 * 4. The answer is cached under the key its cacheKeyType names, for cacheDuration, else the
 *    provider's defaultCacheDuration; a duration of 0 is not cached. A failed exec or a refused
 *    answer is never cached: the next review runs the plugin again, as the next pull does.
 * Credentials live in this memory only; keys of the cache and of single-flight are image and host
 * names, never a credential.
 */
import { SingleFlight } from '../cache/single-flight.js'
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import { within } from '../cache/deadline.js'
import type { KeyringEntry } from '../credentials/keyring.js'
import type { ProviderSpec } from './config.js'
import { decodeResponse, encodeRequest, type PluginResponse } from './exchange.js'
import { runPlugin, type ExecProblemCode } from './exec.js'
import { imageAllowed } from './match-images.js'
import type { ExecLimiter } from './limiter.js'

/** The kubelet's globalCacheKey. */
const GLOBAL_KEY = '<global>'
/** Image-keyed answers come from image names in pod specs: bounded (the kubelet's cache is not). */
const MAX_CACHED_ANSWERS = 10_000

export type ProviderProblemCode = ExecProblemCode | 'PluginBadResponse' | 'PluginTimedOut'

export type Provided =
  | { kind: 'none' }
  | { kind: 'credentials'; entries: KeyringEntry[] }
  | { kind: 'failed'; provider: string; code: ProviderProblemCode; problem: string }

export interface ProviderOptions {
  /** The environment plugins start with (the kubelet passes its own). */
  baseEnv: Readonly<Record<string, string | undefined>>
  /** Per exec; never more than the kubelet's minute. */
  execTimeoutMs: number
  limiter: ExecLimiter
  clock?: Clock
  /** Every exec's outcome, for metrics: `ok` or a problem code. */
  onExec?: (provider: string, outcome: 'ok' | ProviderProblemCode, seconds: number) => void
}

export class CredentialProvider {
  readonly name: string
  readonly #spec: ProviderSpec & { binary: string }
  readonly #options: ProviderOptions
  readonly #clock: Clock
  readonly #cache: TtlCache<string, KeyringEntry[]>
  readonly #flight = new SingleFlight<string, Provided>()
  /** Execs started, for tests and metrics. */
  execs = 0

  constructor(spec: ProviderSpec & { binary: string }, options: ProviderOptions) {
    this.name = spec.name
    this.#spec = spec
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#cache = new TtlCache({ maxEntries: MAX_CACHED_ANSWERS, clock: this.#clock })
  }

  get cached(): number {
    return this.#cache.size
  }

  matches(repository: string): boolean {
    return imageAllowed(this.#spec.matchImages, repository)
  }

  /** Credentials for one repository name, within the caller's deadline. */
  provide(repository: string, signal?: AbortSignal): Promise<Provided> {
    if (!this.matches(repository)) return Promise.resolve({ kind: 'none' })
    for (const key of [repository, registryOf(repository), GLOBAL_KEY]) {
      const hit = this.#cache.get(key)
      if (hit !== undefined) return Promise.resolve({ kind: 'credentials', entries: hit })
    }
    const shared = this.#flight.run(repository, () => this.#exec(repository))
    return within(shared, signal, () => ({ kind: 'failed', provider: this.name, code: 'PluginTimedOut', problem: `credential provider plugin ${this.name} had not answered when the review's time ran out` }))
  }

  async #exec(repository: string): Promise<Provided> {
    const release = await this.#options.limiter.acquire()
    const started = this.#clock.now()
    try {
      this.execs++
      const ran = await runPlugin(this.#spec, encodeRequest(this.#spec.apiVersion, repository), { baseEnv: this.#options.baseEnv, timeoutMs: this.#options.execTimeoutMs })
      const seconds = (this.#clock.now() - started) / 1000
      if (!ran.ok) {
        this.#options.onExec?.(this.name, ran.code, seconds)
        return { kind: 'failed', provider: this.name, code: ran.code, problem: ran.problem }
      }
      const decoded = decodeResponse(ran.stdout, this.#spec.apiVersion)
      if (!decoded.ok) {
        this.#options.onExec?.(this.name, 'PluginBadResponse', seconds)
        return { kind: 'failed', provider: this.name, code: 'PluginBadResponse', problem: `credential provider plugin ${this.name}: ${decoded.problem}` }
      }
      this.#options.onExec?.(this.name, 'ok', seconds)
      const entries = this.#entries(decoded.response)
      this.#store(repository, decoded.response, entries)
      return { kind: 'credentials', entries }
    } finally {
      release()
    }
  }

  #entries(response: PluginResponse): KeyringEntry[] {
    return response.auth.map(({ key, username, password }) => ({ key, username, password, label: `credential provider ${this.name} (key ${JSON.stringify(key)})` }))
  }

  #store(repository: string, response: PluginResponse, entries: KeyringEntry[]): void {
    const duration = response.cacheDurationMs ?? this.#spec.defaultCacheDurationMs ?? 0
    // cacheDuration 0, or none with a default of 0: not cached. A negative one is stored already expired.
    if (response.cacheDurationMs === 0 || (response.cacheDurationMs === undefined && duration === 0)) return
    const key = response.cacheKeyType === 'Image' ? repository : response.cacheKeyType === 'Registry' ? registryOf(repository) : GLOBAL_KEY
    // The kubelet's entry is expired only once now is past expiresAt; TtlCache's at expiresAt.
    this.#cache.set(key, entries, this.#clock.now() + duration + 1)
  }

  /** The config changed or the process stops: forget every answer. */
  clear(): void {
    this.#cache.clear()
  }
}

/** plugin.go parseRegistry: everything before the first "/" (the host, port included). */
export function registryOf(repository: string): string {
  const slash = repository.indexOf('/')
  return slash < 0 ? repository : repository.slice(0, slash)
}
