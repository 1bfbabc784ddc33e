/**
 * A sigstoreSigned requirement's trust root, as containers-image prepares it
 * (prSigstoreSigned.prepareTrustRoot in policy_eval_sigstore.go): public keys, the Fulcio CA, Rekor keys
 * and PKI CAs, from files or inline data, decoded as Go's encoding/pem, crypto/x509 and sigstore's
 * cryptoutils decode them.
 *
 * It is loaded once, when the policy is read, but fails lazily: containers-image loads it for each
 * signature it checks, so a root that will not load rejects that requirement's signatures, not the
 * policy.
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import { goBase64 } from './go-json.js'

/** How the trust root reads its files (the caller's readKeyFile), noting each so a watcher can follow it. */
export interface Loader {
  read: (path: string) => Buffer
  note: (path: string) => void
}

/** Where a list of PEM blobs comes from (configBytesSources): at most one is set. */
export interface ByteSources {
  path: string
  paths: string[] | null
  data: Buffer | null
  datas: Array<Buffer | null> | null
}

/** The CA sources of a fulcio or pki section; the rest of the section is checked, not kept. */
export interface Fulcio {
  ca: ByteSources
}
export interface Pki {
  roots: ByteSources
  intermediates: ByteSources
}

class TrustRootProblem extends Error {}

/** prSigstoreSigned.prepareTrustRoot: public keys, then the Fulcio CA, then Rekor keys, then PKI CAs. */
export function trustRoot(
  loader: Loader,
  keys: ByteSources,
  fulcio: Fulcio | undefined,
  rekor: ByteSources,
  pki: Pki | undefined,
): { keys: KeyObject[]; problem?: string } {
  for (const s of [keys, fulcio?.ca, rekor, pki?.roots, pki?.intermediates]) {
    if (s === undefined) continue
    for (const path of s.path === '' ? (s.paths ?? []) : [s.path]) loader.note(path)
  }
  try {
    const loaded = (blobs(loader, keys) ?? []).map((pem, i) => {
      const key = parsePublicKeyPem(pem)
      if (!key.ok) throw new TrustRootProblem(`parsing public key ${i + 1}: ${key.problem}`)
      return key.key
    })
    if (fulcio !== undefined && !anyCertificate(blobs(loader, fulcio.ca)?.[0])) {
      throw new TrustRootProblem('error loading Fulcio CA certificates')
    }
    ;(blobs(loader, rekor) ?? []).forEach((pem, i) => {
      const key = parsePublicKeyPem(pem)
      if (!key.ok) throw new TrustRootProblem(`parsing Rekor public key ${i + 1}: ${key.problem}`)
      if (key.key.asymmetricKeyType !== 'ec') throw new TrustRootProblem(`Rekor public key ${i + 1} is not using ECDSA`)
    })
    if (pki !== undefined) {
      if (!anyCertificate(blobs(loader, pki.roots)?.[0])) {
        throw new TrustRootProblem('error loading PKI CA Roots certificates')
      }
      const intermediates = blobs(loader, pki.intermediates)?.[0]
      const chain = intermediates === undefined ? undefined : certificatesFromPem(intermediates)
      if (chain !== undefined && !chain.ok) {
        throw new TrustRootProblem(`loading trusted intermediate certificates: ${chain.problem}`)
      }
    }
    return { keys: loaded }
  } catch (err) {
    if (err instanceof TrustRootProblem) return { keys: [], problem: err.message }
    throw err
  }
}

/** loadBytesFromConfigSources: the files are all read before any is parsed. */
function blobs(loader: Loader, s: ByteSources): Buffer[] | undefined {
  const read = (path: string): Buffer => {
    try {
      return loader.read(path)
    } catch (err) {
      throw new TrustRootProblem(readProblem(path, err))
    }
  }
  if (s.path !== '') return [read(s.path)]
  if (s.paths !== null) return s.paths.map(read)
  if (s.data !== null) return [s.data]
  if (s.datas !== null) return s.datas.map((d) => d ?? Buffer.alloc(0))
  return undefined
}

/** os.ReadFile's error text for the usual failures; anything else keeps Node's message. */
function readProblem(path: string, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'EISDIR') return `read ${path}: is a directory`
  const go: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    ENOTDIR: 'not a directory',
    ELOOP: 'too many levels of symbolic links',
  }
  const text = typeof code === 'string' ? go[code] : undefined
  return `open ${path}: ${text ?? (err instanceof Error ? err.message : String(err))}`
}

/**
 * sigstore cryptoutils.UnmarshalPEMToPublicKey: only the FIRST PEM block counts (later ones are
 * ignored), typed "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1). Go's x509 parses RSA, ECDSA on
 * P-224/256/384/521, Ed25519, DSA and X25519 keys; the last two load but no verifier accepts them.
 */
export function parsePublicKeyPem(pem: Buffer): { ok: true; key: KeyObject } | { ok: false; problem: string } {
  const block = pemDecode(pem)
  if (block === undefined) return { ok: false, problem: 'PEM decoding failed' }
  if (block.type !== 'PUBLIC KEY' && block.type !== 'RSA PUBLIC KEY') {
    return {
      ok: false,
      problem: `unknown Public key PEM file type: ${block.type}. Are you passing the correct public key?`,
    }
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: block.bytes, format: 'der', type: block.type === 'PUBLIC KEY' ? 'spki' : 'pkcs1' })
  } catch (err) {
    // Go's x509 words these failures differently; the outcome (a key that will not load) is the same.
    return { ok: false, problem: `x509: ${err instanceof Error ? err.message : String(err)}` }
  }
  const type = key.asymmetricKeyType
  if (type === 'ec' && !GO_CURVES.has(key.asymmetricKeyDetails?.namedCurve ?? '')) {
    return { ok: false, problem: 'x509: unsupported elliptic curve' }
  }
  if (type !== 'rsa' && type !== 'ec' && type !== 'ed25519' && type !== 'dsa' && type !== 'x25519') {
    return { ok: false, problem: 'x509: unknown public key algorithm' }
  }
  return { ok: true, key }
}
const GO_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1', 'secp224r1'])

/** x509.CertPool.AppendCertsFromPEM's result: some block is a header-less CERTIFICATE that parses. */
function anyCertificate(data: Buffer | undefined): boolean {
  let rest = data ?? Buffer.alloc(0)
  for (let block = pemDecode(rest); block !== undefined; block = pemDecode(rest)) {
    rest = block.rest
    if (block.type !== 'CERTIFICATE' || block.headers > 0) continue
    try {
      new X509Certificate(block.bytes)
      return true
    } catch {}
  }
  return false
}

/**
 * cryptoutils.UnmarshalCertificatesFromPEM: every block, whatever its type, must be a certificate.
 * `x509` marks a certificate OpenSSL would not parse, where Go's parser might answer otherwise.
 */
export function certificatesFromPem(
  data: Buffer,
): { ok: true; certs: X509Certificate[] } | { ok: false; problem: string; x509?: true } {
  const certs: X509Certificate[] = []
  let rest: Buffer = Buffer.from(data.toString('latin1').replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, ''), 'latin1')
  while (rest.length > 0) {
    const block = pemDecode(rest)
    if (block === undefined) return { ok: false, problem: 'error during PEM decoding' }
    rest = block.rest
    try {
      certs.push(new X509Certificate(block.bytes))
    } catch (err) {
      return { ok: false, problem: `x509: ${err instanceof Error ? err.message : String(err)}`, x509: true }
    }
  }
  return { ok: true, certs }
}

export interface PemBlock {
  type: string
  /** How many "Key: value" header lines the block has. */
  headers: number
  bytes: Buffer
  rest: Buffer
}

/**
 * Go's encoding/pem Decode, byte for byte: the first well-formed block (text before it and malformed
 * blocks are skipped), or undefined. Works on latin1 so string offsets are byte offsets.
 */
export function pemDecode(data: Buffer): PemBlock | undefined {
  const all = data.toString('latin1')
  const END = '\n-----END '
  const BEGIN = '-----BEGIN '
  let rest = all
  let endTrailer = 0
  for (;;) {
    if (endTrailer < 0 || endTrailer > rest.length) return undefined
    rest = rest.slice(endTrailer)
    let end = rest.indexOf(END)
    if (end < 0) return undefined
    endTrailer = end + END.length
    const begin = rest.slice(0, end).lastIndexOf(BEGIN)
    if (begin < 0 || (begin > 0 && rest[begin - 1] !== '\n')) continue
    const skip = begin + BEGIN.length
    rest = rest.slice(skip)
    end -= skip
    endTrailer -= skip
    let line = pemLine(rest)
    rest = line.rest
    end -= line.consumed
    endTrailer -= line.consumed
    if (!line.text.endsWith('-----')) continue
    const type = line.text.slice(0, -5)
    let headers = 0
    let truncated = false
    for (;;) {
      if (rest.length === 0) {
        truncated = true
        break
      }
      line = pemLine(rest)
      if (!line.text.includes(':')) break
      headers++
      rest = line.rest
      end -= line.consumed
      endTrailer -= line.consumed
    }
    if (truncated) return undefined
    if (headers > 0 && end < 0) continue
    const trailer = rest.slice(endTrailer)
    if (trailer.length < type.length + 5) continue
    const endLine = trailer.slice(0, type.length + 5)
    if (!endLine.startsWith(type) || !endLine.endsWith('-----')) continue
    if (pemLine(trailer.slice(type.length + 5)).text.length !== 0) continue
    let bytes: Buffer = Buffer.alloc(0)
    if (end > 0) {
      const decoded = goBase64(rest.slice(0, end).replace(/[ \t]/g, ''))
      if (!Buffer.isBuffer(decoded)) continue
      bytes = decoded
    }
    rest = pemLine(rest.slice(end + END.length - 1)).rest
    return { type, headers, bytes, rest: Buffer.from(rest, 'latin1') }
  }
}

/** pem.go getLine: the line without its end of line and trailing blanks, what follows, bytes consumed. */
function pemLine(data: string): { text: string; rest: string; consumed: number } {
  const nl = data.indexOf('\n')
  const consumed = nl < 0 ? data.length : nl + 1
  let text = nl < 0 ? data : data.slice(0, nl)
  if (nl > 0 && text.endsWith('\r')) text = text.slice(0, -1)
  return { text: text.replace(/[ \t]+$/, ''), rest: data.slice(consumed), consumed }
}
