import type { UnreachableCause } from './result.js'

/**
 * A request that produced no usable HTTP answer. `reason` is the stable cause code; `detail` is
 * for people and never contains a URL query, header or credential.
 */
export class TransportError extends Error {
  readonly code = 'RegistryUnreachable'
  constructor(
    readonly reason: UnreachableCause,
    readonly detail: string,
  ) {
    super(detail)
    this.name = 'TransportError'
  }
}

/** The error code our DNS guard (transport.ts) fails a lookup with. */
export const METADATA_ADDRESS_CODE = 'EPULLGUARD_METADATA_ADDRESS'
const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA'])
const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'])
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** Maps whatever undici / node:net / node:tls threw to a cause. */
export function classifyNetworkError(err: unknown, host: string): TransportError {
  if (err instanceof TransportError) return err
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const name = typeof e?.name === 'string' ? e.name : ''
  const message = typeof e?.message === 'string' ? e.message : String(err)
  if (code === METADATA_ADDRESS_CODE)
    return new TransportError('metadata-host', `refused to connect to ${host}: ${message}`)
  if (DNS.has(code)) return new TransportError('dns', `cannot resolve ${host} (${code})`)
  if (REFUSED.has(code)) return new TransportError('refused', `connection to ${host} refused (${code})`)
  if (TIMEOUT.has(code) || name === 'TimeoutError')
    return new TransportError('timeout', `${host} did not answer in time (${code || name})`)
  if (isTlsError(code, message)) return new TransportError('tls', `TLS with ${host} failed: ${code || message}`)
  if (RESET.has(code)) return new TransportError('reset', `${host} closed the connection (${code})`)
  if (name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') {
    return new TransportError('timeout', `review time budget ran out while waiting for ${host}`)
  }
  // undici wraps some errors (fetch-style); look one level down before giving up.
  if (e?.cause !== undefined && e.cause !== err) {
    const inner = classifyNetworkError(e.cause, host)
    if (inner.reason !== 'bad-response') return inner
  }
  return new TransportError('bad-response', `request to ${host} failed: ${code || name || message}`)
}

function isTlsError(code: string, message: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code === 'EPROTO' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'HOSTNAME_MISMATCH' ||
    /\bSSL\b|\bTLS\b|certificate/i.test(message)
  )
}

export function asTransportError(err: unknown): TransportError {
  return err instanceof TransportError
    ? err
    : new TransportError('bad-response', `unexpected error: ${(err as Error)?.message ?? String(err)}`)
}
