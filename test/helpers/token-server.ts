// An HTTPS token server speaking Docker's token auth spec, good enough for distribution 2.8.
//
// 1. The registry answers 401 `Bearer realm=<realm>,service=<service>,scope=…`.
// 2. The client calls GET <realm>?service=…&scope=repository:NAME:pull[,push] (scope repeated, space
//    separated, or absent), with Basic credentials or anonymously.
// 3. Wrong credentials → 401 JSON error. Otherwise 200 with a JWT whose `access` claim carries what
//    `grant` returned — possibly nothing, which is still a 200 (Docker Hub does the same; the registry
//    then answers 401 insufficient_scope).
// 4. The registry verifies the JWT (registry/auth/token/token.go): signature by the key of the leaf
//    cert in the `x5c` header, that chain verified against `rootcertbundle` (our CA), `iss` = issuer,
//    `aud` = service, exp/nbf with 60 s leeway. 2.8 decodes `aud` as a plain string, so no array.
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestCA } from './pki.js'

export interface TokenServerOptions {
  ca: TestCA
  users: Record<string, string>
  grant: (user: string | null, repository: string, actions: string[]) => string[]
  expiresIn?: number
  /** Lifetime written into the JWT's `exp`, when it should differ from the advertised `expires_in`
   * (a token the registry already refuses while the client still trusts it). Default: expiresIn. */
  jwtLifetime?: number
  tokenField?: 'token' | 'access_token' | 'both'
  includeIssuedAt?: boolean
}
export interface TokenServer {
  realm: string
  service: string
  issuer: string
  rootCertBundlePath: string
  requests: Array<{ user: string | null; scope: string | null; status: number }>
  options: TokenServerOptions
  close(): Promise<void>
}

const SERVICE = 'pullguard-test-registry'
const ISSUER = 'pullguard-test-token-issuer'
// Tokens are minted now; backdating nbf absorbs clock differences between Node and the registry.
const NBF_BACKDATE_SECONDS = 10

interface Access {
  type: string
  name: string
  actions: string[]
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

function signJwt(key: KeyObject, certDer: Buffer, claims: object): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  // JWS ES256 wants the raw r||s form (libtrust checks for exactly 64 bytes), not DER.
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${b64url(sig)}`
}

// `repository:team/app:pull,push` → type, name, actions. Names never contain `:` but a type can be
// `repository(plugin)`, so split at the first and the last colon.
function parseScope(s: string): Access | null {
  const first = s.indexOf(':')
  const last = s.lastIndexOf(':')
  if (first < 0 || last === first) return null
  return {
    type: s.slice(0, first),
    name: s.slice(first + 1, last),
    actions: s
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  }
}

// `user` is null for anonymous; `ok` is false for wrong credentials, with the name that was tried
// (recorded in `requests` so tests can tell which credential reached the realm).
function authenticate(req: IncomingMessage, users: Record<string, string>): { ok: boolean; user: string | null } {
  const h = req.headers.authorization
  if (h === undefined) return { ok: true, user: null }
  const m = /^Basic\s+(\S+)$/i.exec(h)
  const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : ''
  const i = decoded.indexOf(':')
  if (i < 0) return { ok: false, user: null }
  const user = decoded.slice(0, i)
  return { ok: Object.hasOwn(users, user) && users[user] === decoded.slice(i + 1), user }
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const tls = await opts.ca.issue('pullguard test token server', { dns: ['localhost'], ips: ['127.0.0.1'] })
  // A separate signing cert from the same CA: the registry's rootcertbundle is just the CA.
  const signer = await opts.ca.issue('pullguard test token signer', { dns: ['token-signer.invalid'] })
  const signingKey = createPrivateKey(signer.keyPem)
  const signerDer = new X509Certificate(signer.certPem).raw
  const requests: TokenServer['requests'] = []
  const state: { server?: Server; realm: string } = { realm: '' }
  const result: TokenServer = {
    realm: '',
    service: SERVICE,
    issuer: ISSUER,
    rootCertBundlePath: opts.ca.caPath,
    requests,
    options: opts,
    close: () =>
      new Promise<void>((resolve) => {
        if (!state.server) return resolve()
        state.server.closeAllConnections()
        state.server.close(() => resolve())
      }),
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', state.realm)
    const rawScopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean)
    const scope = rawScopes.length > 0 ? rawScopes.join(' ') : null
    const reply = (status: number, body: object, user: string | null): void => {
      requests.push({ user, scope, status })
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method !== 'GET' || url.pathname !== '/token') {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: 'only GET /token is served' }] }, null)
      return
    }
    const o = result.options
    const { ok, user } = authenticate(req, o.users)
    if (!ok) {
      res.setHeader('www-authenticate', 'Basic realm="pullguard-test-token"')
      reply(
        401,
        {
          errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }],
          details: 'incorrect username or password',
        },
        user,
      )
      return
    }
    const access: Access[] = []
    for (const s of rawScopes) {
      const a = parseScope(s)
      if (a === null) continue
      // Only repository scopes are ever granted (no catalog): mirrors what tests need and Docker Hub.
      const actions = a.type === 'repository' ? [...new Set(o.grant(user, a.name, a.actions))] : []
      access.push({ type: a.type, name: a.name, actions })
    }
    const now = Math.floor(Date.now() / 1000)
    const expiresIn = o.expiresIn ?? 300
    const token = signJwt(signingKey, signerDer, {
      iss: ISSUER,
      sub: user ?? '',
      aud: url.searchParams.get('service') ?? SERVICE,
      exp: now + (o.jwtLifetime ?? expiresIn),
      nbf: now - NBF_BACKDATE_SECONDS,
      iat: now,
      jti: randomUUID(),
      access,
    })
    const field = o.tokenField ?? 'token'
    const body: Record<string, unknown> = { expires_in: expiresIn }
    if (field === 'token' || field === 'both') body.token = token
    if (field === 'access_token' || field === 'both') body.access_token = token
    if (o.includeIssuedAt ?? true) body.issued_at = new Date(now * 1000).toISOString()
    reply(200, body, user)
  }

  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  state.server = server
  state.realm = `https://127.0.0.1:${(server.address() as AddressInfo).port}/token`
  result.realm = state.realm
  return result
}
