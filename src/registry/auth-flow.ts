/**
 * Sending a request the way containerd's authorizer does (core/remotes/docker/authorizer.go):
 *  1. Send, with a cached Bearer token when this registry is known to want one.
 *  2. On 401, answer the challenge once: Bearer → a token (token.ts); Basic → the credential.
 *     A cached token that the registry refused is replaced by a fresh one.
 *  3. Return whatever came back: a 401 after answering means the credential is not good enough,
 *     and the caller decides what that means for its request.
 * A registry that challenged for Basic before gets the credential on the first request (containerd
 * does the same within one pull, whose authorizer remembers each host's challenge), so a new image
 * costs one request. If that is refused, the request starts over anonymously and answers the
 * challenge as above: an anonymous-readable repository must not fail because of a stale password,
 * and a pull on the node starts anonymous too.
 */
import { parseChallenges } from './challenge.js'
import { basicAuthorization, hasBasicCredentials, type Credential } from './credential.js'
import type { Attempt } from './result.js'
import type { EndpointTls } from './endpoint.js'
import type { BearerParams, TokenSource } from './token.js'
import { normalizeHost, type HttpResponse, type Transport } from './transport.js'

export interface AuthContext {
  transport: Transport
  tokens: TokenSource
  /** The challenge each registry sent last time: a cached Bearer token, or Basic, is sent at once. */
  authHints: { get(host: string): AuthHint | undefined; set(host: string, hint: AuthHint): void }
  now(): number
}

export type AuthHint = { scheme: 'bearer'; params: BearerParams } | { scheme: 'basic' }

/** Carried across the requests of one attempt, so a GET after a HEAD reuses what the HEAD earned. */
export interface AuthState {
  readonly registryHost: string
  /** The endpoint's TLS settings, also used (in part, realmConnection) for its token realm. */
  readonly tls?: EndpointTls | undefined
  /** The endpoint is plain HTTP: a realm on the same host may be too. */
  readonly plainHttp?: boolean
  readonly scope: string
  readonly credential: Credential | null
  authorization: string | undefined
  /**
   * 'cached': a token from the cache (may be stale); 'basic-first': Basic sent unasked, to a registry
   * that asked for it before; 'fresh': this attempt answered a challenge.
   */
  mode: 'none' | 'cached' | 'basic-first' | 'fresh'
}

export function startAuth(
  ctx: AuthContext,
  registryHost: string,
  repository: string,
  credential: Credential | null,
  endpoint: { tls?: EndpointTls | undefined; plainHttp?: boolean; scope?: string } = {},
): AuthState {
  // The registry's catalog asks `registry:catalog:*`; everything else pulls one repository.
  const scope = endpoint.scope ?? `repository:${repository}:pull`
  const hint = ctx.authHints.get(registryHost)
  const where = {
    registryHost,
    ...(endpoint.tls === undefined ? {} : { tls: endpoint.tls }),
    ...(endpoint.plainHttp === true ? { plainHttp: true } : {}),
  }
  if (hint?.scheme === 'basic' && credential !== null && hasBasicCredentials(credential)) {
    return { ...where, scope, credential, authorization: basicAuthorization(credential), mode: 'basic-first' }
  }
  const cached = hint?.scheme === 'bearer' ? ctx.tokens.cached(hint.params, scope, credential) : undefined
  return {
    ...where,
    scope,
    credential,
    authorization: cached === undefined ? undefined : `Bearer ${cached}`,
    mode: cached === undefined ? 'none' : 'cached',
  }
}

export interface AuthorizedRequest {
  method: 'GET' | 'HEAD'
  url: URL
  accept: string
  maxBodyBytes: number
  signal: AbortSignal | undefined
  /** The endpoint's own headers (containerd `header`) and TLS settings. */
  headers?: Readonly<Record<string, string>> | undefined
  tls?: EndpointTls | undefined
}

/** The response, or why authentication failed before a response could be had. */
export type AuthorizedResult = { ok: true; res: HttpResponse } | { ok: false; failure: Omit<Attempt, 'credential'> }

export async function sendAuthorized(
  ctx: AuthContext,
  state: AuthState,
  req: AuthorizedRequest,
): Promise<AuthorizedResult> {
  for (;;) {
    const res = await ctx.transport.send({
      method: req.method,
      url: req.url,
      headers: { ...req.headers, accept: req.accept },
      authorization: state.authorization,
      maxBodyBytes: req.maxBodyBytes,
      signal: req.signal,
      tls: req.tls,
    })
    if (res.status !== 401 || state.mode === 'fresh') return { ok: true, res }
    if (state.mode === 'basic-first') {
      // Refused unasked: start over the way the node does, anonymously, and answer the challenge.
      state.authorization = undefined
      state.mode = 'none'
      continue
    }
    const failure = await answerChallenge(ctx, state, res, req.signal)
    if (failure !== undefined) return { ok: false, failure }
  }
}

/**
 * How the token realm is reached. containerd fetches tokens with the host's own http.Client,
 * wherever the realm is (core/remotes/docker/config/hosts.go: the host's authorizer is built
 * WithAuthClient(&c)), so the realm gets the host's CA, client certificate and dial timeout, its
 * TLS checks and its HTTP fallback. A realm on the endpoint's own host gets all of that here too.
 * A realm on another host keeps the CA, client certificate and dial timeout, but is always
 * verified and never spoken to in plain HTTP: the credentials go there, to a host the operator
 * never named (the threat: a registry, or someone between, naming a realm to collect them). Where
 * the node would reach such a realm anyway, the answer is unverified, never a denial.
 */
export function realmConnection(tls: EndpointTls | undefined, sameHost: boolean): EndpointTls | undefined {
  if (tls === undefined || sameHost) return tls
  const { caPem, clientCertificates, dialTimeoutMs } = tls
  if (caPem === undefined && clientCertificates === undefined && dialTimeoutMs === undefined) return undefined
  return {
    verify: true,
    ...(caPem === undefined ? {} : { caPem }),
    ...(clientCertificates === undefined ? {} : { clientCertificates }),
    ...(dialTimeoutMs === undefined ? {} : { dialTimeoutMs }),
  }
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host
  } catch {
    return undefined
  }
}

async function answerChallenge(
  ctx: AuthContext,
  state: AuthState,
  res: HttpResponse,
  signal: AbortSignal | undefined,
): Promise<Omit<Attempt, 'credential'> | undefined> {
  const challenges = parseChallenges(res.headers['www-authenticate'])
  const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm !== undefined)
  const basic = challenges.find((c) => c.scheme === 'basic')
  const { credential, registryHost } = state
  if (bearer !== undefined) {
    const params: BearerParams = { realm: bearer.params.realm!, service: bearer.params.service }
    ctx.authHints.set(registryHost, { scheme: 'bearer', params })
    const realmHost = hostOf(params.realm)
    const sameHost = realmHost !== undefined && normalizeHost(realmHost) === normalizeHost(registryHost)
    const tls = realmConnection(state.tls, sameHost)
    const token = await ctx.tokens.get(params, state.scope, credential, {
      fresh: state.mode === 'cached',
      signal,
      ...(tls === undefined ? {} : { tls }),
      ...(sameHost ? { plainHttp: state.plainHttp === true } : {}),
    })
    if (!token.ok) {
      const { ok: _ok, ...failure } = token
      return failure
    }
    state.authorization = `Bearer ${token.token}`
  } else if (basic !== undefined) {
    // containerd's basic handler refuses to answer without both a username and a password.
    if (credential === null || !hasBasicCredentials(credential)) {
      return {
        code: 'AccessDenied',
        status: 401,
        detail: `${registryHost} requires a username and password (Basic auth) and ${credential === null ? 'none was given' : `${credential.label} has none`}`,
      }
    }
    ctx.authHints.set(registryHost, { scheme: 'basic' })
    state.authorization = basicAuthorization(credential)
  } else {
    return {
      code: 'AccessDenied',
      status: 401,
      detail: `${registryHost} answered 401 without a usable authentication challenge`,
    }
  }
  state.mode = 'fresh'
  return undefined
}
