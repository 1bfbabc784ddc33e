/**
 * Where one request for an image goes: a host, its API root, the repository there, and how to
 * talk to it. Without mirrors an image has one endpoint, its own registry; with mirrors (the
 * mirrors/ room builds them from the nodes' containerd or CRI-O files) a list, asked in order
 * the way the runtime asks it.
 */
import type { ImageReference } from '../reference/index.js'

/** A client certificate and its key, PEM (containerd `client`). */
export interface ClientCertificate {
  certPem: string
  keyPem: string
}

/**
 * containerd's rule for trying plain HTTP (core/remotes/docker/resolver.go, httpFallback): only
 * after the server answered the TLS handshake in plain HTTP, or the handshake timed out, or, for a
 * host written without a port, the connection was refused or timed out (isPortError).
 */
export interface ContainerdFallback {
  rule: 'containerd'
  /** The host as written in hosts.toml names a port: then isPortError never applies. */
  portWritten: boolean
}

/**
 * How to talk to one host: its TLS settings and its dialer. containerd builds both into one
 * per-host http.Client (core/remotes/docker/config/hosts.go), and so does the transport (one pool
 * per host and settings).
 */
export interface EndpointTls {
  /** Check the certificate (containerd `skip_verify = false`). */
  verify: boolean
  /** Extra CAs for this host (containerd `ca`), trusted on top of the usual ones. PEM. */
  caPem?: string
  /** Client certificates for mTLS (containerd `client`), in the order configured; see transport.ts for which is presented. */
  clientCertificates?: readonly ClientCertificate[]
  /** containerd `dial_timeout`, in milliseconds: the dialer's Timeout (negative: every dial fails at once, as in Go). */
  dialTimeoutMs?: number
  /**
   * Whether plain HTTP is tried after HTTPS failed, and after what:
   * - `true`: after any TLS failure (pullguard's rule for Docker's --insecure-registry and CRI-O's
   *   `insecure = true`; see plain-fallback.ts for what those runtimes do);
   * - a ContainerdFallback: containerd's narrower rule, for an http:// host with TLS settings and a
   *   port other than 80, or a localhost registry on a port other than 443 (ConfigureHosts).
   */
  plainFallback?: boolean | ContainerdFallback
}

export interface Endpoint {
  /** host[:port] the requests go to: the key for auth hints, pauses and the request cap. */
  host: string
  /** `http` for a host configured as plain HTTP; otherwise HTTPS (or, for an insecure registry, whatever the transport found it speaks). */
  scheme?: 'https' | 'http'
  /** The API root: `/v2`, or another with containerd's `override_path`. No trailing slash. */
  root: string
  /** The repository at this host (registries.conf may rewrite it). */
  repository: string
  /** Appended to manifest and tag requests, e.g. `ns=docker.io` for a mirror (no `?`). */
  query?: string
  /** Per-host TLS; absent: the transport's trust store and --insecure-registry list. */
  tls?: EndpointTls
  /** Extra request headers (containerd `header`). */
  headers?: Readonly<Record<string, string>>
  /** Whether the pod's credentials are sent here (CRI-O sends them only to the image's own registry). */
  credentials: boolean
  /** How messages name it: the host, and where it was configured. */
  label: string
}

/** The image's own registry, as pullguard asks it without mirrors. */
export function directEndpoint(ref: ImageReference): Endpoint {
  return { host: ref.registryHost, root: '/v2', repository: ref.path, credentials: true, label: ref.registryHost }
}

/**
 * Where the runtime pulls an image from (the mirrors/ room builds it from the nodes' files): the
 * hosts to ask, in order. `generation` changes whenever the configuration behind the answers
 * does, so an answer cached under the old hosts is not served after a reload.
 */
export interface Router {
  endpoints(ref: ImageReference): readonly Endpoint[]
  readonly generation: number
}

/**
 * `<scheme>://<host><root>/<repository>/<suffix>`, with the endpoint's query and `extra` (both
 * without `?`). `origin` gives the scheme and host the transport uses for an endpoint without its
 * own (an insecure registry found to speak plain HTTP).
 */
export function endpointUrl(
  ep: Endpoint,
  origin: (host: string, tls: EndpointTls | undefined) => string,
  suffix: string,
  extra?: string,
): URL {
  const base = ep.scheme === undefined ? origin(ep.host, ep.tls) : `${ep.scheme}://${ep.host}`
  const path = `${ep.root}/${ep.repository}/${suffix}`.replace(/\/{2,}/g, '/')
  const query = [extra, ep.query].filter((q) => q !== undefined && q !== '').join('&')
  return new URL(`${base}${path.startsWith('/') ? path : `/${path}`}${query === '' ? '' : `?${query}`}`)
}
