import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { ImageReference } from '../reference/index.js'
import { ANONYMOUS, type Credential } from './credential.js'
import { directEndpoint, type Endpoint, type Router } from './endpoint.js'
import { listCatalog } from './catalog.js'
import { attemptManifest, type AttemptContext } from './manifest.js'
import { RegistryPauses } from './pauses.js'
import { readSigstoreAttachments, type AttachmentsRead } from './sigstore-attachments.js'
import { fetchIndexInstances, type IndexInstances } from './index-platforms.js'
import { startAuth } from './auth-flow.js'
import type { Attempt, CheckResult, ReasonCode } from './result.js'
import { listTags, type ListTagsOptions } from './tags.js'
import { TokenSource } from './token.js'
import type { AuthHint } from './auth-flow.js'
import { Transport, normalizeHost, type TransportOptions } from './transport.js'
import { buildTrustStore, type TrustOptions, type TrustStore } from './trust.js'

export interface RegistryClientOptions extends Omit<TransportOptions, 'trust'> {
  /** A prepared trust store, or the options to build one. */
  trust?: TrustStore | TrustOptions
  /** Deadline for a check whose caller passes no signal. */
  defaultDeadlineMs?: number
  clock?: Clock
  /**
   * After finding an index, read its platforms (one manifest GET, which Docker Hub counts as a
   * pull; see index-platforms.ts). Default true.
   */
  resolveIndexPlatforms?: boolean
  /** Where the nodes' runtime pulls from (mirrors); without one, each image's own registry. */
  router?: Router
}

export interface ListTagsClientOptions extends Omit<ListTagsOptions, 'signal'> {
  /** The caller's deadline; the listing ends at it or at `budgetMs`, whichever comes first. */
  signal?: AbortSignal
  budgetMs?: number
}

/**
 * Tags only feed a suggestion in a denial message: two seconds is far above a registry's normal
 * answer and well inside the webhook's budget (--timeout, 8 s by default).
 */
export const DEFAULT_TAG_LIST_BUDGET_MS = 2_000

/** What an Exists answer says about where the manifest was read: enough to read its attachments there. */
export interface FoundManifest {
  digest: string
  decidedBy: string
  answeredBy?: string
}

export interface CheckOptions {
  /** The overall deadline: when it fires, the check ends with RegistryUnreachable (timeout). */
  signal?: AbortSignal
}

/**
 * Without a caller's deadline a check could run for 6 turns × 6 redirects × the per-request
 * timeout. The webhook always passes its review budget; this bounds every other caller.
 */
export const DEFAULT_DEADLINE_MS = 30_000

/** How long we remember a registry's Bearer challenge (saves the 401 round-trip). */
const AUTH_HINT_TTL_MS = 60 * 60 * 1000
const MAX_AUTH_HINTS = 1024

export class RegistryClient {
  readonly #transport: Transport
  readonly #ctx: AttemptContext
  readonly #defaultDeadlineMs: number
  readonly #router: Router | undefined
  /** Hosts that answered 429, shared by every check made with this client (reviews and the audit). */
  readonly pauses: RegistryPauses

  constructor(options: RegistryClientOptions = {}) {
    const clock = options.clock ?? systemClock
    this.#defaultDeadlineMs = options.defaultDeadlineMs ?? DEFAULT_DEADLINE_MS
    this.#router = options.router
    this.pauses = new RegistryPauses(clock)
    const trust =
      options.trust !== undefined && 'secureContext' in options.trust ? options.trust : buildTrustStore(options.trust)
    this.#transport = new Transport({ ...options, trust })
    const hints = new TtlCache<string, AuthHint>({ maxEntries: MAX_AUTH_HINTS, clock })
    this.#ctx = {
      transport: this.#transport,
      tokens: new TokenSource(this.#transport, clock),
      authHints: {
        get: (host) => hints.get(host),
        set: (host, hint) => hints.set(host, hint, clock.now() + AUTH_HINT_TTL_MS),
      },
      now: () => clock.now(),
      resolveIndexPlatforms: options.resolveIndexPlatforms ?? true,
    }
  }

  /** Identifies the hosts answers come from now: part of every cache key above this client. */
  get routeGeneration(): number {
    return this.#router?.generation ?? 0
  }

  /**
   * Would the kubelet pull `ref` with `credentials`? It tries them in order and stops at the
   * first success; with at least one credential it never falls back to an anonymous pull
   * (kubelet kuberuntime_image.go, registry-semantics §4). Each credential's pull asks the
   * runtime's hosts in order (mirrors, then the registry), and the first host that has the
   * manifest answers, as containerd's resolver does. Never throws.
   */
  async checkManifest(
    ref: ImageReference,
    credentials: readonly Credential[],
    options: CheckOptions = {},
  ): Promise<CheckResult> {
    const signal = options.signal ?? AbortSignal.timeout(this.#defaultDeadlineMs)
    const endpoints = this.#endpoints(ref)
    const routed = this.#router !== undefined
    const attempts: Attempt[] = []
    const asked = new Set<string>()
    const tried = new Set<string>()
    const candidates: ReadonlyArray<Credential | null> = credentials.length === 0 ? [null] : credentials
    for (const candidate of candidates) {
      for (const ep of endpoints) {
        // A host that gets no credentials (a CRI-O source on another registry) is asked anonymously, once.
        const credential = ep.credentials ? candidate : null
        const key = `${endpointKey(ep)}\n${credential?.label ?? ''}`
        if (tried.has(key)) continue
        tried.add(key)
        const who = credential?.label ?? ANONYMOUS
        const host = routed ? { host: ep.label } : {}
        if (signal.aborted) {
          // An untried credential might have worked: the answer is "unknown", not "denied".
          attempts.push({
            credential: who,
            ...host,
            code: 'RegistryUnreachable',
            cause: 'timeout',
            detail: 'not tried: the time budget ran out',
          })
          continue
        }
        const waiting = this.pauses.remaining(ep.host)
        if (waiting !== undefined) {
          const seconds = Math.ceil(waiting / 1000)
          attempts.push({
            credential: who,
            ...host,
            code: 'RateLimited',
            retryAfterSeconds: seconds,
            detail: `${ep.host} is rate limiting pulls (HTTP 429); not asked again for ${seconds}s`,
          })
          continue
        }
        asked.add(ep.label)
        const { digest, mediaType, platforms, ...answer } = await attemptManifest(
          this.#ctx,
          ref,
          ep,
          credential,
          signal,
        )
        const attempt =
          normalizeHost(ep.host) === normalizeHost(ref.registryHost)
            ? answer
            : foreignRefusal(answer, ep, credential === null && candidate !== null)
        attempts.push({ ...attempt, ...host })
        if (attempt.code === 'RateLimited') this.pauses.pause(ep.host, attempt.retryAfterSeconds)
        if (attempt.code === 'Exists' && digest !== undefined) {
          const where = routed ? { answeredBy: ep.label, asked: [...asked] } : {}
          return {
            code: 'Exists',
            digest,
            mediaType: mediaType ?? '',
            decidedBy: attempt.credential,
            attempts,
            ...where,
            ...(platforms === undefined ? {} : { platforms }),
          }
        }
      }
    }
    const result = summarize(attempts)
    if (routed) result.asked = [...asked]
    return result
  }

  /**
   * The repository's tags, for suggestions after TagNotFound. Credentials are tried in the
   * kubelet's order (none: anonymous) and the first list read wins. Runs on its own budget
   * (`budgetMs`, default 2 s), cut shorter by the caller's signal: a suggestion must never cost
   * the review its deadline. Never throws; undefined when no list could be read.
   */
  async listTags(
    ref: ImageReference,
    credentials: readonly Credential[],
    options: ListTagsClientOptions = {},
  ): Promise<string[] | undefined> {
    const { signal: callerSignal, budgetMs, ...limits } = options
    const budget = AbortSignal.timeout(budgetMs ?? DEFAULT_TAG_LIST_BUDGET_MS)
    const signal = callerSignal === undefined ? budget : AbortSignal.any([callerSignal, budget])
    const candidates: ReadonlyArray<Credential | null> = credentials.length === 0 ? [null] : credentials
    const endpoints = this.#endpoints(ref)
    for (const candidate of candidates) {
      for (const ep of endpoints) {
        if (signal.aborted) return undefined
        if (this.pauses.remaining(ep.host) !== undefined) continue
        const listed = await listTags(this.#ctx, ep, ep.credentials ? candidate : null, { ...limits, signal })
        if (listed.ok) return listed.tags
      }
    }
    return undefined
  }

  /**
   * The repositories of the image's own registry (its catalog), for a suggestion after
   * RepositoryNotFound: what the user would write instead is a name on that registry, whatever
   * mirror the nodes ask. Credentials are tried in the kubelet's order, the first catalog read
   * wins; `refused` when every one was refused. Its own budget, as the tag list's. Never throws.
   */
  async listCatalog(
    ref: ImageReference,
    credentials: readonly Credential[],
    options: { signal?: AbortSignal; budgetMs?: number } = {},
  ): Promise<{ repositories: string[] } | { refused: boolean }> {
    const budget = AbortSignal.timeout(options.budgetMs ?? DEFAULT_TAG_LIST_BUDGET_MS)
    const signal = options.signal === undefined ? budget : AbortSignal.any([options.signal, budget])
    const ep = directEndpoint(ref)
    let refused = true
    for (const candidate of credentials.length === 0 ? [null] : credentials) {
      if (signal.aborted) return { refused: false }
      const read = await listCatalog(this.#ctx, ep, candidate, signal)
      if (read.ok) return { repositories: read.repositories }
      refused &&= read.refused
    }
    return { refused }
  }

  /**
   * The sigstore attachments of the manifest `found` (an Exists answer of checkManifest): read where
   * that manifest came from, with the credential that read it, as containers-image reads them from
   * the pull's source. Never throws.
   */
  async sigstoreAttachments(
    ref: ImageReference,
    credentials: readonly Credential[],
    found: FoundManifest,
    options: CheckOptions = {},
  ): Promise<AttachmentsRead> {
    const signal = options.signal ?? AbortSignal.timeout(this.#defaultDeadlineMs)
    const at = this.#foundAt(ref, credentials, found)
    if (typeof at === 'string') return { ok: false, kind: 'unanswered', detail: at }
    return readSigstoreAttachments(this.#ctx, at.ep, at.credential, found.digest, signal)
  }

  /** The platform manifests of the index `found`, read where it was found, with the credential that found it. Never throws. */
  async indexInstances(
    ref: ImageReference,
    credentials: readonly Credential[],
    found: FoundManifest,
    options: CheckOptions = {},
  ): Promise<IndexInstances> {
    const signal = options.signal ?? AbortSignal.timeout(this.#defaultDeadlineMs)
    const at = this.#foundAt(ref, credentials, found)
    if (typeof at === 'string') return { ok: false, reason: at }
    const { ep, credential } = at
    const auth = startAuth(this.#ctx, ep.host, ep.repository, credential, {
      tls: ep.tls,
      plainHttp: ep.scheme === 'http',
    })
    return fetchIndexInstances(this.#ctx, auth, ep, found.digest, signal)
  }

  /** The host that answered `found` and the credential it answered (none where the host gets none), or why it cannot be asked now. */
  #foundAt(
    ref: ImageReference,
    credentials: readonly Credential[],
    found: FoundManifest,
  ): { ep: Endpoint; credential: Credential | null } | string {
    const endpoints = this.#endpoints(ref)
    const ep = found.answeredBy === undefined ? endpoints[0] : endpoints.find((e) => e.label === found.answeredBy)
    if (ep === undefined)
      return `${found.answeredBy ?? ref.registryHost} is no longer where the nodes pull ${ref.name} from`
    const waiting = this.pauses.remaining(ep.host)
    if (waiting !== undefined)
      return `${ep.host} is rate limiting pulls (HTTP 429); not asked again for ${Math.ceil(waiting / 1000)}s`
    const credential = ep.credentials ? (credentials.find((c) => c.label === found.decidedBy) ?? null) : null
    return { ep, credential }
  }

  #generation = 0
  #endpoints(ref: ImageReference): readonly Endpoint[] {
    if (this.#router === undefined) return [directEndpoint(ref)]
    // New mirrors configuration: what was learnt about hosts speaking plain HTTP may no longer be allowed.
    if (this.#router.generation !== this.#generation) {
      if (this.#generation !== 0) this.#transport.forgetPlainHosts()
      this.#generation = this.#router.generation
    }
    return this.#router.endpoints(ref)
  }

  /** Requests in flight and waiting per registry host (the per-registry cap), for the metrics. */
  requestSlots(): ReadonlyMap<string, { active: number; queued: number }> {
    return this.#transport.slots.current()
  }

  close(): Promise<void> {
    return this.#transport.close()
  }
}

/** What makes two endpoints the same question (a label may be shared by two repositories on one host). */
function endpointKey(ep: Endpoint): string {
  return [
    ep.scheme ?? '',
    ep.host,
    ep.root,
    ep.repository,
    ep.query ?? '',
    ep.credentials ? 'c' : 'a',
    ep.tls?.verify ?? '',
    ep.tls?.caPem?.length ?? '',
  ].join('|')
}

/**
 * A host other than the image's own registry (a mirror, a rewritten location) that refuses: the
 * node may hold credentials for it pullguard cannot see (CRI-O's auth file, containerd's
 * registry.configs), so the refusal proves nothing about the pull.
 */
function foreignRefusal(attempt: Attempt, ep: Endpoint, withheld: boolean): Attempt {
  // Asked anonymously where the node would send its own credentials, a registry that hides
  // private repositories behind 404 says nothing either.
  const notFound =
    attempt.code === 'TagNotFound' || attempt.code === 'DigestNotFound' || attempt.code === 'RepositoryNotFound'
  if (attempt.code !== 'AccessDenied' && attempt.code !== 'RepositoryNotFoundOrDenied' && !(withheld && notFound))
    return attempt
  return {
    ...attempt,
    code: 'RegistryUnreachable',
    cause: 'mirror-auth',
    detail: `${attempt.detail}; the nodes may hold their own credentials for ${ep.host}, which pullguard cannot see`,
  }
}

/**
 * No attempt succeeded: say the most useful true thing.
 * - If any attempt got no answer (unreachable, rate limited, out of time), the image is not
 *   proven unpullable: that credential might have worked. Never deny on a guess.
 * - Otherwise the most specific "no": a missing tag or digest (the registry showed the
 *   repository), a missing repository, then the denials.
 */
const PRECEDENCE: readonly ReasonCode[] = [
  'RateLimited',
  'RegistryUnreachable',
  'TagNotFound',
  'DigestNotFound',
  'RepositoryNotFound',
  'RepositoryNotFoundOrDenied',
  'AccessDenied',
]

/** Where `code` stands in that order when several answers compete (lower says more). */
export function answerRank(code: ReasonCode): number {
  return code === 'Exists' ? -1 : PRECEDENCE.indexOf(code)
}

export function summarize(attempts: Attempt[]): CheckResult {
  const ranked = PRECEDENCE.map((code) => attempts.find((a) => a.code === code)).find((a) => a !== undefined)
  const chosen = ranked ?? attempts[attempts.length - 1]
  if (chosen === undefined) {
    return {
      code: 'RegistryUnreachable',
      cause: 'timeout',
      detail: 'no attempt could be made within the time budget',
      attempts,
    }
  }
  switch (chosen.code) {
    case 'RegistryUnreachable':
      return { code: 'RegistryUnreachable', cause: chosen.cause ?? 'bad-response', detail: chosen.detail, attempts }
    case 'RateLimited':
      return {
        code: 'RateLimited',
        detail: chosen.detail,
        attempts,
        ...(chosen.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: chosen.retryAfterSeconds }),
      }
    case 'Exists':
      // Unreachable: Exists returns early. Kept total so the compiler proves every code is handled.
      return { code: 'RegistryUnreachable', cause: 'bad-response', detail: 'inconsistent attempt record', attempts }
    default:
      return { code: chosen.code, detail: chosen.detail, attempts }
  }
}
