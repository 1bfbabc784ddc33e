/**
 * Whether an image's requirements accept it, as containers-image v5.38.0 decides when CRI-O pulls
 * (PolicyContext.IsRunningImageAllowed), for what pullguard can check offline: sigstore signatures
 * made with public keys (policy_eval_sigstore.go, signature/internal/sigstore_payload.go).
 *
 * For each sigstore signature attachment of the pulled manifest (other attachment media types only
 * counted), in containers-image's order:
 * 1. the trust root must have loaded (`keyProblem`), and the `dev.cosignproject.cosign/signature`
 *    annotation must exist;
 * 2. with Rekor, the `dev.sigstore.cosign/bundle` annotation must exist (with Fulcio, also the
 *    certificate annotation; with PKI, the certificate);
 * 3. the base64 signature must verify over the payload bytes (SHA-256; ECDSA as ASN.1 DER or
 *    IEEE P1363, RSA PKCS#1 v1.5, Ed25519) with one of the keys;
 * 4. the payload must be exactly cosign's simple-signing JSON, sign the pulled manifest's digest, and
 *    claim an identity the requirement's signedIdentity accepts.
 * One accepted signature accepts the image. What pullguard cannot check — Rekor SETs, Fulcio and PKI
 * certificate chains, GPG/X.509 simple signing — makes the verdict 'unverifiable', but only when the
 * outcome depends on it: a signature that fails every check we can make is rejected whatever the
 * unchecked part says (the reason may then differ from CRI-O's, which reports the first failing check).
 */
import { constants, type KeyObject, verify } from 'node:crypto'
import type { ImageReference } from '../reference/index.js'
import {
  decodeFloat,
  decodeString,
  exactFields,
  type GoJson,
  GoJsonError,
  goBase64,
  paranoid,
  readGoJson,
} from './go-json.js'
import { dockerImageName, identityMatches } from './identity.js'
import type { Requirement, SignedIdentity } from './policy.js'
import { goDigestProblem } from './scopes.js'
import { certificatesFromPem } from './trust-root.js'

/** One layer of a sigstore attachment manifest (`sha256-<hex>.sig`), as containers-image reads it. */
export interface SigstoreSignature {
  mediaType: string
  payload: Buffer
  annotations: Readonly<Record<string, string>>
}

export type SignatureVerdict =
  | { verdict: 'accepted' }
  | { verdict: 'rejected'; reason: string }
  | { verdict: 'unverifiable'; reason: string }

/**
 * The image as CRI-O checks it. `manifestDigest` is the sha256 digest of the manifest CRI-O pulls:
 * for a multi-platform image that is the chosen platform's manifest, not the index (copy.Image checks
 * the policy on that instance and reads its signatures from `sha256-<instance>.sig`), so an index-only
 * `cosign sign` leaves the pull unsigned. `nonSigstoreSignatures` counts simple-signing signatures
 * found elsewhere (lookaside, X-Registry-Supports-Signatures); it only changes a message.
 */
export interface SignedImage {
  ref: ImageReference
  manifestDigest: string
  nonSigstoreSignatures?: number
}

export const SIGSTORE_SIGNATURE_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
const BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle'
const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate'
const PAYLOAD_TYPE = 'cosign container image signature'

type SigstoreRequirement = Extract<Requirement, { type: 'sigstoreSigned' }>

const rejected = (reason: string): SignatureVerdict => ({ verdict: 'rejected', reason })
const unverifiable = (reason: string): SignatureVerdict => ({ verdict: 'unverifiable', reason })

/** prSigstoreSigned.isRunningImageAllowed. */
export function verifySigstore(
  req: SigstoreRequirement,
  image: SignedImage,
  signatures: readonly SigstoreSignature[],
): SignatureVerdict {
  const rejections: string[] = []
  let unknown: string | undefined
  let nonAttachments = 0
  for (const signature of signatures) {
    if (signature.mediaType !== SIGSTORE_SIGNATURE_MEDIA_TYPE) {
      nonAttachments++
      continue
    }
    const verdict = checkSignature(req, image, signature)
    if (verdict.verdict === 'accepted') return verdict
    if (verdict.verdict === 'unverifiable') unknown ??= verdict.reason
    else rejections.push(verdict.reason)
  }
  if (unknown !== undefined) return unverifiable(unknown)
  if (rejections.length === 1) return rejected(rejections[0]!)
  if (rejections.length > 1) return rejected(`None of the signatures were accepted, reasons: ${rejections.join('; ')}`)
  const nonSigstore = image.nonSigstoreSignatures ?? 0
  if (nonSigstore === 0 && nonAttachments === 0) return rejected('A signature was required, but no signature exists')
  return rejected(
    `A signature was required, but no signature exists (${nonSigstore} non-sigstore signatures, ${nonAttachments} sigstore non-signature attachments)`,
  )
}

/** PolicyContext.IsRunningImageAllowed: every requirement must accept; `requirement` names the one that decided. */
export function evaluateRequirements(
  requirements: readonly Requirement[],
  image: SignedImage,
  signatures: readonly SigstoreSignature[],
): SignatureVerdict & { requirement?: string } {
  if (requirements.length === 0) return rejected('List of verification policy requirements must not be empty')
  let unknown: (SignatureVerdict & { requirement: string }) | undefined
  for (const req of requirements) {
    const verdict = evaluate(req, image, signatures)
    // containers-image stops at the first refusal; an earlier unverifiable one cannot turn this into an acceptance.
    if (verdict.verdict === 'rejected') return { ...verdict, requirement: req.type }
    if (verdict.verdict === 'unverifiable') unknown ??= { ...verdict, requirement: req.type }
  }
  return unknown ?? { verdict: 'accepted' }
}

function evaluate(req: Requirement, image: SignedImage, signatures: readonly SigstoreSignature[]): SignatureVerdict {
  switch (req.type) {
    case 'insecureAcceptAnything':
      return { verdict: 'accepted' }
    case 'reject':
      return rejected(`Running image ${dockerImageName(image.ref)} is rejected by policy.`)
    case 'signedBaseLayer':
      return rejected('signedBaseLayer not implemented yet!')
    case 'signedBy':
      return unverifiable(
        `signedBy (${req.keyType}) needs simple-signing signatures from a lookaside or the registry, which pullguard does not verify`,
      )
    case 'sigstoreSigned':
      return verifySigstore(req, image, signatures)
  }
}

/** prSigstoreSigned.isSignatureAccepted for one attachment. */
function checkSignature(req: SigstoreRequirement, image: SignedImage, sig: SigstoreSignature): SignatureVerdict {
  if (req.keyProblem !== undefined) return rejected(req.keyProblem)
  const annotation = (key: string): string | undefined =>
    Object.hasOwn(sig.annotations, key) ? sig.annotations[key] : undefined
  const base64Signature = annotation(SIGNATURE_ANNOTATION)
  if (base64Signature === undefined) return rejected(`missing ${SIGNATURE_ANNOTATION} annotation`)
  const check = (keys: readonly KeyObject[]): string | undefined =>
    verifyPayload(keys, sig.payload, base64Signature, req.signedIdentity, image)

  if (req.certificateBased === undefined) {
    if (!req.rekor) {
      const problem = check(req.keys)
      return problem === undefined ? { verdict: 'accepted' } : rejected(problem)
    }
    if (annotation(BUNDLE_ANNOTATION) === undefined) return rejected(`missing ${BUNDLE_ANNOTATION} annotation`)
    // The SET names one key, which alone then verifies the payload; if none could, the answer is no.
    const problems = req.keys.map((key) => check([key]))
    if (problems.some((p) => p === undefined)) {
      return unverifiable(
        'the signature verifies, but the policy also requires a Rekor inclusion proof (rekorPublicKey…), which pullguard does not check',
      )
    }
    return rejected(problems[0] ?? 'no public key')
  }

  if (req.certificateBased === 'fulcio' && annotation(BUNDLE_ANNOTATION) === undefined) {
    return rejected(`missing ${BUNDLE_ANNOTATION} annotation`)
  }
  const certificate = annotation(CERTIFICATE_ANNOTATION)
  if (certificate === undefined) return rejected(`missing ${CERTIFICATE_ANNOTATION} annotation`)
  const what =
    req.certificateBased === 'fulcio'
      ? 'Fulcio certificates (fulcio): their chain, OIDC issuer, e-mail and Rekor proof'
      : 'CA-issued certificates (pki): their chain and subject'
  // Whatever the unchecked chain says, containers-image needs exactly one certificate here (parseLeafCertFromPEM)
  // and then verifies the payload with its key: both are decided offline.
  const leaf = certificatesFromPem(Buffer.from(certificate, 'utf8'))
  if (!leaf.ok && leaf.x509 === true) {
    return unverifiable(`pullguard could not read the signing certificate, and the policy trusts ${what}`)
  }
  if (!leaf.ok) return rejected(`parsing leaf certificate: ${leaf.problem}`)
  if (leaf.certs.length === 0) return rejected('no certificate found in signature certificate data')
  if (leaf.certs.length > 1) return rejected('unexpected multiple certificates present in signature certificate data')
  const problem = check([leaf.certs[0]!.publicKey])
  if (problem !== undefined) return rejected(problem)
  return unverifiable(
    `the signature verifies with its certificate's key, but the policy trusts ${what}, which pullguard does not check`,
  )
}

/** internal.VerifySigstorePayload: the signature, then the payload's digest and identity. */
function verifyPayload(
  keys: readonly KeyObject[],
  payload: Buffer,
  base64Signature: string,
  identity: SignedIdentity,
  image: SignedImage,
): string | undefined {
  const signature = goBase64(base64Signature)
  if (!Buffer.isBuffer(signature)) return `base64 decoding: ${signature.problem}`
  if (keys.length === 0) return 'Need at least one public key to verify the sigstore payload, but got 0'
  // LoadVerifier runs for every key first: a key no verifier takes fails the signature even if another key would verify it.
  if (keys.some((key) => !VERIFIABLE.has(key.asymmetricKeyType ?? ''))) return 'unsupported public key type'
  const failures: string[] = []
  for (const key of keys) {
    const failure = verifyWith(key, payload, signature)
    if (failure === undefined) {
      failures.length = 0
      break
    }
    failures.push(failure)
  }
  if (failures.length > 0) return `cryptographic signature verification failed: ${failures.join(', ')}`
  const claims = parsePayload(payload)
  if (!claims.ok) return claims.problem
  // manifest.MatchesDigest: the sha256 of the pulled manifest, compared as text.
  if (claims.digest !== image.manifestDigest) return `Signature for digest ${claims.digest} does not match`
  if (!identityMatches(identity, image.ref, claims.reference)) {
    return `Signature for identity ${JSON.stringify(claims.reference)} is not accepted`
  }
  return undefined
}

const VERIFIABLE = new Set(['rsa', 'ec', 'ed25519'])

/** sigstore's per-key verifiers (pkg/signature), with their failure texts; undefined when verified. */
function verifyWith(key: KeyObject, payload: Buffer, signature: Buffer): string | undefined {
  const ok = (algorithm: string | null, options: { dsaEncoding?: 'der'; padding?: number }, sig: Buffer): boolean => {
    try {
      return verify(algorithm, payload, { key, ...options }, sig)
    } catch {
      return false
    }
  }
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
      // Go 1.24+ crypto/rsa refuses to verify with keys under 1024 bits.
      if (bits < 1024) {
        return `crypto/rsa: ${bits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)`
      }
      return ok('sha256', { padding: constants.RSA_PKCS1_PADDING }, signature)
        ? undefined
        : 'crypto/rsa: verification error'
    }
    case 'ed25519':
      return ok(null, {}, signature) ? undefined : 'failed to verify signature'
    default: {
      // ECDSA: what asn1.Unmarshal reads as (R, S) is checked as DER, anything else as IEEE P1363 r||s.
      if (isAsn1Signature(signature)) {
        return ok('sha256', { dsaEncoding: 'der' }, signature)
          ? undefined
          : 'invalid signature when validating ASN.1 encoded signature'
      }
      if (signature.length === 0 || signature.length > 132 || signature.length % 2 !== 0) {
        return 'ecdsa: Invalid IEEE_P1363 encoded bytes'
      }
      const half = signature.length / 2
      const der = derSequence([derInteger(signature.subarray(0, half)), derInteger(signature.subarray(half))])
      return ok('sha256', { dsaEncoding: 'der' }, der)
        ? undefined
        : 'invalid signature when validating IEEE_P1363 encoded signature'
    }
  }
}

/**
 * Whether Go's asn1.Unmarshal(sig, &struct{ R, S *big.Int }) succeeds: a DER SEQUENCE whose first two
 * elements are minimally encoded INTEGERs. Later elements and bytes after the SEQUENCE are allowed.
 */
function isAsn1Signature(sig: Buffer): boolean {
  const outer = derElement(sig, 0)
  if (outer === undefined || sig[0] !== 0x30) return false
  const body = sig.subarray(outer.start, outer.end)
  let at = 0
  for (let i = 0; i < 2; i++) {
    const int = derElement(body, at)
    if (int === undefined || body[at] !== 0x02) return false
    const n = body.subarray(int.start, int.end)
    if (n.length === 0) return false
    if (n.length > 1 && ((n[0] === 0 && n[1]! < 0x80) || (n[0] === 0xff && n[1]! >= 0x80))) return false
    at = int.end
  }
  return true
}

/** One DER tag-length-value at `at` (single-byte tag, definite minimal length) that fits in `buf`. */
function derElement(buf: Buffer, at: number): { start: number; end: number } | undefined {
  if (at + 2 > buf.length || (buf[at]! & 0x1f) === 0x1f) return undefined
  let length = buf[at + 1]!
  let start = at + 2
  if (length >= 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 4 || start + bytes > buf.length || buf[start] === 0) return undefined
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + buf[start + i]!
    if (length < 0x80) return undefined
    start += bytes
  }
  return start + length <= buf.length ? { start, end: start + length } : undefined
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** An unsigned big-endian number as a minimal DER INTEGER. */
function derInteger(magnitude: Buffer): Buffer {
  let i = 0
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++
  let v = magnitude.subarray(i)
  if (v.length === 0) v = Buffer.from([0])
  if (v[0]! >= 0x80) v = Buffer.concat([Buffer.from([0]), v])
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v])
}

function derSequence(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body])
}

/**
 * UntrustedSigstorePayload.strictUnmarshalJSON: {"critical": {"type", "image", "identity"}, "optional"}
 * with exactly those keys; "optional" may be null (cosign writes that) or an object whose "creator"
 * must be a string and "timestamp" an integer.
 */
function parsePayload(
  payload: Buffer,
): { ok: true; digest: string; reference: string } | { ok: false; problem: string } {
  try {
    let critical: GoJson = { kind: 'null' }
    let optional: GoJson = { kind: 'null' }
    exactFields(readGoJson(payload.toString('utf8')), {
      critical: (v) => (critical = v),
      optional: (v) => (optional = v),
    })
    let timestamp: number | undefined
    if (optional.kind !== 'null') {
      paranoid(optional, (key) => {
        if (key === 'creator') return (v) => decodeString(v, 'string')
        if (key === 'timestamp') return (v) => (timestamp = decodeFloat(v) ?? 0)
        return () => {}
      })
    }
    // int64(timestamp) must round-trip (amd64 conversion: out of range becomes -2^63).
    if (timestamp !== undefined && !(Number.isInteger(timestamp) && timestamp >= -(2 ** 63) && timestamp < 2 ** 63)) {
      return { ok: false, problem: 'Field optional.timestamp is not an integer' }
    }
    let type = ''
    let image: GoJson = { kind: 'null' }
    let identity: GoJson = { kind: 'null' }
    exactFields(critical, {
      type: (v) => (type = decodeString(v, 'string') ?? ''),
      image: (v) => (image = v),
      identity: (v) => (identity = v),
    })
    if (type !== PAYLOAD_TYPE) return { ok: false, problem: `Unrecognized signature type ${type}` }
    let digest = ''
    exactFields(image, { 'docker-manifest-digest': (v) => (digest = decodeString(v, 'string') ?? '') })
    const digestProblem = goDigestProblem(digest)
    if (digestProblem !== undefined) {
      return { ok: false, problem: `invalid docker-manifest-digest value ${JSON.stringify(digest)}: ${digestProblem}` }
    }
    let reference = ''
    exactFields(identity, { 'docker-reference': (v) => (reference = decodeString(v, 'string') ?? '') })
    return { ok: true, digest, reference }
  } catch (err) {
    if (err instanceof GoJsonError) return { ok: false, problem: err.message }
    throw err
  }
}
