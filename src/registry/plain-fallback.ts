/**
 * When a request that failed over HTTPS is sent again over plain HTTP. Each runtime has its own rule:
 * - containerd (core/remotes/docker/resolver.go, httpFallback.RoundTrip, which ConfigureHosts puts
 *   on an http:// host with TLS settings and a port other than 80, and on a localhost registry on a
 *   port other than 443): isTLSError — the handshake was answered in plain HTTP (a
 *   tls.RecordHeaderError whose five bytes are "HTTP/"), or it timed out ("TLS handshake timeout")
 *   — or isPortError — for a host written without a port, a refused connection or a timeout. A
 *   certificate that does not verify, a TLS alert, a reset: the pull's error, no second try.
 * - Docker's --insecure-registry (HTTPS, then HTTP for the same registry) and CRI-O's
 *   `insecure = true` (containers-image docker/docker_client.go, detectPropertiesHelper: with
 *   verification skipped, a ping that fails over HTTPS for any reason is sent again over HTTP).
 *   pullguard falls back for these after a TLS failure only: the failure a plain-HTTP registry
 *   causes. A registry those runtimes reach over HTTP after another failure (refused on 443, a
 *   5xx ping) is left unverified here, never judged on an answer the node would not get.
 * Node cannot see the five bytes: OpenSSL reports any first record that is not TLS as "wrong
 * version number" (ssl3_get_record). So for containerd a plain answer other than "HTTP/" (an SSH
 * banner) also falls back here; the plain request then fails too, not being HTTP, and the host
 * fails either way.
 */
import type { ContainerdFallback, EndpointTls } from './endpoint.js'
import { StepTimeout } from './connector.js'
import { TransportError } from './transport-error.js'
import type { UnreachableCause } from './result.js'

/** What containerd's fallback looks at in a failed connect, read from what Node threw. */
export type ConnectFailure = 'plain-answer' | 'handshake-timeout' | 'dial-timeout' | 'refused'

/** A TransportError that also says which connect failure it was, for the fallback decision. */
export class ConnectFailureError extends TransportError {
  constructor(
    reason: UnreachableCause,
    detail: string,
    readonly failure: ConnectFailure,
  ) {
    super(reason, detail)
  }
}

/** Node's error for a connect, as one of the failures containerd's rule names; undefined: any other. */
export function connectFailure(err: unknown): ConnectFailure | undefined {
  if (err instanceof StepTimeout) return err.step === 'dial' ? 'dial-timeout' : 'handshake-timeout'
  const e = err as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  if (code === 'ECONNREFUSED') return 'refused'
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return 'plain-answer'
  // Node's socket write path reports the same OpenSSL error as EPROTO, with the reason only in the
  // text: EPROTO alone covers every protocol failure, so the reason must be read there.
  if (code === 'EPROTO' && typeof e?.message === 'string' && e.message.includes('wrong version number'))
    return 'plain-answer'
  return undefined
}

/** containerd's isTLSError || isPortError for the failure, on a host with its HTTP fallback. */
export function containerdFallsBack(rule: ContainerdFallback, failure: ConnectFailure | undefined): boolean {
  if (failure === 'plain-answer' || failure === 'handshake-timeout') return true
  if (failure === 'refused' || failure === 'dial-timeout') return !rule.portWritten
  return false
}

/** Whether the endpoint may be spoken to over plain HTTP at all (under either rule). */
export function mayFallBack(tls: EndpointTls | undefined): boolean {
  return tls?.plainFallback !== undefined && tls.plainFallback !== false
}

/**
 * Whether `err` (an HTTPS request's failure) is retried over plain HTTP under `setting`: the
 * endpoint's own, or `true` for a host on --insecure-registry.
 */
export function fallsBackAfter(setting: EndpointTls['plainFallback'], err: TransportError): boolean {
  if (setting === undefined || setting === false) return false
  if (setting === true) return err.reason === 'tls'
  return containerdFallsBack(setting, err instanceof ConnectFailureError ? err.failure : undefined)
}
