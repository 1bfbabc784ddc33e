/**
 * One configured credential provider: the kubelet's pluginProvider.provide (plugin.go, v1.37).
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
 * With `tokenAttributes` (service-account mode) the pod's account takes part: no account and
 * requireServiceAccount, or a required annotation missing, means no exec and no credentials (a
 * `skipped` answer, so a refusal can say why); otherwise a token for the provider's audience and
 * the named annotations go to the plugin, and the cache and single-flight keys carry the account
 * (namespace, name, uid, annotations; plus the token's hash for cacheType Token).
 * Credentials live in this memory only; cache keys hold names and a token's hash, never a credential.
 */
import { createHash } from 'node:crypto'
import { SingleFlight } from '../async/single-flight.js'
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import { within } from '../async/deadline.js'
import type { KeyringEntry } from '../credentials/keyring.js'
import { imageAllowed, type ProviderSpec } from './spec.js'
import { decodeResponse, encodeRequest, type PluginResponse } from './exchange.js'
import { runPlugin, type ExecProblemCode } from './exec.js'
import type { ExecLimiter } from './limiter.js'
import type { ServiceAccountTokens } from './service-account-tokens.js'

/** The kubelet's globalCacheKey. */
const GLOBAL_KEY = '<global>'
/** Image-keyed answers come from image names in pod specs: bounded (the kubelet's cache is not). */
const MAX_CACHED_ANSWERS = 10_000

export type ProviderProblemCode =
  | ExecProblemCode
  | 'PluginBadResponse'
  | 'PluginTimedOut'
  | 'ServiceAccountUnreadable'
  | 'TokenRequestFailed'

/**
 * Why the kubelet would not run a provider whose matchImages cover the image (plugin.go
 * pluginProvider.provide): it returns no credentials and no error, so the pull goes on without
 * them, and logs the reason only at verbosity 5 — nothing on the pod says why.
 * - RequiredAnnotationMissing: getServiceAccountData's requiredAnnotationNotFoundError. `missing`
 *   is every required key the account lacks, in config order (the kubelet stops at the first; one
 *   command should add them all). An annotation present with an empty value counts as present.
 * - NoServiceAccount: requireServiceAccount and an empty service account name (static pods).
 */
export type ProviderSkip =
  | {
      provider: string
      reason: 'RequiredAnnotationMissing'
      namespace: string
      serviceAccount: string
      missing: string[]
    }
  | { provider: string; reason: 'NoServiceAccount' }

export type Provided =
  | { kind: 'none' }
  | { kind: 'skipped'; skip: ProviderSkip }
  /** `reusableUntil`: until when the same answer would come back (its cache expiry; 0 when not cached). */
  | { kind: 'credentials'; entries: KeyringEntry[]; reusableUntil: number }
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
  /** Service accounts and their tokens, for providers with tokenAttributes. */
  tokens?: ServiceAccountTokens
}

/** Who will pull: the pod's namespace and service account (`default` when the spec names none). */
export interface PodIdentity {
  namespace: string
  serviceAccountName: string
}

/** What a service-account-mode request adds: the token, the annotations, and the keys they make. */
interface AccountPart {
  token: string | undefined
  annotations: Record<string, string> | undefined
  /** Appended to every cache key (the kubelet's saKey); "" outside service-account mode. */
  cacheSuffix: string
  /** Appended to the single-flight key. */
  flightSuffix: string
}
const NO_ACCOUNT: AccountPart = { token: undefined, annotations: undefined, cacheSuffix: '', flightSuffix: '' }

export class CredentialProvider {
  readonly name: string
  readonly #spec: ProviderSpec & { binary: string }
  readonly #options: ProviderOptions
  readonly #clock: Clock
  readonly #cache: TtlCache<string, { entries: KeyringEntry[]; expiresAt: number }>
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

  matches(repository: string): boolean {
    return imageAllowed(this.#spec.matchImages, repository)
  }

  /** Credentials for one repository name, within the caller's deadline. */
  async provide(repository: string, signal?: AbortSignal, pod?: PodIdentity): Promise<Provided> {
    if (!this.matches(repository)) return { kind: 'none' }
    const account = await this.#account(pod, signal)
    if ('kind' in account) return account
    for (const key of [repository, registryOf(repository), GLOBAL_KEY]) {
      const hit = this.#cache.get(key + account.cacheSuffix)
      // An answer for one account is not reused beyond a review (accounts and tokens change apart from it).
      if (hit !== undefined)
        return { kind: 'credentials', entries: hit.entries, reusableUntil: account === NO_ACCOUNT ? hit.expiresAt : 0 }
    }
    const shared = this.#flight.run(repository + account.flightSuffix, () => this.#exec(repository, account))
    return within(shared, signal, () => ({
      kind: 'failed',
      provider: this.name,
      code: 'PluginTimedOut',
      problem: `credential provider plugin ${this.name} had not answered when the review's time ran out`,
    }))
  }

  /** plugin.go provide, service-account part: `skipped` where the kubelet returns no credentials without an exec. */
  async #account(
    pod: PodIdentity | undefined,
    signal: AbortSignal | undefined,
  ): Promise<AccountPart | Extract<Provided, { kind: 'skipped' | 'failed' }>> {
    const ta = this.#spec.tokenAttributes
    if (ta === undefined) return NO_ACCOUNT
    const name = pod?.serviceAccountName ?? ''
    // pullguard always names an account (`default`, policy/assess.ts); kept as the kubelet's rule (static pods have none).
    if (name === '')
      return ta.requireServiceAccount === true
        ? { kind: 'skipped', skip: { provider: this.name, reason: 'NoServiceAccount' } }
        : NO_ACCOUNT
    const failed = (code: ProviderProblemCode, problem: string): Extract<Provided, { kind: 'failed' }> => ({
      kind: 'failed',
      provider: this.name,
      code,
      problem: `credential provider plugin ${this.name}: ${problem}`,
    })
    const tokens = this.#options.tokens
    if (tokens === undefined)
      return failed('ServiceAccountUnreadable', 'needs service-account tokens, which this command cannot request')
    const found = await tokens.account(pod!.namespace, name, signal)
    if (found.kind !== 'found')
      return failed(
        'ServiceAccountUnreadable',
        `service account ${pod!.namespace}/${name} could not be read (${found.kind === 'missing' ? 'not found' : found.detail})`,
      )
    const sa = found.object
    // Before any token is asked for, as getServiceAccountData runs before getServiceAccountToken.
    const missing = ta.requiredServiceAccountAnnotationKeys.filter((key) => sa.annotations[key] === undefined)
    if (missing.length > 0) {
      const skip: ProviderSkip = {
        provider: this.name,
        reason: 'RequiredAnnotationMissing',
        namespace: sa.namespace,
        serviceAccount: sa.name,
        missing,
      }
      return { kind: 'skipped', skip }
    }
    const annotations: Record<string, string> = {}
    for (const key of ta.requiredServiceAccountAnnotationKeys) annotations[key] = sa.annotations[key]!
    for (const key of ta.optionalServiceAccountAnnotationKeys)
      if (sa.annotations[key] !== undefined) annotations[key] = sa.annotations[key]!
    const token = await tokens.token(sa, ta.serviceAccountTokenAudience, signal)
    if (token.kind !== 'found') {
      return failed(
        'TokenRequestFailed',
        token.kind === 'forbidden'
          ? `pullguard may not create serviceaccounts/token for ${sa.namespace}/${sa.name} (403): grant create on serviceaccounts/token (manifests/overlays/credential-provider-tokens)`
          : `a token for service account ${sa.namespace}/${sa.name} could not be requested (${token.kind === 'missing' ? 'not found' : token.detail})`,
      )
    }
    const sorted = Object.keys(annotations)
      .sort()
      .map((k) => [k, annotations[k]])
    const tokenHash = `sha256:${createHash('sha256').update(token.object).digest('hex')}`
    const cacheSuffix = `\0${JSON.stringify([sa.namespace, sa.name, sa.uid, sorted, ...(ta.cacheType === 'Token' ? [tokenHash] : [])])}`
    return { token: token.object, annotations, cacheSuffix, flightSuffix: `\0${JSON.stringify([tokenHash, sorted])}` }
  }

  async #exec(repository: string, account: AccountPart): Promise<Provided> {
    const release = await this.#options.limiter.acquire()
    if (release === undefined)
      return {
        kind: 'failed',
        provider: this.name,
        code: 'PluginTimedOut',
        problem: `credential provider plugin ${this.name} was not run: too many plugin runs are waiting`,
      }
    const started = this.#clock.now()
    try {
      this.execs++
      const ran = await runPlugin(
        this.#spec,
        encodeRequest(this.#spec.apiVersion, repository, account.token, account.annotations),
        { baseEnv: this.#options.baseEnv, timeoutMs: this.#options.execTimeoutMs },
      )
      const seconds = (this.#clock.now() - started) / 1000
      if (!ran.ok) {
        this.#options.onExec?.(this.name, ran.code, seconds)
        return { kind: 'failed', provider: this.name, code: ran.code, problem: ran.problem }
      }
      const decoded = decodeResponse(ran.stdout, this.#spec.apiVersion)
      if (!decoded.ok) {
        this.#options.onExec?.(this.name, 'PluginBadResponse', seconds)
        return {
          kind: 'failed',
          provider: this.name,
          code: 'PluginBadResponse',
          problem: `credential provider plugin ${this.name}: ${decoded.problem}`,
        }
      }
      // plugin.go: the token itself as a password is only acceptable when answers are cached per token.
      if (
        account.token !== undefined &&
        this.#spec.tokenAttributes?.cacheType !== 'Token' &&
        decoded.response.auth.some((a) => a.password === account.token)
      ) {
        this.#options.onExec?.(this.name, 'PluginBadResponse', seconds)
        return {
          kind: 'failed',
          provider: this.name,
          code: 'PluginBadResponse',
          problem: `credential provider plugin ${this.name} returned the service account token as the password which is not allowed when service account cache type is not set to 'Token'`,
        }
      }
      this.#options.onExec?.(this.name, 'ok', seconds)
      const entries = this.#entries(decoded.response)
      const expiresAt = this.#store(repository, decoded.response, entries, account.cacheSuffix)
      return { kind: 'credentials', entries, reusableUntil: account === NO_ACCOUNT ? expiresAt : 0 }
    } finally {
      release()
    }
  }

  #entries(response: PluginResponse): KeyringEntry[] {
    return response.auth.map(({ key, username, password }) => ({
      key,
      username,
      password,
      label: `credential provider ${this.name} (key ${JSON.stringify(key)})`,
    }))
  }

  /** Caches the answer as the kubelet would; returns until when it is cached (0: not cached). */
  #store(repository: string, response: PluginResponse, entries: KeyringEntry[], suffix: string): number {
    const duration = response.cacheDurationMs ?? this.#spec.defaultCacheDurationMs ?? 0
    // cacheDuration 0, or none with a default of 0: not cached. A negative one is stored already expired.
    if (response.cacheDurationMs === 0 || (response.cacheDurationMs === undefined && duration === 0) || duration < 0)
      return 0
    const key =
      response.cacheKeyType === 'Image'
        ? repository
        : response.cacheKeyType === 'Registry'
          ? registryOf(repository)
          : GLOBAL_KEY
    // The kubelet's entry is expired only once now is past expiresAt; TtlCache's at expiresAt.
    const expiresAt = this.#clock.now() + duration + 1
    this.#cache.set(key + suffix, { entries, expiresAt }, expiresAt)
    return expiresAt
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
