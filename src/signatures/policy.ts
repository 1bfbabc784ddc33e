/**
 * CRI-O's signature policy (containers-policy.json(5)) read as containers-image v5.38.0 reads it
 * (signature/policy_config.go, policy_config_sigstore.go), and the choice of requirements for an image
 * (policy_eval.go requirementsForImageRef).
 *
 * 1. The file is read as containers-image's "paranoid" JSON: every object refuses unknown and repeated
 *    keys, and each requirement type its own fields and combinations, so any file CRI-O refuses (and
 *    with it every pull) is refused here, with containers-image's wording.
 * 2. Scopes of transports CRI-O links are checked by that transport's rules; other transport names are
 *    accepted unread. Only "docker" scopes are kept: they are all a registry pull can match.
 * 3. sigstoreSigned trust roots (keys, Rekor keys, Fulcio and PKI CAs) are read here through the
 *    caller's readKeyFile, but a key that does not load does not invalidate the policy: containers-image
 *    loads them for each signature it checks (prepareTrustRoot in policy_eval_sigstore.go), so the
 *    policy parses and every signature under that requirement is rejected. That failure is kept as
 *    `keyProblem`, and the files as `keyFiles` so a watcher can re-read the policy when they change.
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import type { ImageReference } from '../reference/index.js'
import { SignaturePolicyError } from './errors.js'
import { parseDockerReference, remapPrefixProblem } from './identity.js'
import { dockerScopes, transportScopeProblem } from './scopes.js'

export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string }

export type Requirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  /** GPG / X.509 simple signing: pullguard cannot verify these. */
  | { type: 'signedBy'; keyType: string; signedIdentity: SignedIdentity }
  | {
      type: 'sigstoreSigned'
      /** Public keys from keyPath/keyPaths/keyData/keyDatas; empty with certificateBased. */
      keys: KeyObject[]
      /** Why the trust root would not load: containers-image then rejects every signature here with this reason. */
      keyProblem?: string
      /** The key comes from a certificate pullguard cannot validate. */
      certificateBased?: 'fulcio' | 'pki'
      /** A Rekor SET is required; pullguard does not verify it. */
      rekor: boolean
      signedIdentity: SignedIdentity
    }
  | { type: 'signedBaseLayer' }

export interface SignaturePolicy {
  file: string
  default: Requirement[]
  /** transport "docker" scopes, '' is the transport default */
  docker: Map<string, Requirement[]>
  /** files read for keys (to watch for changes) */
  keyFiles: string[]
}

export function parsePolicy(file: string, text: string, readKeyFile: (path: string) => Buffer): SignaturePolicy {
  const keyFiles: string[] = []
  const loader: Loader = {
    read: readKeyFile,
    note: (path) => {
      if (!keyFiles.includes(path)) keyFiles.push(path)
    },
  }
  let defaults: Requirement[] | undefined
  const docker = new Map<string, Requirement[]>()
  try {
    paranoid(readGoJson(text), (key) => {
      if (key === 'default') return (v) => (defaults = requirements(v, loader))
      if (key === 'transports') return (v) => transports(v, loader, docker)
      return undefined
    })
    if (defaults === undefined) throw new GoJsonError('Default policy is missing')
  } catch (err) {
    if (err instanceof GoJsonError) throw new SignaturePolicyError('PolicyInvalid', file, err.message)
    throw err
  }
  return { file, default: defaults, docker, keyFiles }
}

/**
 * The transport "docker" section's most specific match (identity, then each namespace, then ""), else
 * the top-level default. `scope` is the matched key, '' for the transport default, 'default' for the
 * top level (no docker scope can be "default": every identity has a "/", every wildcard starts "*.").
 */
export function requirementsFor(
  policy: SignaturePolicy,
  ref: ImageReference,
): { scope: string; requirements: Requirement[] } {
  for (const scope of [...dockerScopes(ref), '']) {
    const requirements = policy.docker.get(scope)
    if (requirements !== undefined) return { scope, requirements }
  }
  return { scope: 'default', requirements: policy.default }
}

// --- the file's sections ---------------------------------------------------------------------------

interface Loader {
  read: (path: string) => Buffer
  note: (path: string) => void
}

function transports(value: GoJson, loader: Loader, docker: Map<string, Requirement[]>): void {
  paranoid(value, (transport) => (scopesValue) => {
    paranoid(scopesValue, (scope) => {
      const problem = transportScopeProblem(transport, scope)
      // containers-image reports a refused scope as an unknown key; the reason is ours.
      if (problem !== undefined) throw new GoJsonError(`Unknown key ${q(scope)} (${problem})`)
      return (v) => {
        // Only what a registry pull can match is kept, and only its keys are read.
        if (transport === 'docker') docker.set(scope, requirements(v, loader))
        else requirements(v, undefined)
      }
    })
  })
}

/** PolicyRequirements.UnmarshalJSON: a non-empty array of requirements; null counts as empty. */
function requirements(value: GoJson, loader: Loader | undefined): Requirement[] {
  if (value.kind !== 'array' && value.kind !== 'null') throw typeError(value, '[]json.RawMessage')
  const items = value.kind === 'array' ? value.items : []
  if (items.length === 0) throw new GoJsonError('List of verification policy requirements must not be empty')
  return items.map((item) => requirement(item, loader))
}

function requirement(value: GoJson, loader: Loader | undefined): Requirement {
  const type = typeField(value, 'signature.prCommon', 'signature.prTypeIdentifier')
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      exactFields(value, { type: expectType(type, 'Unexpected policy requirement type') })
      return { type }
    case 'signedBy':
      return signedBy(value)
    case 'signedBaseLayer': {
      let identity: GoJson = { kind: 'null' }
      exactFields(value, {
        type: expectType(type, 'Unexpected policy requirement type'),
        baseLayerIdentity: (v) => (identity = v),
      })
      signedIdentity(identity)
      return { type }
    }
    case 'sigstoreSigned':
      return sigstoreSigned(value, loader)
    default:
      throw new GoJsonError(`Unknown policy requirement type ${q(type)}`)
  }
}

const SB_KEY_TYPES = new Set(['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs'])

/** prSignedBy.UnmarshalJSON and newPRSignedBy. */
function signedBy(value: GoJson): Requirement {
  let keyType = ''
  let keyPath = ''
  let keyPaths: string[] | null = null
  let keyData: Buffer | null = null
  const got = new Set<string>()
  let identity: GoJson | undefined
  paranoid(value, (key) => {
    if (key === 'keyPath' || key === 'keyPaths' || key === 'keyData') got.add(key)
    switch (key) {
      case 'type':
        return expectType('signedBy', 'Unexpected policy requirement type')
      case 'keyType':
        return (v) => {
          const s = decodeString(v, 'string') ?? ''
          if (!SB_KEY_TYPES.has(s)) throw new GoJsonError(`Unrecognized keyType value ${q(s)}`)
          keyType = s
        }
      case 'keyPath':
        return (v) => (keyPath = decodeString(v, 'string') ?? '')
      case 'keyPaths':
        return (v) => (keyPaths = decodeStrings(v))
      case 'keyData':
        return (v) => (keyData = decodeBytes(v))
      case 'signedIdentity':
        return (v) => (identity = v)
      default:
        return undefined
    }
  })
  const matcher = identity === undefined ? { type: 'matchRepoDigestOrExact' as const } : signedIdentity(identity)
  if (got.size === 0) {
    throw new GoJsonError('Exactly one of keyPath, keyPaths and keyData must be specified, none of them present')
  }
  if (got.size > 1) {
    throw new GoJsonError('Exactly one of keyPath, keyPaths and keyData must be specified, more than one present')
  }
  if (!SB_KEY_TYPES.has(keyType)) throw new GoJsonError(`invalid keyType ${q(keyType)}`)
  if ((keyPath !== '' ? 1 : 0) + (keyPaths !== null ? 1 : 0) + (keyData !== null ? 1 : 0) !== 1) {
    throw new GoJsonError('exactly one of keyPath, keyPaths and keyData must be specified')
  }
  return { type: 'signedBy', keyType, signedIdentity: matcher }
}

/** Where a list of PEM blobs comes from (configBytesSources): at most one is set. */
interface ByteSources {
  path: string
  paths: string[] | null
  data: Buffer | null
  datas: Array<Buffer | null> | null
}
const NO_SOURCES: ByteSources = { path: '', paths: null, data: null, datas: null }
const count = (s: ByteSources): number =>
  (s.path !== '' ? 1 : 0) + (s.paths !== null ? 1 : 0) + (s.data !== null ? 1 : 0) + (s.datas !== null ? 1 : 0)

interface Fulcio {
  ca: ByteSources
}
interface Pki {
  roots: ByteSources
  intermediates: ByteSources
}

/** prSigstoreSigned.UnmarshalJSON and newPRSigstoreSigned, in their order of checks. */
function sigstoreSigned(value: GoJson, loader: Loader | undefined): Requirement {
  const keys: ByteSources = { ...NO_SOURCES }
  const rekor: ByteSources = { ...NO_SOURCES }
  const gotLists = new Set<string>()
  let fulcio: Fulcio | undefined
  let pki: Pki | undefined
  let identity: GoJson | undefined
  paranoid(value, (key) => {
    const list = (v: GoJson): string[] | null => {
      gotLists.add(key)
      return decodeStrings(v)
    }
    const blobs = (v: GoJson): Array<Buffer | null> | null => {
      gotLists.add(key)
      return decodeBytesList(v)
    }
    switch (key) {
      case 'type':
        return expectType('sigstoreSigned', 'Unexpected policy requirement type')
      case 'keyPath':
        return (v) => (keys.path = decodeString(v, 'string') ?? '')
      case 'keyPaths':
        return (v) => (keys.paths = list(v))
      case 'keyData':
        return (v) => (keys.data = decodeBytes(v))
      case 'keyDatas':
        return (v) => (keys.datas = blobs(v))
      case 'fulcio':
        return (v) => (fulcio = fulcioSection(v))
      case 'rekorPublicKeyPath':
        return (v) => (rekor.path = decodeString(v, 'string') ?? '')
      case 'rekorPublicKeyPaths':
        return (v) => (rekor.paths = list(v))
      case 'rekorPublicKeyData':
        return (v) => (rekor.data = decodeBytes(v))
      case 'rekorPublicKeyDatas':
        return (v) => (rekor.datas = blobs(v))
      case 'pki':
        return (v) => (pki = pkiSection(v))
      case 'signedIdentity':
        return (v) => (identity = v)
      default:
        return undefined
    }
  })
  const matcher = identity === undefined ? { type: 'matchRepoDigestOrExact' as const } : signedIdentity(identity)
  // The PRSigstoreSignedWith… options, applied in this order; an empty (or null) list is refused.
  const emptyList: Array<[string, string[] | Array<Buffer | null> | null, string]> = [
    ['keyPaths', keys.paths, '"keyPaths" contains no entries'],
    ['keyDatas', keys.datas, '"keyDatas" contains no entries'],
    ['rekorPublicKeyPaths', rekor.paths, '"rekorPublickeyPaths" contains no entries'],
    ['rekorPublicKeyDatas', rekor.datas, '"rekorPublickeyDatas" contains no entries'],
  ]
  for (const [key, list, problem] of emptyList) {
    if (gotLists.has(key) && (list === null || list.length === 0)) throw new GoJsonError(problem)
  }
  if (count(keys) + (fulcio === undefined ? 0 : 1) + (pki === undefined ? 0 : 1) !== 1) {
    throw new GoJsonError('exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified')
  }
  const rekorSources = count(rekor)
  const rekorNames = 'rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas'
  if (rekorSources > 1) throw new GoJsonError(`at most one of ${rekorNames} can be used simultaneously`)
  if (fulcio !== undefined && rekorSources === 0) {
    throw new GoJsonError(`At least one of ${rekorNames} must be specified if fulcio is used`)
  }
  if (pki !== undefined && rekorSources > 0) throw new GoJsonError(`${rekorNames} are not supported for pki`)

  const root = loader === undefined ? { keys: [] } : trustRoot(loader, keys, fulcio, rekor, pki)
  return {
    type: 'sigstoreSigned',
    keys: root.keys,
    ...(root.problem === undefined ? {} : { keyProblem: root.problem }),
    ...(fulcio !== undefined ? { certificateBased: 'fulcio' as const } : {}),
    ...(pki !== undefined ? { certificateBased: 'pki' as const } : {}),
    rekor: rekorSources > 0,
    signedIdentity: matcher,
  }
}

function fulcioSection(value: GoJson): Fulcio {
  const ca: ByteSources = { ...NO_SOURCES }
  let issuer = ''
  let email = ''
  paranoid(value, (key) => {
    if (key === 'caPath') return (v) => (ca.path = decodeString(v, 'string') ?? '')
    if (key === 'caData') return (v) => (ca.data = decodeBytes(v))
    if (key === 'oidcIssuer') return (v) => (issuer = decodeString(v, 'string') ?? '')
    if (key === 'subjectEmail') return (v) => (email = decodeString(v, 'string') ?? '')
    return undefined
  })
  if (ca.path !== '' && ca.data !== null) throw new GoJsonError('caPath and caData cannot be used simultaneously')
  if (ca.path === '' && ca.data === null) throw new GoJsonError('At least one of caPath and caData must be specified')
  if (issuer === '') throw new GoJsonError('oidcIssuer not specified')
  if (email === '') throw new GoJsonError('subjectEmail not specified')
  return { ca }
}

function pkiSection(value: GoJson): Pki {
  const roots: ByteSources = { ...NO_SOURCES }
  const intermediates: ByteSources = { ...NO_SOURCES }
  let email = ''
  let hostname = ''
  paranoid(value, (key) => {
    if (key === 'caRootsPath') return (v) => (roots.path = decodeString(v, 'string') ?? '')
    if (key === 'caRootsData') return (v) => (roots.data = decodeBytes(v))
    if (key === 'caIntermediatesPath') return (v) => (intermediates.path = decodeString(v, 'string') ?? '')
    if (key === 'caIntermediatesData') return (v) => (intermediates.data = decodeBytes(v))
    if (key === 'subjectEmail') return (v) => (email = decodeString(v, 'string') ?? '')
    if (key === 'subjectHostname') return (v) => (hostname = decodeString(v, 'string') ?? '')
    return undefined
  })
  if (roots.path !== '' && roots.data !== null) {
    throw new GoJsonError('caRootsPath and caRootsData cannot be used simultaneously')
  }
  if (roots.path === '' && roots.data === null) {
    throw new GoJsonError('At least one of caRootsPath and caRootsData must be specified')
  }
  if (intermediates.path !== '' && intermediates.data !== null) {
    throw new GoJsonError('caIntermediatesPath and caIntermediatesData cannot be used simultaneously')
  }
  if (email === '' && hostname === '') {
    throw new GoJsonError('At least one of subjectEmail, subjectHostname must be specified')
  }
  return { roots, intermediates }
}

/** newPolicyReferenceMatchFromJSON and each match type's UnmarshalJSON. */
function signedIdentity(value: GoJson): SignedIdentity {
  const type = typeField(value, 'signature.prmCommon', 'signature.prmTypeIdentifier')
  const typeCheck = expectType(type, 'Unexpected policy requirement type')
  const text = (v: GoJson): string => decodeString(v, 'string') ?? ''
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      exactFields(value, { type: typeCheck })
      return { type }
    case 'exactReference': {
      let dockerReference = ''
      exactFields(value, { type: typeCheck, dockerReference: (v) => (dockerReference = text(v)) })
      const parsed = parseDockerReference(dockerReference)
      if (!parsed.ok) {
        throw new GoJsonError(`Invalid format of dockerReference ${q(dockerReference)}: ${parsed.problem}`)
      }
      if (parsed.ref.tag === undefined && parsed.ref.digest === undefined) {
        throw new GoJsonError(`dockerReference ${q(dockerReference)} contains neither a tag nor digest`)
      }
      return { type, dockerReference }
    }
    case 'exactRepository': {
      let dockerRepository = ''
      exactFields(value, { type: typeCheck, dockerRepository: (v) => (dockerRepository = text(v)) })
      const parsed = parseDockerReference(dockerRepository)
      if (!parsed.ok) {
        throw new GoJsonError(`Invalid format of dockerRepository ${q(dockerRepository)}: ${parsed.problem}`)
      }
      return { type, dockerRepository }
    }
    case 'remapIdentity': {
      let prefix = ''
      let signedPrefix = ''
      exactFields(value, {
        type: typeCheck,
        prefix: (v) => (prefix = text(v)),
        signedPrefix: (v) => (signedPrefix = text(v)),
      })
      const problem = remapPrefixProblem(prefix) ?? remapPrefixProblem(signedPrefix)
      if (problem !== undefined) throw new GoJsonError(problem)
      return { type, prefix, signedPrefix }
    }
    default:
      throw new GoJsonError(`Unknown policy reference match type ${q(type)}`)
  }
}

// --- trust roots (prepareTrustRoot), loaded once here, failing lazily -----------------------------------

class TrustRootProblem extends Error {}

/** prSigstoreSigned.prepareTrustRoot: public keys, then the Fulcio CA, then Rekor keys, then PKI CAs. */
function trustRoot(
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

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** base64.StdEncoding.DecodeString: padding required, "\r" and "\n" ignored. */
export function goBase64(text: string): Buffer | { problem: string } {
  const s = text.replace(/[\r\n]/g, '')
  if (STD_BASE64.test(s)) return Buffer.from(s, 'base64')
  const bad = s.search(/[^A-Za-z0-9+/=]/)
  return { problem: `illegal base64 data at input byte ${bad >= 0 ? bad : s.length - (s.length % 4)}` }
}

// --- JSON as encoding/json and containers-image's ParanoidUnmarshalJSONObject see it ------------------

/** A JSON value with object members in order and duplicates kept. */
export type GoJson =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'array'; items: GoJson[] }
  | { kind: 'object'; members: Array<[string, GoJson]> }

/** A problem reading JSON, worded as containers-image words it. */
export class GoJsonError extends Error {}

const q = (s: string): string => JSON.stringify(s)

export function readGoJson(text: string): GoJson {
  try {
    JSON.parse(text) // the syntax check; its message may quote the text, so only the position is kept
  } catch (err) {
    const message = err instanceof Error ? err.message : ''
    const at = Number(/position (\d+)/.exec(message)?.[1] ?? (/end of JSON/i.test(message) ? text.length : 0))
    throw new GoJsonError(at >= text.length ? 'unexpected end of JSON input' : `invalid JSON at character ${at + 1}`)
  }
  return new Reader(text).value()
}

/** Walks text JSON.parse has already accepted, so it needs no error handling. */
class Reader {
  private pos = 0
  constructor(private readonly text: string) {}

  value(): GoJson {
    const c = this.peek()
    if (c === '"') return { kind: 'string', value: this.string() }
    if (c === '{') {
      const members: Array<[string, GoJson]> = []
      this.pos++
      while (this.peek() !== '}') {
        const key = this.string()
        this.peek()
        this.pos++ // ":"
        members.push([key, this.value()])
        if (this.peek() === ',') this.pos++
      }
      this.pos++
      return { kind: 'object', members }
    }
    if (c === '[') {
      const items: GoJson[] = []
      this.pos++
      while (this.peek() !== ']') {
        items.push(this.value())
        if (this.peek() === ',') this.pos++
      }
      this.pos++
      return { kind: 'array', items }
    }
    const literal = /null|true|false|-?[0-9][0-9eE.+-]*/y
    literal.lastIndex = this.pos
    const text = literal.exec(this.text)?.[0] ?? ''
    this.pos += text.length
    if (text === 'null') return { kind: 'null' }
    if (text === 'true' || text === 'false') return { kind: 'bool', value: text === 'true' }
    return { kind: 'number', text }
  }

  /** Skips blanks; the next character, not consumed. */
  private peek(): string | undefined {
    while (/[ \t\n\r]/.test(this.text[this.pos] ?? '')) this.pos++
    return this.text[this.pos]
  }

  private string(): string {
    this.peek()
    let end = this.pos + 1
    while (this.text[end] !== '"') end += this.text[end] === '\\' ? 2 : 1
    const value = JSON.parse(this.text.slice(this.pos, end + 1)) as string
    this.pos = end + 1
    return value
  }
}

/** ParanoidUnmarshalJSONObject: an object; each key once; `resolve` decodes a key's value or refuses the key. */
export function paranoid(value: GoJson, resolve: (key: string) => ((value: GoJson) => void) | undefined): void {
  if (value.kind !== 'object') throw new GoJsonError(`JSON object expected, got ${goToken(value)}`)
  const seen = new Set<string>()
  for (const [key, member] of value.members) {
    if (seen.has(key)) throw new GoJsonError(`Duplicate key ${q(key)}`)
    seen.add(key)
    const decode = resolve(key)
    if (decode === undefined) throw new GoJsonError(`Unknown key ${q(key)}`)
    decode(member)
  }
}

/** ParanoidUnmarshalJSONObjectExactFields: exactly these keys. */
export function exactFields(value: GoJson, fields: Record<string, (value: GoJson) => void>): void {
  const seen = new Set<string>()
  paranoid(value, (key) => {
    if (!Object.hasOwn(fields, key)) return undefined
    seen.add(key)
    return fields[key]
  })
  const missing = Object.keys(fields).find((key) => !seen.has(key))
  if (missing !== undefined) throw new GoJsonError(`Key ${q(missing)} missing in a JSON object`)
}

/** A decoder for a "type" member that must equal `type` (null leaves Go's field empty). */
function expectType(type: string, problem: string): (value: GoJson) => void {
  return (v) => {
    const got = decodeString(v, 'string') ?? ''
    if (got !== type) throw new GoJsonError(`${problem} ${q(got)}`)
  }
}

/** json.Unmarshal into prCommon/prmCommon: "type" matched case-insensitively, the last one winning. */
function typeField(value: GoJson, goType: string, fieldType: string): string {
  if (value.kind === 'null') return ''
  if (value.kind !== 'object') throw typeError(value, goType)
  let type = ''
  for (const [key, member] of value.members) {
    if (key.toLowerCase() !== 'type') continue
    if (member.kind === 'string') type = member.value
    else if (member.kind !== 'null') {
      throw new GoJsonError(
        `json: cannot unmarshal ${kindName(member)} into Go struct field ${goType.split('.')[1]}.type of type ${fieldType}`,
      )
    }
  }
  return type
}

/** A Go string field: null leaves it unset (undefined). */
export function decodeString(value: GoJson, goType: string): string | undefined {
  if (value.kind === 'null') return undefined
  if (value.kind !== 'string') throw typeError(value, goType)
  return value.value
}

/** A Go float64 field; undefined for null. */
export function decodeFloat(value: GoJson): number | undefined {
  if (value.kind === 'null') return undefined
  if (value.kind !== 'number') throw typeError(value, 'float64')
  const n = Number(value.text)
  if (!Number.isFinite(n)) {
    throw new GoJsonError(`json: cannot unmarshal number ${value.text} into Go value of type float64`)
  }
  return n
}

/** A Go []byte field: a base64 string; null is nil. */
function decodeBytes(value: GoJson): Buffer | null {
  const s = decodeString(value, '[]uint8')
  if (s === undefined) return null
  const decoded = goBase64(s)
  if (!Buffer.isBuffer(decoded)) throw new GoJsonError(decoded.problem)
  return decoded
}

function decodeStrings(value: GoJson): string[] | null {
  if (value.kind === 'null') return null
  if (value.kind !== 'array') throw typeError(value, '[]string')
  return value.items.map((item) => decodeString(item, 'string') ?? '')
}

function decodeBytesList(value: GoJson): Array<Buffer | null> | null {
  if (value.kind === 'null') return null
  if (value.kind !== 'array') throw typeError(value, '[][]uint8')
  return value.items.map(decodeBytes)
}

function kindName(value: GoJson): string {
  return value.kind === 'bool' ? 'bool' : value.kind
}

function typeError(value: GoJson, goType: string): GoJsonError {
  return new GoJsonError(`json: cannot unmarshal ${kindName(value)} into Go value of type ${goType}`)
}

/** fmt's %#v of the json.Decoder token that opens `value`. */
function goToken(value: GoJson): string {
  switch (value.kind) {
    case 'null':
      return '<nil>'
    case 'bool':
      return String(value.value)
    case 'number':
      return String(Number(value.text))
    case 'string':
      return q(value.value)
    case 'array':
      return '91' // json.Delim('[')
    case 'object':
      return '123'
  }
}
