import { readFileSync } from 'node:fs'
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls'

/**
 * Which CAs we trust for registries: Node's bundled roots, the operating system's bundle
 * (where corporate CAs are installed; Node 20 does not read it by itself), the file named by
 * NODE_EXTRA_CA_CERTS (Node drops it as soon as a `ca` option is passed, so we re-add it),
 * and the operator's extra bundle (`--registry-ca`). Built once at start-up: a SecureContext
 * shared by every connection instead of re-parsing hundreds of PEMs per handshake.
 */
export interface TrustOptions {
  /** PEM text of extra CAs (the `--registry-ca` bundle, already read). */
  extraCaPem?: string
  /** Value of NODE_EXTRA_CA_CERTS, passed in by config (no env reads here). */
  nodeExtraCaCertsPath?: string
  /** Candidate OS bundles; the first that can be read is used. */
  systemBundlePaths?: readonly string[]
}

const DEFAULT_SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine
  '/etc/pki/tls/certs/ca-bundle.crt', // RHEL, Fedora
  '/etc/ssl/cert.pem', // macOS, BSD
] as const

export interface TrustStore {
  readonly secureContext: SecureContext
  /** How many PEM blocks went in, for the start-up log. */
  readonly certificateCount: number
  /** The PEM blocks themselves, so a host with its own CA (containerd `ca`) trusts them too. */
  readonly pems?: readonly string[]
}

export function buildTrustStore(options: TrustOptions = {}): TrustStore {
  const pems: string[] = [...rootCertificates]
  for (const path of options.systemBundlePaths ?? DEFAULT_SYSTEM_BUNDLES) {
    const text = readOptional(path)
    if (text !== undefined) {
      pems.push(...splitPem(text))
      break
    }
  }
  if (options.nodeExtraCaCertsPath !== undefined && options.nodeExtraCaCertsPath !== '') {
    const text = readOptional(options.nodeExtraCaCertsPath)
    if (text !== undefined) pems.push(...splitPem(text))
  }
  if (options.extraCaPem !== undefined) {
    const extra = splitPem(options.extraCaPem)
    if (extra.length === 0) throw new Error('the registry CA bundle holds no PEM certificate')
    pems.push(...extra)
  }
  return { secureContext: createSecureContext({ ca: pems }), certificateCount: pems.length, pems }
}

/**
 * `store` plus a host's own CAs, as containerd builds a host's pool (the system's roots, then the
 * host's `ca` files). Throws when `extraPem` holds no certificate.
 */
export function extendTrust(store: TrustStore, extraPem: string): TrustStore {
  const extra = splitPem(extraPem)
  if (extra.length === 0) throw new Error('the CA file holds no PEM certificate')
  const pems = [...(store.pems ?? rootCertificates), ...extra]
  return { secureContext: createSecureContext({ ca: pems }), certificateCount: pems.length, pems }
}

/**
 * The secure context for a host with its own settings: `store` plus its CAs, and the client
 * certificate it presents when the server asks for one (containerd puts both in the host's
 * tls.Config: RootCAs and Certificates, updateTLSConfigFromHost). Node ignores `cert` and `key`
 * beside a prepared context, so they go into this one.
 */
export function hostSecureContext(
  store: TrustStore,
  host: { caPem?: string | undefined; client?: { certPem: string; keyPem: string } | undefined },
): SecureContext {
  const trust = host.caPem === undefined ? store : extendTrust(store, host.caPem)
  if (host.client === undefined) return trust.secureContext
  return createSecureContext({
    ca: [...(trust.pems ?? rootCertificates)],
    cert: host.client.certPem,
    key: host.client.keyPem,
  })
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

function splitPem(text: string): string[] {
  return text.match(PEM_BLOCK) ?? []
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}
