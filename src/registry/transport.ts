import { createHash } from 'node:crypto'
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import type { IncomingHttpHeaders } from 'node:http'
import type { SecureContext } from 'node:tls'
import { Pool } from 'undici'
import { BoundedMap } from '../cache/bounded-map.js'
import { GO_TLS_HANDSHAKE_TIMEOUT_MS, StepTimeout, steppedConnector } from './connector.js'
import type { EndpointTls } from './endpoint.js'
import { HostSlots } from './host-slots.js'
import { metadataAddressProblem, metadataHostProblem } from './metadata-hosts.js'
import { ConnectFailureError, connectFailure, fallsBackAfter, mayFallBack } from './plain-fallback.js'
import { METADATA_ADDRESS_CODE, TransportError, classifyNetworkError } from './transport-error.js'
import { hostSecureContext, type TrustStore } from './trust.js'

/**
 * HTTP to registries: one keep-alive pool per origin (capped connections, so a slow registry
 * cannot soak up sockets), per-request timeout on top of the caller's deadline, bounded body
 * reads, and redirects followed by hand so credentials never cross to another origin.
 */
export interface TransportOptions {
  trust: TrustStore
  /** host[:port] values (as written in image references) reached without certificate checks, or over plain HTTP. */
  insecureRegistries?: Iterable<string>
  /** Concurrent connections per origin. Registries throttle clients that open many. */
  connectionsPerOrigin?: number
  /** Requests in flight per registry host, shared by every caller; the rest wait in order (host-slots.ts). */
  requestsPerRegistry?: number
  /** One request, connect to last byte. Shorter than the review budget so a second credential still gets a chance. */
  requestTimeoutMs?: number
  /**
   * The TLS handshake limit for a host with its own settings (connector.ts): Go's, 10 s, as the
   * runtime has it; only reached when the per-request timeout is longer. Tests shorten it.
   */
  tlsHandshakeTimeoutMs?: number
  userAgent?: string
  /** Told about every HTTP request: host, outcome (`2xx`… or a cause such as `timeout`), seconds. */
  onRequest?: RequestObserver
}

export type RequestObserver = (host: string, outcome: string, seconds: number) => void

export interface HttpRequest {
  method: 'GET' | 'HEAD'
  url: URL
  headers?: Record<string, string>
  /** Kept apart from `headers` so it can be dropped on a cross-origin redirect. */
  authorization?: string | undefined
  /** Cap on a 2xx body; larger bodies are a bad response, not a buffer to fill. */
  maxBodyBytes: number
  /** The caller's overall deadline. */
  signal?: AbortSignal | undefined
  /** The host's own TLS settings (a mirror's `skip_verify`, `ca`); absent: the transport's. */
  tls?: EndpointTls | undefined
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The URL that answered, after redirects. */
  url: URL
}

export const DEFAULT_CONNECTIONS_PER_ORIGIN = 8
/**
 * One request, connect to last byte. Callers with a budget (the webhook: --timeout) set it to a
 * fraction of that budget so a registry that hangs on one credential leaves time for the next.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000
/** Error and redirect bodies only serve to read registry error codes: 64 KiB is plenty. */
export const ERROR_BODY_LIMIT = 64 * 1024
/** containerd follows at most 10; registries that need more are misconfigured. */
const MAX_REDIRECTS = 5
/** Origins come from untrusted image names: cap the pools we keep open. */
const MAX_POOLS = 256
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

export class Transport {
  /** Most recently used last, so the bound closes the pool idle the longest. */
  readonly #pools = new BoundedMap<string, Pool>(MAX_POOLS, (_key, pool) => void pool.close().catch(() => undefined))
  readonly #insecure: ReadonlySet<string>
  /** Insecure hosts found to speak plain HTTP. */
  readonly #plain = new Set<string>()
  readonly #trust: TrustStore
  readonly #connections: number
  readonly #timeoutMs: number
  readonly #handshakeMs: number
  readonly #onRequest: RequestObserver | undefined
  readonly #userAgent: string
  /** Shared by every request to a host, whoever makes it. */
  readonly slots: HostSlots
  /** Secure contexts of hosts with their own CA or client certificate, by a hash of those. */
  readonly #extended = new Map<string, SecureContext>()

  constructor(options: TransportOptions) {
    this.#trust = options.trust
    this.#insecure = new Set([...(options.insecureRegistries ?? [])].map(normalizeHost))
    this.slots = new HostSlots(options.requestsPerRegistry)
    // A pool never needs more connections than requests it may carry at once.
    this.#connections = Math.min(options.connectionsPerOrigin ?? DEFAULT_CONNECTIONS_PER_ORIGIN, this.slots.limit)
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.#handshakeMs = options.tlsHandshakeTimeoutMs ?? GO_TLS_HANDSHAKE_TIMEOUT_MS
    this.#userAgent = options.userAgent ?? 'pullguard'
    this.#onRequest = options.onRequest
  }

  isInsecure(host: string): boolean {
    return this.#insecure.has(normalizeHost(host))
  }

  /**
   * `https://host`, or `http://host` for a host that may fall back to plain HTTP (an insecure
   * registry, or an endpoint whose TLS settings allow it) and turned out to speak it. An endpoint
   * that may not fall back never inherits what another one found out about the same host.
   */
  baseUrl(host: string, tls?: EndpointTls): string {
    const h = normalizeHost(host)
    return `${this.#plain.has(h) && this.#mayFallBack(h, tls) ? 'http' : 'https'}://${host}`
  }

  /** Forget which hosts speak plain HTTP (the mirrors' configuration changed). */
  forgetPlainHosts(): void {
    this.#plain.clear()
  }

  /** Whether `host` may be spoken to over plain HTTP: listed insecure, or its endpoint says so. */
  #mayFallBack(host: string, tls: EndpointTls | undefined): boolean {
    return tls === undefined ? this.#insecure.has(host) : mayFallBack(tls)
  }

  /** The fallback rule for `host` (plain-fallback.ts): its endpoint's, or --insecure-registry's (Docker's). */
  #fallbackSetting(host: string, tls: EndpointTls | undefined): EndpointTls['plainFallback'] {
    return tls === undefined ? this.#insecure.has(host) : tls.plainFallback
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url
    let authorization = req.authorization
    let headers = req.headers
    for (let hop = 0; ; hop++) {
      // The first URL (a redirect target is checked below, as soon as it is read); token realms
      // come through here too.
      if (hop === 0) refuseMetadataHost(url, undefined)
      let res: HttpResponse
      try {
        res = await this.#once(req, url, authorization, headers)
      } catch (err) {
        // HTTPS failed: plain HTTP next, where the runtime's rule for this host says so (plain-fallback.ts).
        if (
          err instanceof TransportError &&
          url.protocol === 'https:' &&
          fallsBackAfter(this.#fallbackSetting(url.host, hop === 0 ? req.tls : undefined), err)
        ) {
          url = new URL(url.href.replace(/^https:/, 'http:'))
          res = await this.#once(req, url, authorization, headers)
          // Remembered only once plain HTTP answered: a one-off TLS failure must not pin the host to it.
          this.#plain.add(url.host)
        } else {
          throw err
        }
      }
      const location = res.headers.location
      if (!REDIRECT_STATUSES.has(res.status) || typeof location !== 'string') return res
      if (hop >= MAX_REDIRECTS)
        throw new TransportError('bad-response', `${req.url.host} redirected more than ${MAX_REDIRECTS} times`)
      const next = parseLocation(location, url)
      refuseMetadataHost(next, url.host)
      if (
        next.protocol === 'http:' &&
        !this.#insecure.has(next.host) &&
        !(next.host === req.url.host && (req.url.protocol === 'http:' || mayFallBack(req.tls)))
      ) {
        throw new TransportError(
          'tls',
          `${url.host} redirected to plain HTTP at ${next.host}, which is not an insecure registry`,
        )
      }
      // Never send credentials to another origin (or down to plain HTTP on the same host), nor the
      // endpoint's own headers that carry them (a hosts.toml `header` may hold an Authorization).
      if (next.origin !== url.origin) {
        authorization = undefined
        headers = withoutSensitive(headers)
      }
      url = next
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.allSettled(pools.map((p) => p.close()))
  }

  async #once(
    req: HttpRequest,
    url: URL,
    authorization: string | undefined,
    headers: Record<string, string> | undefined,
  ): Promise<HttpResponse> {
    // A slot first: waiting for one is pullguard's own queue, not the registry's time (no request
    // was sent, so none is counted), bounded by the caller's deadline.
    const release = await this.slots.acquire(url.host, req.signal ?? AbortSignal.timeout(this.#timeoutMs))
    const started = performance.now()
    try {
      const res = await this.#request(req, url, authorization, headers)
      this.#onRequest?.(url.host, `${Math.floor(res.status / 100)}xx`, (performance.now() - started) / 1000)
      return res
    } catch (err) {
      this.#onRequest?.(
        url.host,
        err instanceof TransportError ? err.reason : 'bad-response',
        (performance.now() - started) / 1000,
      )
      throw err
    } finally {
      release()
    }
  }

  async #request(
    req: HttpRequest,
    url: URL,
    authorization: string | undefined,
    extra: Record<string, string> | undefined,
  ): Promise<HttpResponse> {
    const host = url.host
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = req.signal === undefined ? timeout : AbortSignal.any([req.signal, timeout])
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...extra }
    if (authorization !== undefined) headers.authorization = authorization
    // A redirect to another host leaves the endpoint's own TLS settings behind.
    const tls = url.host === req.url.host ? req.tls : undefined
    try {
      const res = await this.#pool(url, tls).request({
        method: req.method,
        path: url.pathname + url.search,
        headers,
        signal,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        // undici closes the connection after every HEAD by default (for servers that wrongly send
        // a body); registries answer HEAD per spec, and a new TLS handshake per manifest check was
        // most of the cold path's cost. Go's client, the kubelet's, keeps them open too.
        reset: false,
      })
      const ok = res.statusCode >= 200 && res.statusCode < 300
      const limit = ok ? req.maxBodyBytes : ERROR_BODY_LIMIT
      const { body, overflow } = await readBounded(res.body, limit)
      if (overflow && ok) {
        throw new TransportError('bad-response', `${host} sent a body larger than ${limit} bytes for ${url.pathname}`)
      }
      return { status: res.statusCode, headers: res.headers, body, url }
    } catch (err) {
      if (err instanceof TransportError) throw err
      if (req.signal?.aborted === true) {
        throw new TransportError('timeout', `the review's time budget ran out waiting for ${host}`)
      }
      if (timeout.aborted) throw new TransportError('timeout', `${host} did not answer within ${this.#timeoutMs} ms`)
      const classified = classifyNetworkError(err, host)
      // What containerd's fallback rule looks at goes with the error (plain-fallback.ts).
      const failure = connectFailure(err)
      if (failure === undefined) throw classified
      const detail = err instanceof StepTimeout ? `${host}: ${err.message}` : classified.detail
      throw new ConnectFailureError(classified.reason, detail, failure)
    }
  }

  /**
   * The host's CA and client certificate on top of the trust store. Of several client certificates
   * the first is presented: Go presents the first the server's CertificateRequest accepts
   * (tls.Config.Certificates), a choice Node's client has no hook for; with the usual one they
   * agree, and where the server wants a later one the handshake fails: unverified, never a denial.
   */
  #secureContext(tls: EndpointTls | undefined): SecureContext {
    const client = tls?.clientCertificates?.[0]
    if (tls === undefined || (tls.caPem === undefined && client === undefined)) return this.#trust.secureContext
    const key = hashOf([tls.caPem ?? '', client?.certPem ?? '', client?.keyPem ?? ''])
    let context = this.#extended.get(key)
    if (context === undefined) {
      context = hostSecureContext(this.#trust, { caPem: tls.caPem, client })
      // CA and client files come from the operator's configuration, not from pod specs: a handful at most.
      if (this.#extended.size >= MAX_POOLS) this.#extended.clear()
      this.#extended.set(key, context)
    }
    return context
  }

  #pool(url: URL, tls: EndpointTls | undefined): Pool {
    // One pool per origin and settings: a mirror's own CA, client certificate or dial timeout must not serve another host.
    const origin = url.origin
    const key =
      tls === undefined
        ? origin
        : `${origin} ${hashOf([
            tls.verify ? 'verify' : 'no-verify',
            tls.caPem ?? '',
            tls.clientCertificates?.[0]?.certPem ?? '',
            tls.clientCertificates?.[0]?.keyPem ?? '',
            String(tls.dialTimeoutMs ?? ''),
          ])}`
    let pool = this.#pools.get(key)
    if (pool !== undefined) {
      // Used again: set again, to the back of the line.
      this.#pools.set(key, pool)
      return pool
    }
    pool = new Pool(origin, {
      connections: this.#connections,
      keepAliveTimeout: 30_000,
      connect:
        tls === undefined
          ? {
              timeout: this.#timeoutMs,
              secureContext: this.#trust.secureContext,
              // Only for hosts the operator listed; there is no global switch.
              rejectUnauthorized: !this.#insecure.has(url.host),
              // A name that resolves to a metadata address is refused after DNS, before connecting.
              lookup: guardedLookup,
            }
          : // A host with its own settings: the dial and the handshake each with the runtime's limit (connector.ts).
            steppedConnector(
              { boundMs: this.#timeoutMs, dialTimeoutMs: tls.dialTimeoutMs, handshakeTimeoutMs: this.#handshakeMs },
              { lookup: guardedLookup },
              { secureContext: this.#secureContext(tls), rejectUnauthorized: tls.verify },
            ),
    })
    this.#pools.set(key, pool)
    return pool
  }
}

/** A key for settings that may hold a private key or a CA: never kept in clear. */
function hashOf(parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex')
}

/**
 * One spelling per host, as URL.host has it (lower case, default port dropped), so
 * `--insecure-registry MyReg:443` matches the image `myreg/app`.
 */
export function normalizeHost(host: string): string {
  try {
    return new URL(`https://${host}`).host
  } catch {
    return host.toLowerCase()
  }
}

/** What Go's client, the runtime's, drops on a redirect to another host. */
const SENSITIVE_HEADERS = new Set(['authorization', 'proxy-authorization', 'www-authenticate', 'cookie', 'cookie2'])
function withoutSensitive(headers: Record<string, string> | undefined): Record<string, string> | undefined {
  if (headers === undefined) return undefined
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !SENSITIVE_HEADERS.has(k.toLowerCase())))
}

function refuseMetadataHost(url: URL, redirectedFrom: string | undefined): void {
  const problem = metadataHostProblem(url.host)
  if (problem === undefined) return
  throw new TransportError(
    'metadata-host',
    redirectedFrom === undefined
      ? `refused to contact ${url.host}: ${problem}`
      : `${redirectedFrom} redirected to ${url.host}, refused: ${problem}`,
  )
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void
type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void

/**
 * A lookup for net.connect that refuses answers which are metadata or link-local addresses
 * (classified as `metadata-host`): a name pointed there (by DNS or a redirect) gets no connection.
 */
export function metadataGuardedLookup(resolve: LookupFunction = dnsLookup as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, address, family) => {
      if (err !== null) return callback(err, address, family)
      const list: LookupAddress[] = Array.isArray(address) ? address : [{ address, family: family ?? 0 }]
      for (const a of list) {
        const problem = metadataAddressProblem(a.address)
        if (problem !== undefined)
          return callback(
            Object.assign(new Error(`${hostname} resolves to ${a.address}: ${problem}`), {
              code: METADATA_ADDRESS_CODE,
            }),
            address,
            family,
          )
      }
      callback(null, address, family)
    })
  }
}
const guardedLookup = metadataGuardedLookup()

function parseLocation(location: string, base: URL): URL {
  try {
    const next = new URL(location, base)
    if (next.protocol === 'https:' || next.protocol === 'http:') return next
  } catch {
    // fall through
  }
  throw new TransportError('bad-response', `${base.host} redirected to an invalid location`)
}

async function readBounded(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown },
  limit: number,
): Promise<{ body: Buffer; overflow: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size))
      body.destroy()
      return { body: Buffer.concat(chunks), overflow: true }
    }
    chunks.push(chunk)
    size += chunk.length
  }
  return { body: Buffer.concat(chunks), overflow: false }
}
