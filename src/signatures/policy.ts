/**
 * CRI-O's signature policy (containers-policy.json(5)) read as containers-image v5.38.0 reads it
 * (signature/policy_config.go, policy_config_sigstore.go), and the choice of requirements for an image
 * (policy_eval.go requirementsForImageRef).
 *
 * 1. The file is read as containers-image's "paranoid" JSON (go-json.ts): every object refuses unknown
 *    and repeated keys, and each requirement type its own fields and combinations, so any file CRI-O
 *    refuses (and with it every pull) is refused here, with containers-image's wording.
 * 2. Scopes of transports CRI-O links are checked by that transport's rules; other transport names are
 *    accepted unread. Only "docker" scopes are kept: they are all a registry pull can match.
 * 3. sigstoreSigned trust roots (keys, Rekor keys, Fulcio and PKI CAs) are read (trust-root.ts) through
 *    the caller's readKeyFile, but a key that does not load does not invalidate the policy:
 *    containers-image loads them for each signature it checks (prepareTrustRoot in
 *    policy_eval_sigstore.go), so the policy parses and every signature under that requirement is
 *    rejected. That failure is kept as `keyProblem`, and the files as `keyFiles` so a watcher can
 *    re-read the policy when they change.
 */
import type { KeyObject } from 'node:crypto'
import type { ImageReference } from '../reference/index.js'
import { SignaturePolicyError } from './errors.js'
import {
  decodeBytes,
  decodeBytesList,
  decodeString,
  decodeStrings,
  exactFields,
  expectType,
  type GoJson,
  GoJsonError,
  paranoid,
  q,
  readGoJson,
  typeError,
  typeField,
} from './go-json.js'
import { parseDockerReference, remapPrefixProblem, type SignedIdentity } from './identity.js'
import { dockerScopes, transportScopeProblem } from './scopes.js'
import { type ByteSources, type Fulcio, type Loader, type Pki, trustRoot } from './trust-root.js'

export type { SignedIdentity }

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

const NO_SOURCES: ByteSources = { path: '', paths: null, data: null, datas: null }
const count = (s: ByteSources): number =>
  (s.path !== '' ? 1 : 0) + (s.paths !== null ? 1 : 0) + (s.data !== null ? 1 : 0) + (s.datas !== null ? 1 : 0)

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
