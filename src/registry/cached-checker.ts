/**
 * The registry client behind a result cache and single-flight, for the admission hot path:
 * a Deployment scaled to 500 replicas asks about one image 500 times at once, and must cost one
 * registry request.
 *
 * Keys never hold a credential in clear (an HMAC identifies it). Who may be served an answer:
 * - "Exists" is shared by every namespace that holds the same credentials in the same order (by
 *   value, not by secret name): its request would be the same request, so the registry's answer
 *   is the same. Secret-copying tools put one pull secret into thousands of namespaces; they share
 *   one entry. The answer is relabelled with the caller's own secret on the way out.
 * - Negative answers (missing, denied) name the secrets tried in their text, so they are kept per
 *   namespace and per set of secret names. They live seconds anyway.
 * - Anonymous checks are shared by everyone, since everyone would get the same answer.
 * An answer earned with namespace A's secret is never served to a namespace that lacks its value.
 *
 * Memory matters here (100 000 answers in a big cluster): keys are flat strings of a small number
 * for the credentials and the image; an entry is the answer object itself, which carries its expiry.
 */
import { createHash } from 'node:crypto'
import { within } from '../async/deadline.js'
import { SingleFlight } from '../async/single-flight.js'
import { BoundedMap } from '../cache/bounded-map.js'
import { ExpiringMap, TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { ImageReference } from '../reference/index.js'
import type { FoundManifest, RegistryClient } from './client.js'
import { credentialIdentity, type Credential } from './credential.js'
import type { RegistryPauses } from './pauses.js'
import type { CheckResult, Platform } from './result.js'
import type { AttachmentsRead } from './sigstore-attachments.js'
import type { IndexInstances } from './index-platforms.js'

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
  /**
   * Keep a tag's "Exists" for its digest too, so a pod pinned to that digest (the mutating webhook)
   * is judged without a request, and a registry that did not answer in time for UNANSWERED_TTL_MS,
   * so the validating review after the mutating one does not wait for it again. Off by default:
   * each such answer takes a second entry.
   */
  keepDigestAnswers?: boolean
}

export interface CheckObserver {
  lookup(cache: 'result' | 'tags', hit: boolean): void
  inflight(delta: 1 | -1): void
}

export const DEFAULT_EXISTS_TTL_MS = 5 * 60_000
export const DEFAULT_NEGATIVE_TTL_MS = 15_000
export const DEFAULT_MAX_ENTRIES = 100_000
/** With keepDigestAnswers: how long a registry that did not answer in time is not asked again. */
export const UNANSWERED_TTL_MS = 10_000

/** A tag list feeds one suggestion; a minute is fresh enough and spares the registry. */
export const TAGS_TTL_MS = 60_000
/**
 * A list holds up to 10 000 tags of up to 128 characters (about 1.3 MB at worst, a few KB
 * usually), and repositories come from untrusted pod specs: keep few lists.
 */
const MAX_TAG_LISTS = 64

export interface ImageChecker {
  check(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<CheckResult>
  /** The repository's tags (for suggestions), or undefined when they cannot be had in time. */
  tags(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<readonly string[] | undefined>
  /**
   * The repositories of the image's registry (a suggestion after RepositoryNotFound), or whether
   * the registry refused to list them. Optional: checkers that cannot list say nothing.
   */
  catalog?(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<{ repositories: readonly string[] } | { refused: boolean }>
  /** The sigstore attachments of a manifest found by check (signature policies), or why they could not be read. */
  sigstoreAttachments(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    signal?: AbortSignal,
  ): Promise<AttachmentsRead>
  /** The platform manifests of an index found by check (signature policies check the one a node pulls). */
  indexInstances(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    signal?: AbortSignal,
  ): Promise<IndexInstances>
}

/** On a cached answer (symbols: never serialized): until when it is served. */
const EXPIRES = Symbol('expiresAt')
/** On a cached "Exists": the position of the credential that decided it (-1: none, anonymous). */
const DECIDED = Symbol('decided')
type Cached = CheckResult & { [EXPIRES]?: number; [DECIDED]?: number }

export class CachedChecker implements ImageChecker {
  readonly #client: RegistryClient
  readonly #entries: ExpiringMap<string, Cached>
  readonly #flight = new SingleFlight<string, CheckResult>()
  readonly #clock: Clock
  readonly #existsTtl: number
  readonly #negativeTtl: number
  readonly #keepDigestAnswers: boolean
  readonly #budget: number
  readonly #sets = new CredentialSets()
  readonly #shapes = new Interner()
  /** Tag lists are made lazily: most checkers never see a missing tag. */
  #tagCache: TtlCache<string, readonly string[] | null> | undefined
  #tagFlight: SingleFlight<string, readonly string[] | undefined> | undefined
  #catalogCache: TtlCache<string, { repositories: readonly string[] } | { refused: boolean }> | undefined
  #catalogFlight: SingleFlight<string, { repositories: readonly string[] } | { refused: boolean }> | undefined
  /** Signature lists likewise: only images under a signature policy need them. */
  #attachmentCache: TtlCache<string, AttachmentsRead> | undefined
  #attachmentFlight: SingleFlight<string, AttachmentsRead> | undefined
  #instanceCache: TtlCache<string, IndexInstances> | undefined
  #instanceFlight: SingleFlight<string, IndexInstances> | undefined

  readonly #observer: CheckObserver | undefined

  constructor(client: RegistryClient, options: CachedCheckerOptions) {
    this.#client = client
    this.#observer = options.observer
    this.#clock = options.clock ?? systemClock
    this.#entries = new ExpiringMap({
      maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
      clock: this.#clock,
      expiresAt: (entry) => entry[EXPIRES]!,
    })
    this.#existsTtl = options.existsTtlMs ?? DEFAULT_EXISTS_TTL_MS
    this.#negativeTtl = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS
    this.#keepDigestAnswers = options.keepDigestAnswers === true
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
    return (result as Cached)[EXPIRES]
  }

  /**
   * The registry's catalog, kept a minute per registry and credential set (as tag lists are): a
   * broken Deployment asks for it in every review. Shared by whoever holds the same credential
   * values; a refusal is kept the same way.
   */
  async catalog(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<{ repositories: readonly string[] } | { refused: boolean }> {
    const { values } = this.#ids(credentials, namespace)
    const key = `${ref.registryHost}\n${values}`
    this.#catalogCache ??= new TtlCache({ maxEntries: MAX_TAG_LISTS, clock: this.#clock })
    this.#catalogFlight ??= new SingleFlight()
    const cache = this.#catalogCache
    const hit = cache.get(key)
    if (hit !== undefined) return hit
    const shared = this.#catalogFlight.run(key, async () => {
      const read = await this.#client.listCatalog(ref, credentials)
      if ('repositories' in read || read.refused) cache.set(key, read, this.#clock.now() + TAGS_TTL_MS)
      return read
    })
    return within(shared, signal, () => ({ refused: false }))
  }

  /** Results held now (bounded by maxEntries). */
  get size(): number {
    return this.#entries.size
  }

  async check(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<CheckResult> {
    const keys = this.#keys(ref, credentials, namespace)
    const hit =
      this.#get(keys.shared, credentials) ??
      (keys.scoped === keys.shared ? undefined : this.#get(keys.scoped, credentials))
    this.#observer?.lookup('result', hit !== undefined)
    if (hit !== undefined) return hit
    return this.#ask(keys, ref, credentials, signal)
  }

  /**
   * The registry's answer now, never a cached one, stored for everyone after (the audit: it is
   * there to see what changed since the cache was filled). Shares a check already in flight.
   */
  fresh(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<CheckResult> {
    return this.#ask(this.#keys(ref, credentials, namespace), ref, credentials, signal)
  }

  /**
   * `shared`: where an "Exists" is kept (credential values only); `scoped`: where a negative answer
   * is kept and what a check in flight is shared by (also the namespace and the secrets' labels,
   * which its text names). The same key for anonymous checks.
   */
  #keys(ref: ImageReference, credentials: readonly Credential[], namespace: string): Keys {
    const { route, values, scope } = this.#ids(credentials, namespace)
    const shared = flat([route, values, ref.canonical])
    return {
      shared,
      scoped: scope === values ? shared : flat([route, `${values}.${scope}`, ref.canonical]),
      // `canonical` of name@digest: a tag beside a digest is dropped.
      atDigest: (digest) => flat([route, values, `${ref.name}@${digest}`]),
    }
  }

  /** 0 for the anonymous set; `scope` equals `values` then. */
  #ids(credentials: readonly Credential[], namespace: string): { route: number; values: number; scope: number } {
    const route = this.#client.routeGeneration
    return credentials.length === 0
      ? { route, values: 0, scope: 0 }
      : { route, ...this.#sets.ids(credentials, namespace) }
  }

  #get(key: string, credentials: readonly Credential[]): CheckResult | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.code !== 'Exists') return entry
    // Another namespace (or secret name) holding the same value: the answer names the caller's secret.
    const label = credentials[entry[DECIDED] ?? -1]?.label
    if (label === undefined || label === entry.decidedBy) return entry
    return { ...entry, decidedBy: label }
  }

  async #ask(
    keys: Keys,
    ref: ImageReference,
    credentials: readonly Credential[],
    signal: AbortSignal | undefined,
  ): Promise<CheckResult> {
    // The shared check runs on its own budget: one waiter's deadline must not cut it short for the others.
    const shared = this.#flight.run(keys.scoped, async () => {
      this.#observer?.inflight(1)
      // A paused registry (429) is answered by the client from memory, without a request.
      const result = await this.#client
        .checkManifest(ref, credentials, { signal: AbortSignal.timeout(this.#budget) })
        .finally(() => this.#observer?.inflight(-1))
      const ttl =
        result.code === 'Exists'
          ? this.#existsTtl
          : result.code === 'RegistryUnreachable' && result.cause === 'timeout' && this.#keepDigestAnswers
            ? // Pinning asks first and the validating review right after: a registry that hangs is
              // waited for once per pod, not twice. Other registry errors are never kept.
              UNANSWERED_TTL_MS
            : result.code === 'RateLimited' || result.code === 'RegistryUnreachable'
              ? 0
              : this.#negativeTtl
      if (ttl <= 0) return result
      // Everyone, the first caller included, gets the object the cache holds, so expiresAt knows it.
      const cached = this.#forCache(result, credentials, this.#clock.now() + ttl)
      if (result.code === 'Exists') {
        this.#entries.set(keys.shared, cached)
        // A negative answer kept for this scope is now stale.
        if (keys.scoped !== keys.shared) this.#entries.delete(keys.scoped)
        // The tag's manifest is, by its digest, the same answer: a pod pinned to that digest (the
        // mutating webhook) is judged from here, without another request; only an answer of the
        // registry itself, since a mirror may serve the tag and not the digest.
        const own =
          result.answeredBy === undefined ||
          result.answeredBy === ref.registryHost ||
          result.answeredBy === `${ref.registryHost}/${ref.path}`
        if (this.#keepDigestAnswers && ref.digest === undefined && own)
          this.#entries.set(keys.atDigest(result.digest), cached)
      } else if (result.code === 'RegistryUnreachable') {
        // No answer says nothing of the image: an "Exists" held for it stays, and wins.
        if (this.#entries.get(keys.shared) === undefined) this.#entries.set(keys.scoped, cached)
      } else {
        this.#entries.set(keys.scoped, cached)
        // And an "Exists" kept for these values no longer holds for them either.
        if (keys.scoped !== keys.shared) this.#entries.delete(keys.shared)
      }
      return cached
    })
    return within(shared, signal, timedOut)
  }

  /**
   * What a cached answer keeps: the verdict without the per-attempt log, which only the first caller
   * can use (nothing downstream reads it) and which would be most of an entry's memory; media types,
   * platform lists and host lists shared with other answers.
   */
  #forCache(result: CheckResult, credentials: readonly Credential[], expiresAt: number): Cached {
    const slim: CheckResult = { ...result, attempts: NO_ATTEMPTS }
    if (slim.asked !== undefined) slim.asked = this.#shapes.list(slim.asked)
    let decided = -1
    if (slim.code === 'Exists') {
      slim.mediaType = this.#shapes.string(slim.mediaType)
      if (slim.platforms !== undefined) slim.platforms = this.#shapes.platforms(slim.platforms)
      const decidedBy = slim.decidedBy
      decided = credentials.findIndex((c) => c.label === decidedBy)
    }
    // The symbols first, in one literal: added to a spread copy afterwards, each object would get a
    // hidden class of its own (about 300 bytes each, measured).
    return { [EXPIRES]: expiresAt, [DECIDED]: decided, ...slim }
  }

  /**
   * The repository's tags for a suggestion, cached for a minute per namespace and credentials
   * (anonymous lists shared) and fetched once for all concurrent waiters. A failed listing is
   * remembered as briefly as a negative answer, so a registry that refuses listing is not asked
   * again by every review of a broken Deployment. Never throws; undefined when no list could be read.
   */
  async tags(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<readonly string[] | undefined> {
    const { route, values, scope } = this.#ids(credentials, namespace)
    const key = `${route}\n${values}.${scope}\n${ref.name}`
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

  /**
   * A manifest's signatures, for everyone holding the same credentials (by value, as an "Exists" is
   * shared): kept as long as an "Exists" when there are some, as briefly as a negative answer when
   * there are none (a signature is often pushed just after its image), never when unanswered.
   */
  async sigstoreAttachments(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    signal?: AbortSignal,
  ): Promise<AttachmentsRead> {
    const key = this.#foundKey(ref, credentials, namespace, found)
    const cache = (this.#attachmentCache ??= new TtlCache({ maxEntries: MAX_ATTACHMENT_LISTS, clock: this.#clock }))
    const hit = cache.get(key)
    if (hit !== undefined) return hit
    const flight = (this.#attachmentFlight ??= new SingleFlight())
    const shared = flight.run(key, async () => {
      this.#observer?.inflight(1)
      const read = await this.#client
        .sigstoreAttachments(ref, credentials, found, { signal: AbortSignal.timeout(this.#budget) })
        .finally(() => this.#observer?.inflight(-1))
      if (read.ok || read.kind === 'invalid')
        cache.set(
          key,
          read,
          this.#clock.now() + (read.ok && read.attachments.length > 0 ? this.#existsTtl : this.#negativeTtl),
        )
      return read
    })
    return within(shared, signal, () => ({
      ok: false,
      kind: 'unanswered',
      detail: "the review's time budget ran out before the registry answered",
    }))
  }

  /** An index's platform manifests: an index by digest never changes, so kept as long as an "Exists". */
  async indexInstances(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    signal?: AbortSignal,
  ): Promise<IndexInstances> {
    const key = this.#foundKey(ref, credentials, namespace, found)
    const cache = (this.#instanceCache ??= new TtlCache({ maxEntries: MAX_ATTACHMENT_LISTS, clock: this.#clock }))
    const hit = cache.get(key)
    if (hit !== undefined) return hit
    const flight = (this.#instanceFlight ??= new SingleFlight())
    const shared = flight.run(key, async () => {
      const read = await this.#client.indexInstances(ref, credentials, found, {
        signal: AbortSignal.timeout(this.#budget),
      })
      if (read.ok) cache.set(key, read, this.#clock.now() + this.#existsTtl)
      return read
    })
    return within(shared, signal, () => ({
      ok: false,
      reason: "the review's time budget ran out before the registry answered",
    }))
  }

  /** Where a found manifest is read again: the credentials by value, the one that found it, the host and the digest. */
  #foundKey(ref: ImageReference, credentials: readonly Credential[], namespace: string, found: FoundManifest): string {
    const { route, values } = this.#ids(credentials, namespace)
    const decided = credentials.findIndex((c) => c.label === found.decidedBy)
    return flat([route, values, decided, found.answeredBy ?? '', ref.name, found.digest])
  }
}

/** Signature lists are read for images under a signature policy only; a few hundred bytes each. */
const MAX_ATTACHMENT_LISTS = 4096

const NO_ATTEMPTS: CheckResult['attempts'] = Object.freeze([]) as unknown as CheckResult['attempts']

interface Keys {
  shared: string
  scoped: string
  /** Where the same answer is kept for the repository at a digest (shared, like an "Exists"). */
  atDigest(digest: string): string
}

/**
 * A key of these parts, as one flat string. Built by concatenation, a string is a tree of its
 * pieces in V8 (and of the strings they were sliced from: the review's JSON, the image's parts),
 * and a Map key keeps the whole tree, several times the key's own size (measured). join writes
 * one sequential string.
 */
function flat(parts: ReadonlyArray<string | number>): string {
  return parts.join('\n')
}

/**
 * Small numbers for credential sets, so 100 000 keys do not each carry 64 hex characters per
 * credential. `values`: the credentials' identities in order; `scope`: that plus the namespace and
 * the labels. The table is keyed by a digest of that text (a pod may list hundreds of secrets) and
 * bounded: the set used longest ago leaves first. Numbers are never reused, so keys made with a
 * number that left simply miss and age out.
 */
class CredentialSets {
  static readonly MAX = 50_000
  readonly #ids = new BoundedMap<string, number>(CredentialSets.MAX)
  #next = 1

  ids(credentials: readonly Credential[], namespace: string): { values: number; scope: number } {
    const values = this.#id(flat(credentials.map((c) => credentialIdentity(c))))
    // Length-prefixed: no namespace or label, whatever it holds, can pass for two others.
    const scope: Array<string | number> = [values, namespace.length, namespace]
    for (const c of credentials) scope.push(c.label.length, c.label)
    return { values, scope: this.#id(flat(scope)) }
  }

  #id(text: string): number {
    const digest = createHash('sha256').update(text).digest('base64')
    const id = this.#ids.get(digest) ?? this.#next++
    // Set again when used again: to the back of the line.
    this.#ids.set(digest, id)
    return id
  }
}

/** One shared copy of values that recur across answers (media types, platform and host lists). */
class Interner {
  static readonly MAX = 1024
  static readonly MAX_CHARS = 1024
  readonly #seen = new Map<string, unknown>()

  string(s: string): string {
    return this.#intern(s, s)
  }

  list(hosts: string[]): string[] {
    return this.#intern(`h${JSON.stringify(hosts)}`, hosts)
  }

  platforms(platforms: Platform[]): Platform[] {
    return this.#intern(`p${JSON.stringify(platforms)}`, platforms)
  }

  #intern<T>(key: string, value: T): T {
    // Registries write these: beyond the bounds (an odd registry, an attack) values stay unshared.
    if (key.length > Interner.MAX_CHARS) return value
    const known = this.#seen.get(key)
    if (known !== undefined) return known as T
    if (this.#seen.size < Interner.MAX) this.#seen.set(key, deepFreeze(value))
    return value
  }
}

/** Shared values are read by many answers: none of them may change one. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

function timedOut(): CheckResult {
  return {
    code: 'RegistryUnreachable',
    cause: 'timeout',
    detail: "the review's time budget ran out before the registry answered",
    attempts: [],
  }
}
