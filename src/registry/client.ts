import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { ImageReference } from '../reference/index.js'
import type { Credential } from './credential.js'
import { attemptManifest, type AttemptContext, type AuthHint } from './manifest.js'
import type { Attempt, CheckResult, ReasonCode } from './result.js'
import { TokenSource } from './token.js'
import { Transport, type TransportOptions } from './transport.js'
import { buildTrustStore, type TrustOptions, type TrustStore } from './trust.js'

export interface RegistryClientOptions extends Omit<TransportOptions, 'trust'> {
  /** A prepared trust store, or the options to build one. */
  trust?: TrustStore | TrustOptions
  clock?: Clock
}

export interface CheckOptions {
  /** The overall deadline: when it fires, the check ends with RegistryUnreachable (timeout). */
  signal?: AbortSignal
}

/** How long we remember that a registry wants Bearer or Basic (saves the 401 round-trip). */
const AUTH_HINT_TTL_MS = 60 * 60 * 1000
const MAX_AUTH_HINTS = 1024

export class RegistryClient {
  readonly #transport: Transport
  readonly #ctx: AttemptContext

  constructor(options: RegistryClientOptions = {}) {
    const clock = options.clock ?? systemClock
    const trust = options.trust !== undefined && 'secureContext' in options.trust ? options.trust : buildTrustStore(options.trust)
    this.#transport = new Transport({ ...options, trust })
    const hints = new TtlCache<string, AuthHint>({ maxEntries: MAX_AUTH_HINTS, clock })
    this.#ctx = {
      transport: this.#transport,
      tokens: new TokenSource(this.#transport, clock),
      authHints: { get: (host) => hints.get(host), set: (host, hint) => hints.set(host, hint, clock.now() + AUTH_HINT_TTL_MS) },
      now: () => clock.now(),
    }
  }

  /**
   * Would the kubelet pull `ref` with `credentials`? It tries them in order and stops at the
   * first success; with at least one credential it never falls back to an anonymous pull
   * (kubelet kuberuntime_image.go, registry-semantics §4). Never throws.
   */
  async checkManifest(ref: ImageReference, credentials: readonly Credential[], options: CheckOptions = {}): Promise<CheckResult> {
    const attempts: Attempt[] = []
    const candidates: ReadonlyArray<Credential | null> = credentials.length === 0 ? [null] : credentials
    for (const credential of candidates) {
      if (options.signal?.aborted === true) {
        // An untried credential might have worked: the answer is "unknown", not "denied".
        attempts.push({ credential: credential?.label ?? 'anonymous', code: 'RegistryUnreachable', cause: 'timeout', detail: 'not tried: the time budget ran out' })
        continue
      }
      const { digest, mediaType, ...attempt } = await attemptManifest(this.#ctx, ref, credential, options.signal)
      attempts.push(attempt)
      if (attempt.code === 'Exists' && digest !== undefined) {
        return { code: 'Exists', digest, mediaType: mediaType ?? '', decidedBy: attempt.credential, attempts }
      }
    }
    return summarize(attempts)
  }

  close(): Promise<void> {
    return this.#transport.close()
  }
}

/**
 * No attempt succeeded: say the most useful true thing.
 * - A missing tag/digest seen by any credential is definitive: that credential could read the
 *   repository, so no other credential will find the tag either.
 * - Otherwise, if any attempt got no answer (unreachable, rate limited), the image is not proven
 *   unpullable: that credential might have worked.
 * - Otherwise the strongest denial, repository-missing first.
 */
const PRECEDENCE: readonly ReasonCode[] = [
  'TagNotFound',
  'DigestNotFound',
  'RateLimited',
  'RegistryUnreachable',
  'RepositoryNotFound',
  'RepositoryNotFoundOrDenied',
  'AccessDenied',
]

export function summarize(attempts: Attempt[]): CheckResult {
  const ranked = PRECEDENCE.map((code) => attempts.find((a) => a.code === code)).find((a) => a !== undefined)
  const chosen = ranked ?? attempts[attempts.length - 1]
  if (chosen === undefined) {
    return { code: 'RegistryUnreachable', cause: 'timeout', detail: 'no attempt could be made within the time budget', attempts }
  }
  switch (chosen.code) {
    case 'RegistryUnreachable':
      return { code: 'RegistryUnreachable', cause: chosen.cause ?? 'bad-response', detail: chosen.detail, attempts }
    case 'RateLimited':
      return { code: 'RateLimited', detail: chosen.detail, attempts, ...(chosen.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: chosen.retryAfterSeconds }) }
    case 'Exists':
      // Unreachable: Exists returns early. Kept total so the compiler proves every code is handled.
      return { code: 'RegistryUnreachable', cause: 'bad-response', detail: 'inconsistent attempt record', attempts }
    default:
      return { code: chosen.code, detail: chosen.detail, attempts }
  }
}
