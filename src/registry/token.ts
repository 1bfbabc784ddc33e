/**
 * The Bearer token flow of distribution's token auth spec (docs/spec/auth/token.md):
 *  1. The registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…`.
 *  2. We GET `realm?service=…&scope=repository:<repo>:pull`, with HTTP Basic when we hold a
 *     username/password, anonymously otherwise.
 *  3. The answer carries `token` or `access_token`, `expires_in` (60 s when absent, and never
 *     less: the spec tells servers so) and maybe `issued_at`.
 *  4. The token is cached per (realm, service, scope, credential hash) until shortly before it
 *     expires; concurrent requests for the same key share one token request.
 * A 200 proves nothing about access: the grant may be empty. The caller must retry the
 * manifest request with the token and judge that answer.
 */
import { within } from '../async/deadline.js'
import { SingleFlight } from '../async/single-flight.js'
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import { basicAuthorization, credentialIdentity, hasBasicCredentials, type Credential } from './credential.js'
import { retryAfterSeconds } from './retry-after.js'
import type { UnreachableCause } from './result.js'
import type { EndpointTls } from './endpoint.js'
import type { HttpResponse, Transport } from './transport.js'
import { asTransportError } from './transport-error.js'
import { jsonObject } from './json-body.js'
import { mayFallBack } from './plain-fallback.js'

export interface BearerParams {
  realm: string
  service?: string | undefined
}

export type TokenOutcome =
  | { ok: true; token: string }
  | { ok: false; code: 'AccessDenied' | 'RepositoryNotFoundOrDenied'; status: number; detail: string }
  | { ok: false; code: 'RateLimited'; status: number; detail: string; retryAfterSeconds?: number }
  | { ok: false; code: 'RegistryUnreachable'; cause: UnreachableCause; detail: string; status?: number }

/** Token answers are a few KiB; cap what a hostile realm can make us buffer. */
const TOKEN_BODY_LIMIT = 64 * 1024
/**
 * Real registry tokens are well under 8 KiB (JWTs of Docker Hub, GHCR, Harbor, ACR). A larger one,
 * or one with characters a header cannot carry, would fail on every request while sitting in the
 * cache: refuse it instead.
 */
const MAX_TOKEN_LENGTH = 16 * 1024
const TOKEN_CHARS = /^[\x21-\x7e]+$/
const MIN_LIFETIME_S = 60
/** Tokens per (namespace credential × repository) add up; bound them. */
const MAX_TOKENS = 10_000

export class TokenSource {
  readonly #cache: TtlCache<string, string>
  readonly #flight = new SingleFlight<string, TokenOutcome>()
  readonly #transport: Transport
  readonly #clock: Clock

  constructor(transport: Transport, clock: Clock = systemClock) {
    this.#transport = transport
    this.#clock = clock
    this.#cache = new TtlCache({ maxEntries: MAX_TOKENS, clock })
  }

  cached(bearer: BearerParams, scope: string, credential: Credential | null): string | undefined {
    return this.#cache.get(cacheKey(bearer, scope, credential))
  }

  /** A token for `scope`; `fresh` skips the cache (the registry refused the cached one). */
  async get(
    bearer: BearerParams,
    scope: string,
    credential: Credential | null,
    options: {
      fresh?: boolean
      signal?: AbortSignal | undefined
      tls?: EndpointTls | undefined
      plainHttp?: boolean
    } = {},
  ): Promise<TokenOutcome> {
    const key = cacheKey(bearer, scope, credential)
    if (options.fresh === true) this.#cache.delete(key)
    else {
      const hit = this.#cache.get(key)
      if (hit !== undefined) return { ok: true, token: hit }
    }
    // The shared fetch is bounded by the transport's per-request timeout, not by the first
    // caller's deadline; each caller stops waiting at its own.
    const shared = this.#flight.run(key, () =>
      this.#fetch(key, bearer, scope, credential, options.tls, options.plainHttp === true),
    )
    return within(shared, options.signal, () =>
      unreachable('timeout', `the time budget ran out waiting for token server ${hostOf(bearer.realm)}`),
    )
  }

  async #fetch(
    key: string,
    bearer: BearerParams,
    scope: string,
    credential: Credential | null,
    tls: EndpointTls | undefined,
    plainHttp: boolean,
  ): Promise<TokenOutcome> {
    let url: URL
    try {
      url = new URL(bearer.realm)
    } catch {
      return unreachable('bad-response', 'the registry named a token realm that is not a URL')
    }
    // Basic credentials must not travel in clear to a realm the operator did not mark insecure.
    // A realm on the endpoint's own host may be plain HTTP when the endpoint is (or may fall back to
    // it, under either runtime's rule: auth-flow.ts passes a fallback only for the same host).
    const httpAllowed = this.#transport.isInsecure(url.host) || plainHttp || mayFallBack(tls)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && httpAllowed)) {
      return unreachable('tls', `the registry's token realm ${url.host} is not HTTPS`)
    }
    if (bearer.service !== undefined) url.searchParams.set('service', bearer.service)
    url.searchParams.set('scope', scope)
    const started = this.#clock.now()
    let res: HttpResponse
    try {
      res = await this.#transport.send({
        method: 'GET',
        url,
        headers: { accept: 'application/json' },
        // Like containerd (auth/fetch.go): Basic only with a secret, otherwise an anonymous token.
        authorization:
          credential !== null && hasBasicCredentials(credential) ? basicAuthorization(credential) : undefined,
        maxBodyBytes: TOKEN_BODY_LIMIT,
        tls,
      })
    } catch (err) {
      const e = asTransportError(err)
      return unreachable(e.reason, `token server ${url.host}: ${e.detail}`)
    }
    if (res.status === 401 || res.status === 403) {
      // Refusing credentials means they are wrong; refusing an anonymous token (GHCR does, for a
      // private or missing repository) says nothing about which.
      return credential === null
        ? {
            ok: false,
            code: 'RepositoryNotFoundOrDenied',
            status: res.status,
            detail: `token server ${url.host} refused anonymous access to ${scope}: the repository does not exist or requires authorization`,
          }
        : {
            ok: false,
            code: 'AccessDenied',
            status: res.status,
            detail: `token server ${url.host} refused the credentials of ${credential.label} (HTTP ${res.status})`,
          }
    }
    if (res.status === 429) {
      const retry = retryAfterSeconds(res.headers['retry-after'], this.#clock.now())
      return {
        ok: false,
        code: 'RateLimited',
        status: 429,
        detail: `token server ${url.host} is rate limiting (HTTP 429)`,
        ...(retry === undefined ? {} : { retryAfterSeconds: retry }),
      }
    }
    if (res.status >= 500) return unreachable('5xx', `token server ${url.host} answered HTTP ${res.status}`, res.status)
    if (res.status !== 200)
      return unreachable('bad-response', `token server ${url.host} answered HTTP ${res.status}`, res.status)
    const parsed = parseTokenBody(res.body)
    if (parsed === undefined) return unreachable('bad-response', `token server ${url.host} sent no usable token`)
    const base =
      parsed.issuedAt !== undefined && parsed.issuedAt <= this.#clock.now()
        ? Math.max(parsed.issuedAt, started - 60_000)
        : started
    const lifetimeMs = parsed.expiresIn * 1000
    // Refresh a little early so a token does not expire between our check and the registry's.
    const margin = Math.min(30_000, lifetimeMs / 10)
    this.#cache.set(key, parsed.token, base + lifetimeMs - margin)
    return { ok: true, token: parsed.token }
  }
}

function cacheKey(bearer: BearerParams, scope: string, credential: Credential | null): string {
  return `${bearer.realm}\n${bearer.service ?? ''}\n${scope}\n${credentialIdentity(credential)}`
}

function hostOf(realm: string): string {
  try {
    return new URL(realm).host
  } catch {
    return 'realm'
  }
}

function unreachable(cause: UnreachableCause, detail: string, status?: number): TokenOutcome {
  return { ok: false, code: 'RegistryUnreachable', cause, detail, ...(status === undefined ? {} : { status }) }
}

export function parseTokenBody(body: Buffer): { token: string; expiresIn: number; issuedAt?: number } | undefined {
  const o = jsonObject(body)
  if (o === undefined) return undefined
  const token =
    typeof o.token === 'string' && o.token !== ''
      ? o.token
      : typeof o.access_token === 'string' && o.access_token !== ''
        ? o.access_token
        : undefined
  if (token === undefined || token.length > MAX_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) return undefined
  const expiresIn =
    typeof o.expires_in === 'number' && Number.isFinite(o.expires_in)
      ? Math.max(MIN_LIFETIME_S, o.expires_in)
      : MIN_LIFETIME_S
  const issuedAt = typeof o.issued_at === 'string' ? Date.parse(o.issued_at) : NaN
  return Number.isNaN(issuedAt) ? { token, expiresIn } : { token, expiresIn, issuedAt }
}
