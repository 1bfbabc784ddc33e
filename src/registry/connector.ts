/**
 * Connecting to a host with its own settings (a containerd host with TLS settings or a
 * `dial_timeout`, a CRI-O insecure source) in the two steps Go's http.Transport takes, each with
 * its own limit, so the transport can tell which one failed (containerd's plain-HTTP fallback
 * treats them differently, plain-fallback.ts):
 *  1. the dial (DNS, then TCP): the host's `dial_timeout` where hosts.toml sets one (a
 *     net.Dialer Timeout, core/remotes/docker/config/hosts.go);
 *  2. the TLS handshake: http.Transport's TLSHandshakeTimeout, 10 s in containerd's
 *     DefaultHTTPTransport (core/remotes/docker/registry.go) and in containers-image's
 *     (pkg/tlsclientconfig/tlsclientconfig.go, NewTransport).
 * Both are cut at pullguard's own bound (the per-request timeout, a fraction of the review's
 * budget); running into that bound is pullguard's timeout, never one of containerd's.
 */
import { buildConnector } from 'undici'

/** Go's http.Transport TLSHandshakeTimeout in containerd's DefaultHTTPTransport. */
export const GO_TLS_HANDSHAKE_TIMEOUT_MS = 10_000

/** A connect step ran out of the runtime's time for it: the dial (`dial_timeout`) or the TLS handshake. */
export class StepTimeout extends Error {
  /** Node's code for a connect that timed out, so anything classifying by code sees a timeout. */
  readonly code = 'ETIMEDOUT'
  constructor(
    readonly step: 'dial' | 'handshake',
    readonly ms: number,
  ) {
    super(
      step === 'dial'
        ? `dial timeout (${ms} ms, the host's dial_timeout)`
        : `TLS handshake timeout (${ms} ms, as the runtime's http.Transport)`,
    )
    this.name = 'StepTimeout'
  }
}

export interface StepLimits {
  /** pullguard's bound on each step: the per-request timeout. */
  boundMs: number
  /** containerd `dial_timeout`; absent or 0: none of its own (Go's Dialer with Timeout 0). */
  dialTimeoutMs?: number | undefined
  /** The runtime's TLS handshake limit. */
  handshakeTimeoutMs: number
}

/**
 * The limit of each step, and whether running into it is the runtime's timeout (`dial`,
 * `handshake`) rather than pullguard's bound. Pure, so the limits a host gets can be tested
 * without a network that drops packets.
 */
export function stepLimits(limits: StepLimits): {
  dialMs: number
  dialIsRuntimes: boolean
  handshakeMs: number
  handshakeIsRuntimes: boolean
} {
  const { boundMs, dialTimeoutMs, handshakeTimeoutMs } = limits
  const dial = dialTimeoutMs === undefined || dialTimeoutMs === 0 ? undefined : dialTimeoutMs
  return {
    dialMs: dial === undefined ? boundMs : Math.min(dial, boundMs),
    dialIsRuntimes: dial !== undefined && dial <= boundMs,
    handshakeMs: Math.min(handshakeTimeoutMs, boundMs),
    handshakeIsRuntimes: handshakeTimeoutMs <= boundMs,
  }
}

/**
 * undici's connector in two steps: a TCP connection (undici's own connector, its timeout the dial
 * limit), then TLS over it (undici's connector again, with `httpSocket`, its timeout the handshake
 * limit, keeping undici's TLS session reuse). `tls` is what tls.connect needs (the secure context,
 * whether to verify); `tcp` what net.connect needs (the lookup).
 */
export function steppedConnector(
  limits: StepLimits,
  tcp: buildConnector.BuildOptions,
  tls: buildConnector.BuildOptions,
): buildConnector.connector {
  const l = stepLimits(limits)
  const dial = buildConnector({ ...tcp, timeout: l.dialMs })
  const handshake = buildConnector({ ...tls, timeout: l.handshakeMs })
  const timedOut = (err: Error): boolean => (err as { code?: unknown }).code === 'UND_ERR_CONNECT_TIMEOUT'
  return (options, callback) => {
    // Go's Dialer: a negative Timeout is a deadline already past, so the dial fails at once.
    if (limits.dialTimeoutMs !== undefined && limits.dialTimeoutMs < 0) {
      const ms = limits.dialTimeoutMs
      process.nextTick(() => callback(new StepTimeout('dial', ms), null))
      return
    }
    // The TCP step goes through undici's plain-HTTP path, which would take a missing port for 80.
    const port = options.port !== '' ? options.port : options.protocol === 'https:' ? '443' : '80'
    dial({ ...options, protocol: 'http:', port }, (err, socket) => {
      if (err !== null) {
        callback(timedOut(err) && l.dialIsRuntimes ? new StepTimeout('dial', l.dialMs) : err, null)
        return
      }
      if (options.protocol !== 'https:') {
        callback(null, socket)
        return
      }
      handshake({ ...options, port, httpSocket: socket }, (tlsErr, secure) => {
        if (tlsErr !== null) {
          socket.destroy()
          callback(
            timedOut(tlsErr) && l.handshakeIsRuntimes ? new StepTimeout('handshake', l.handshakeMs) : tlsErr,
            null,
          )
          return
        }
        callback(null, secure)
      })
    })
  }
}
