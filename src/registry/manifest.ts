/**
 * One attempt at reading a manifest with one credential (or none), the way containerd's resolver
 * does it (core/remotes/docker/resolver.go):
 *  1. HEAD /v2/<repo>/manifests/<ref> with the full Accept list, authenticated as auth-flow.ts
 *     describes.
 *  2. 200 → the answer must look like a manifest (valid digest, manifest media type, within the
 *     size a runtime accepts); HEAD refused (405/400) or not saying enough → GET.
 *  3. 404 → the tags list tells a missing tag from a missing repository.
 *  4. Everything else is classified here, once, into a reason code.
 *  5. An index that exists: its platforms (index-platforms.ts), at most one more request.
 */
import { createHash } from 'node:crypto'
import { digestProblem, type ImageReference } from '../reference/index.js'
import { sendAuthorized, startAuth, type AuthContext, type AuthState } from './auth-flow.js'
import { parseChallenges } from './challenge.js'
import { ANONYMOUS, type Credential } from './credential.js'
import { endpointUrl, type Endpoint } from './endpoint.js'
import { fetchIndexPlatforms, platformsFromBody } from './index-platforms.js'
import { MANIFEST_ACCEPT, isIndexMediaType, isManifestMediaType, sniffManifestMediaType } from './media-types.js'
import { registryErrorCodes } from './registry-errors.js'
import type { Attempt, Platform } from './result.js'
import { retryAfterSeconds } from './retry-after.js'
import { ERROR_BODY_LIMIT, type HttpResponse } from './transport.js'
import { asTransportError } from './transport-error.js'

/** containerd refuses manifests over 4 MiB (MaxManifestSize); so do we, before reading them. */
export const MANIFEST_BODY_LIMIT = 4 * 1024 * 1024

export type AttemptContext = AuthContext & {
  /** Read an index's platforms after finding it (index-platforms.ts); default true. */
  resolveIndexPlatforms?: boolean
}
export type AttemptResult = Attempt & { digest?: string; mediaType?: string; platforms?: Platform[] }
type Outcome = Omit<AttemptResult, 'credential'>

/** One attempt at `ep` (the image's registry, or a mirror) with one credential. Never throws. */
export async function attemptManifest(
  ctx: AttemptContext,
  ref: ImageReference,
  ep: Endpoint,
  credential: Credential | null,
  signal: AbortSignal | undefined,
): Promise<AttemptResult> {
  const who = credential?.label ?? ANONYMOUS
  try {
    return { credential: who, ...(await attempt(ctx, ref, ep, credential, signal)) }
  } catch (err) {
    const e = asTransportError(err)
    return { credential: who, code: 'RegistryUnreachable', cause: e.reason, detail: e.detail }
  }
}

async function attempt(
  ctx: AttemptContext,
  ref: ImageReference,
  ep: Endpoint,
  credential: Credential | null,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const url = endpointUrl(ep, (h, tls) => ctx.transport.baseUrl(h, tls), `manifests/${ref.reference}`)
  const auth = startAuth(ctx, ep.host, ep.repository, credential, { tls: ep.tls, plainHttp: ep.scheme === 'http' })
  let method: 'HEAD' | 'GET' = 'HEAD'
  // HEAD, then at most one GET (HEAD refused, or not saying enough).
  for (let turn = 0; turn < 2; turn++) {
    const sent = await sendAuthorized(ctx, auth, {
      method,
      url,
      accept: MANIFEST_ACCEPT,
      maxBodyBytes: MANIFEST_BODY_LIMIT,
      signal,
      headers: ep.headers,
      tls: ep.tls,
    })
    if (!sent.ok) return sent.failure
    const res = sent.res
    if (res.status === 200) {
      const found = readManifestAnswer(ref, ep, res, method)
      if (found !== 'need-get')
        return withIndexPlatforms(ctx, ep, auth, found, method === 'GET' ? res.body : undefined, signal)
    } else if (res.status === 401) {
      return deniedAfterAuth(ep, res, credential)
    } else if (!((res.status === 405 || res.status === 400) && method === 'HEAD')) {
      return classifyFailure(ctx, ref, ep, res, auth, signal)
    }
    method = 'GET' // some registries refuse HEAD, or leave out what a HEAD should say
  }
  return {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: `${ep.host} answered a manifest GET without a usable manifest`,
  }
}

/**
 * A 200 is only "exists" when it is a manifest a runtime would use. A login page from a proxy, a
 * digest header that is not a digest, or a manifest larger than containerd accepts is not.
 */
function readManifestAnswer(
  ref: ImageReference,
  ep: Endpoint,
  res: HttpResponse,
  method: 'HEAD' | 'GET',
): Outcome | 'need-get' {
  const bad = (detail: string): Outcome => ({
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    status: 200,
    detail: `${ep.host} ${detail}`,
  })
  const header = headerValue(res, 'docker-content-digest')
  if (header !== undefined && digestProblem(header) !== undefined)
    return bad('answered with a Docker-Content-Digest that is not a digest')
  if (ref.digest !== undefined && header !== undefined && header !== ref.digest)
    return bad(`answered digest ${header} when asked for ${ref.digest}`)
  const length = Number(headerValue(res, 'content-length') ?? NaN)
  if (length > MANIFEST_BODY_LIMIT)
    return bad(`announced a ${length}-byte manifest; runtimes refuse manifests over ${MANIFEST_BODY_LIMIT} bytes`)
  let mediaType = (headerValue(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (!isManifestMediaType(mediaType)) {
    if (method === 'HEAD') return 'need-get'
    const sniffed = sniffManifestMediaType(res.body)
    if (sniffed === undefined)
      return bad(`answered 200 with something that is not a manifest (${mediaType || 'no content type'})`)
    mediaType = sniffed
  }
  // A body in hand must be what the runtime will unmarshal: a JSON object.
  if (method === 'GET' && !isJsonObject(res.body))
    return bad(`answered a manifest that is not a JSON object (${mediaType})`)
  const digest = ref.digest ?? header ?? (method === 'GET' ? sha256(res.body) : undefined)
  // containerd, too, falls back to GET when a HEAD names no digest.
  if (digest === undefined) return 'need-get'
  return { code: 'Exists', status: 200, detail: `manifest ${digest} found`, digest, mediaType }
}

/**
 * 5. An index found: add the platforms it offers (index-platforms.ts), from the body in hand or one
 *    GET by digest. Failing to read them keeps Exists, with the reason in the detail.
 */
async function withIndexPlatforms(
  ctx: AttemptContext,
  ep: Endpoint,
  auth: AuthState,
  found: Outcome,
  body: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  if (
    ctx.resolveIndexPlatforms === false ||
    found.code !== 'Exists' ||
    found.digest === undefined ||
    !isIndexMediaType(found.mediaType ?? '')
  )
    return found
  const read =
    body === undefined
      ? await fetchIndexPlatforms(ctx, auth, ep, found.digest, signal)
      : platformsFromBody(body, found.digest)
  return read.ok
    ? {
        ...found,
        platforms: read.platforms,
        detail: `${found.detail}; the index lists ${read.platforms.length} platform(s)`,
      }
    : { ...found, detail: `${found.detail}; its platforms are unknown: ${read.reason}` }
}

/** 401 although we answered the challenge. */
function deniedAfterAuth(ep: Endpoint, res: HttpResponse, credential: Credential | null): Outcome {
  const registryErrors = registryErrorCodes(res.body)
  const bearer = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer')
  const base = { status: res.status, ...(registryErrors.length > 0 ? { registryErrors } : {}) }
  // Token auth (Docker Hub, distribution) grants nothing for a repository that does not exist or
  // that this identity may not read, and says `insufficient_scope` for both: we cannot tell which.
  if (bearer?.params.error === 'insufficient_scope' || registryErrors.includes('INSUFFICIENT_SCOPE')) {
    const who = credential === null ? 'anonymous pulls' : credential.label
    return {
      ...base,
      code: 'RepositoryNotFoundOrDenied',
      detail: `${ep.host} grants no pull access to ${ep.repository} for ${who}: the repository does not exist or requires authorization`,
    }
  }
  const who = credential === null ? 'anonymous access' : credential.label
  return { ...base, code: 'AccessDenied', detail: `${ep.host} refused ${who} (HTTP 401)` }
}

async function classifyFailure(
  ctx: AttemptContext,
  ref: ImageReference,
  ep: Endpoint,
  res: HttpResponse,
  auth: AuthState,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const status = res.status
  const registryErrors = registryErrorCodes(res.body)
  const base = { status, ...(registryErrors.length > 0 ? { registryErrors } : {}) }
  if (status === 429 || registryErrors.includes('TOOMANYREQUESTS')) {
    const retry = retryAfterSeconds(res.headers['retry-after'], ctx.now())
    return {
      ...base,
      code: 'RateLimited',
      detail: `${ep.host} is rate limiting pulls (HTTP ${status})`,
      ...(retry === undefined ? {} : { retryAfterSeconds: retry }),
    }
  }
  if (status === 404) {
    // distribution answers MANIFEST_UNKNOWN for a missing repository too, and a HEAD has no body:
    // only the tags list tells a missing tag from a missing repository.
    const repository = registryErrors.includes('NAME_UNKNOWN')
      ? 'missing'
      : await probeRepository(ctx, ep, auth, signal)
    if (repository === 'missing')
      return { ...base, code: 'RepositoryNotFound', detail: `repository ${ep.repository} does not exist on ${ep.host}` }
    return ref.digest !== undefined
      ? { ...base, code: 'DigestNotFound', detail: `${ep.repository}@${ref.digest} does not exist on ${ep.host}` }
      : {
          ...base,
          code: 'TagNotFound',
          detail: `tag ${ref.reference} does not exist in ${ep.repository} on ${ep.host}`,
        }
  }
  if (status === 403) {
    return {
      ...base,
      code: 'AccessDenied',
      detail: `${ep.host} denied access to ${ep.repository} (HTTP 403${registryErrors.length > 0 ? ' ' + registryErrors.join(',') : ''})`,
    }
  }
  if (status >= 500)
    return { ...base, code: 'RegistryUnreachable', cause: '5xx', detail: `${ep.host} answered HTTP ${status}` }
  return {
    ...base,
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: `${ep.host} answered HTTP ${status} to a manifest request`,
  }
}

/**
 * GET /v2/<repo>/tags/list: 200 → the repository exists; 404 → it does not. Anything else
 * (listing forbidden, a timeout) leaves it open; the manifest is missing either way.
 */
async function probeRepository(
  ctx: AttemptContext,
  ep: Endpoint,
  auth: AuthState,
  signal: AbortSignal | undefined,
): Promise<'exists' | 'missing' | 'unknown'> {
  const url = endpointUrl(ep, (h, tls) => ctx.transport.baseUrl(h, tls), 'tags/list', 'n=1')
  try {
    const sent = await sendAuthorized(ctx, auth, {
      method: 'GET',
      url,
      accept: 'application/json',
      maxBodyBytes: ERROR_BODY_LIMIT,
      signal,
      headers: ep.headers,
      tls: ep.tls,
    })
    if (sent.ok && sent.res.status === 200) return 'exists'
    if (sent.ok && sent.res.status === 404) return 'missing'
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

function isJsonObject(body: Buffer): boolean {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
  } catch {
    return false
  }
}
