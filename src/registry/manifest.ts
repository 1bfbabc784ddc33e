/**
 * One attempt at reading a manifest with one credential (or none), the way containerd's
 * resolver does it (remotes/docker/resolver.go):
 *  1. HEAD /v2/<repo>/manifests/<ref> with the full Accept list, with a cached token if any.
 *  2. 401 + challenge → Bearer: get a token (token.ts) and retry; Basic: retry with the
 *     credential. A 401 to a cached token earns one retry with a fresh token.
 *  3. 404 → the tags list tells a missing tag from a missing repository; HEAD refused
 *     (405/400) or no digest header → GET.
 *  4. Everything else is classified once, here, into a reason code.
 */
import { createHash } from 'node:crypto'
import type { ImageReference } from '../reference/index.js'
import { parseChallenges, type Challenge } from './challenge.js'
import { basicAuthorization, type Credential } from './credential.js'
import { MANIFEST_ACCEPT } from './media-types.js'
import { registryErrorCodes } from './registry-errors.js'
import type { Attempt } from './result.js'
import { retryAfterSeconds } from './retry-after.js'
import type { BearerParams, TokenSource } from './token.js'
import type { HttpResponse, Transport } from './transport.js'
import { TransportError } from './transport-error.js'

/** The OCI distribution spec asks registries to accept manifests up to 4 MiB; refuse more. */
export const MANIFEST_BODY_LIMIT = 4 * 1024 * 1024

export type AuthHint = { kind: 'bearer'; bearer: BearerParams } | { kind: 'basic' }

export interface AttemptContext {
  transport: Transport
  tokens: TokenSource
  /** What each registry asked for last time, so a warm check makes a single request. */
  authHints: { get(host: string): AuthHint | undefined; set(host: string, hint: AuthHint): void }
  now(): number
}

export type AttemptResult = Attempt & { digest?: string; mediaType?: string }

export async function attemptManifest(
  ctx: AttemptContext,
  ref: ImageReference,
  credential: Credential | null,
  signal: AbortSignal | undefined,
): Promise<AttemptResult> {
  const who = credential === null ? 'anonymous' : credential.label
  const scope = `repository:${ref.path}:pull`
  const report = (a: Omit<AttemptResult, 'credential'>): AttemptResult => ({ credential: who, ...a })
  try {
    const hint = ctx.authHints.get(ref.registryHost)
    let authorization = cachedAuthorization(ctx, hint, scope, credential)
    let usedCachedToken = authorization !== undefined && hint?.kind === 'bearer'
    let authenticated = authorization !== undefined
    let method: 'HEAD' | 'GET' = 'HEAD'
    const url = new URL(`${ctx.transport.baseUrl(ref.registryHost)}/v2/${ref.path}/manifests/${ref.reference}`)

    // Each turn either returns or changes the request (auth, method); six turns cover the longest path.
    for (let turn = 0; turn < 6; turn++) {
      const res = await ctx.transport.send({ method, url, headers: { accept: MANIFEST_ACCEPT }, authorization, maxBodyBytes: MANIFEST_BODY_LIMIT, signal })
      const status = res.status
      if (status === 200) {
        const digest = headerValue(res, 'docker-content-digest') ?? ref.digest ?? (method === 'GET' ? sha256(res.body) : undefined)
        if (digest === undefined) {
          method = 'GET' // containerd does the same when a registry omits the digest on HEAD
          continue
        }
        const mediaType = (headerValue(res, 'content-type') ?? '').split(';')[0]!.trim()
        return report({ code: 'Exists', status, detail: `manifest ${digest} found`, digest, mediaType })
      }
      if (status === 401) {
        const challenges = parseChallenges(res.headers['www-authenticate'])
        const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm !== undefined)
        const basic = challenges.find((c) => c.scheme === 'basic')
        if (!authenticated || usedCachedToken) {
          if (bearer !== undefined) {
            const params: BearerParams = { realm: bearer.params.realm!, service: bearer.params.service }
            ctx.authHints.set(ref.registryHost, { kind: 'bearer', bearer: params })
            const token = await ctx.tokens.get(params, scope, credential, { fresh: usedCachedToken, signal })
            if (!token.ok) {
              const { ok: _ok, ...failure } = token
              return report(failure)
            }
            authorization = `Bearer ${token.token}`
          } else if (basic !== undefined) {
            ctx.authHints.set(ref.registryHost, { kind: 'basic' })
            if (credential === null) return report({ code: 'AccessDenied', status, detail: `${ref.registryHost} requires a username and password (Basic auth) and none was given` })
            authorization = basicAuthorization(credential)
          } else {
            return report({ code: 'AccessDenied', status, detail: `${ref.registryHost} answered 401 without a usable authentication challenge` })
          }
          authenticated = true
          usedCachedToken = false
          continue
        }
        return report(deniedAfterAuth(ref, res, bearer, credential))
      }
      if ((status === 405 || status === 400) && method === 'HEAD') {
        method = 'GET' // some registries refuse HEAD
        continue
      }
      return report(await classifyFailure(ctx, ref, res, authorization, signal))
    }
    return report({ code: 'RegistryUnreachable', cause: 'bad-response', detail: `${ref.registryHost} kept answering in a way that never settled` })
  } catch (err) {
    const e = err instanceof TransportError ? err : new TransportError('bad-response', `unexpected error: ${(err as Error)?.message ?? String(err)}`)
    return report({ code: 'RegistryUnreachable', cause: e.reason, detail: e.detail })
  }
}

function cachedAuthorization(ctx: AttemptContext, hint: AuthHint | undefined, scope: string, credential: Credential | null): string | undefined {
  if (hint === undefined) return undefined
  if (hint.kind === 'basic') return credential === null ? undefined : basicAuthorization(credential)
  const token = ctx.tokens.cached(hint.bearer, scope, credential)
  return token === undefined ? undefined : `Bearer ${token}`
}

/** 401 after we authenticated. */
function deniedAfterAuth(ref: ImageReference, res: HttpResponse, bearer: Challenge | undefined, credential: Credential | null): Omit<Attempt, 'credential'> {
  const registryErrors = registryErrorCodes(res.body)
  const base = { status: res.status, ...(registryErrors.length > 0 ? { registryErrors } : {}) }
  // Token auth (Docker Hub, distribution) grants nothing for a repository that does not exist or
  // that this identity may not read, and says `insufficient_scope` for both: we cannot tell which.
  if (bearer?.params.error === 'insufficient_scope' || registryErrors.includes('INSUFFICIENT_SCOPE')) {
    const who = credential === null ? 'anonymous pulls' : credential.label
    return { ...base, code: 'RepositoryNotFoundOrDenied', detail: `${ref.registryHost} grants no pull access to ${ref.path} for ${who}: the repository does not exist or requires authorization` }
  }
  const who = credential === null ? 'anonymous access' : credential.label
  return { ...base, code: 'AccessDenied', detail: `${ref.registryHost} refused ${who} (HTTP 401)` }
}

async function classifyFailure(
  ctx: AttemptContext,
  ref: ImageReference,
  res: HttpResponse,
  authorization: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Omit<Attempt, 'credential'>> {
  const status = res.status
  const registryErrors = registryErrorCodes(res.body)
  const base = { status, ...(registryErrors.length > 0 ? { registryErrors } : {}) }
  if (status === 429 || registryErrors.includes('TOOMANYREQUESTS')) {
    const retry = retryAfterSeconds(res.headers['retry-after'], ctx.now())
    return { ...base, code: 'RateLimited', detail: `${ref.registryHost} is rate limiting pulls (HTTP ${status})`, ...(retry === undefined ? {} : { retryAfterSeconds: retry }) }
  }
  if (status === 404) {
    // distribution answers MANIFEST_UNKNOWN for a missing repository too, and a HEAD has no body:
    // only the tags list tells a missing tag from a missing repository.
    const repository = registryErrors.includes('NAME_UNKNOWN') ? 'missing' : await probeRepository(ctx, ref, authorization, signal)
    if (repository === 'missing') return { ...base, code: 'RepositoryNotFound', detail: `repository ${ref.path} does not exist on ${ref.registryHost}` }
    return notFound(ref, base)
  }
  if (status === 403) {
    return { ...base, code: 'AccessDenied', detail: `${ref.registryHost} denied access to ${ref.path} (HTTP 403${registryErrors.length > 0 ? ' ' + registryErrors.join(',') : ''})` }
  }
  if (status >= 500) return { ...base, code: 'RegistryUnreachable', cause: '5xx', detail: `${ref.registryHost} answered HTTP ${status}` }
  return { ...base, code: 'RegistryUnreachable', cause: 'bad-response', detail: `${ref.registryHost} answered HTTP ${status} to a manifest request` }
}

function notFound(ref: ImageReference, base: { status: number; registryErrors?: string[] }): Omit<Attempt, 'credential'> {
  return ref.digest !== undefined
    ? { ...base, code: 'DigestNotFound', detail: `${ref.path}@${ref.digest} does not exist on ${ref.registryHost}` }
    : { ...base, code: 'TagNotFound', detail: `tag ${ref.reference} does not exist in ${ref.path} on ${ref.registryHost}` }
}

/**
 * GET /v2/<repo>/tags/list: 200 → the repository exists; 404 → it does not. Anything else
 * (listing forbidden, a timeout) leaves it open; the manifest is missing either way.
 */
async function probeRepository(ctx: AttemptContext, ref: ImageReference, authorization: string | undefined, signal: AbortSignal | undefined): Promise<'exists' | 'missing' | 'unknown'> {
  const url = new URL(`${ctx.transport.baseUrl(ref.registryHost)}/v2/${ref.path}/tags/list?n=1`)
  try {
    const res = await ctx.transport.send({ method: 'GET', url, headers: { accept: 'application/json' }, authorization, maxBodyBytes: 64 * 1024, signal })
    if (res.status === 200) return 'exists'
    if (res.status === 404) return 'missing'
  } catch {
    // fall through: the manifest's 404 already decided that the image cannot be pulled
  }
  return 'unknown'
}

function headerValue(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name]
  const s = Array.isArray(v) ? v[0] : v
  return s === undefined || s === '' ? undefined : s
}

function sha256(body: Buffer): string {
  return 'sha256:' + createHash('sha256').update(body).digest('hex')
}
