/**
 * The nodes' signature policy (CRI-O checks every pull against it) applied to one name a pod
 * pulls, in two steps like assess's:
 * - before any registry: a `reject` (or `signedBaseLayer`, which containers-image always refuses)
 *   refuses the pull whatever the registry says, so nothing is asked; only
 *   `insecureAcceptAnything` needs nothing more;
 * - after the manifest was found: its signatures, read where the runtime reads them (sigstore
 *   attachments beside the manifest, where registries.d says so), held against every requirement.
 * What pullguard cannot verify (GPG, Fulcio, Rekor) is `unverifiable`, never a silent allow.
 */
import { tryParseReference, type ImageReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { Credential } from '../registry/credential.js'
import { isIndexMediaType, type CheckResult, type Platform } from '../registry/index.js'
import type { IndexInstance } from '../registry/index-platforms.js'
import type { PolicyMatch } from '../signatures/signature-policies.js'
import { evaluateRequirements, type SignatureVerdict } from '../signatures/sigstore.js'
import { formatPlatform, isAttestation, platformMatches } from './platforms.js'

/** What assess needs of the signature policy (signatures/signature-policies.ts). */
export interface SignaturePolicyView {
  forImage(namespace: string, ref: ImageReference): PolicyMatch | undefined
  useSigstoreAttachments(physical: ImageReference): boolean
}

/** The policy's verdict on a pull, with where it was written. */
export type SignatureFinding = SignatureVerdict & {
  file: string
  scope: string
  /** The requirement that decided (its type), when one did. */
  requirement?: string
  /** The manifest the signatures were checked for. */
  digest?: string
  /** A sigstore signature was required but registries.d has the runtime read none for this repository. */
  attachmentsOff?: string
  /** The manifest is an index: what was checked are the platform manifests nodes pull. */
  index?: boolean
}

/** A refusal, with where it was written. */
export type RefusedFinding = SignatureFinding & { verdict: 'rejected' }

/** Before the registry: refused outright, to be verified once the manifest is known, or nothing to do. */
export function beforeAsking(
  match: PolicyMatch | undefined,
  ref: ImageReference,
): { kind: 'none' } | { kind: 'verify'; match: PolicyMatch } | { kind: 'refused'; finding: RefusedFinding } {
  if (match === undefined || match.requirements.every((r) => r.type === 'insecureAcceptAnything'))
    return { kind: 'none' }
  const refusing = match.requirements.filter((r) => r.type === 'reject' || r.type === 'signedBaseLayer')
  if (refusing.length > 0) {
    const verdict = evaluateRequirements(refusing, { ref, manifestDigest: '' }, [])
    // Both refuse whatever the registry holds.
    const reason = verdict.verdict === 'accepted' ? 'rejected by policy' : verdict.reason
    return {
      kind: 'refused',
      finding: { verdict: 'rejected', reason, file: match.file, scope: match.scope, requirement: refusing[0]!.type },
    }
  }
  return { kind: 'verify', match }
}

/**
 * After the manifest was found (`result` is Exists): the signatures the runtime would read, held
 * against the requirements. For an index that is the manifest each node's platform picks (CRI-O
 * checks the policy on that instance and reads `sha256-<instance>.sig`), for every platform the
 * pod may run on (`platforms`; none known: every platform the index has). A registry that does not
 * answer leaves it unverifiable.
 */
export async function verifyFound(
  checker: ImageChecker,
  view: SignaturePolicyView,
  match: PolicyMatch,
  ref: ImageReference,
  result: Extract<CheckResult, { code: 'Exists' }>,
  credentials: readonly Credential[],
  namespace: string,
  platforms: readonly Platform[],
  signal: AbortSignal,
): Promise<SignatureFinding> {
  const index = isIndexMediaType(result.mediaType)
  const where = { file: match.file, scope: match.scope, digest: result.digest, ...(index ? { index } : {}) }
  const found = {
    digest: result.digest,
    decidedBy: result.decidedBy,
    ...(result.answeredBy === undefined ? {} : { answeredBy: result.answeredBy }),
  }
  // Where the runtime reads signatures is the same for every platform manifest of an index.
  const physical = physicalReference(ref, result.answeredBy)
  const wantsAttachments = match.requirements.some((r) => r.type === 'sigstoreSigned')
  const off = wantsAttachments && !view.useSigstoreAttachments(physical)
  const one = async (digest: string): Promise<SignatureVerdict & { requirement?: string; attachmentsOff?: string }> => {
    let signatures: Parameters<typeof evaluateRequirements>[2] = []
    if (wantsAttachments && !off) {
      const read = await checker.sigstoreAttachments(ref, credentials, namespace, { ...found, digest }, signal)
      if (!read.ok)
        return read.kind === 'invalid'
          ? { verdict: 'rejected', reason: read.detail }
          : { verdict: 'unverifiable', reason: `its signatures could not be read: ${read.detail}` }
      signatures = read.attachments
    }
    const verdict = evaluateRequirements(match.requirements, { ref, manifestDigest: digest }, signatures)
    return { ...verdict, ...(off && verdict.verdict === 'rejected' ? { attachmentsOff: physical.name } : {}) }
  }
  if (!index) return { ...(await one(result.digest)), ...where }
  const listed = await checker.indexInstances(ref, credentials, namespace, found, signal)
  if (!listed.ok)
    return {
      verdict: 'unverifiable',
      reason: `the index's platform manifests could not be read: ${listed.reason}`,
      ...where,
    }
  const picked = pickInstances(listed.instances, platforms)
  if (picked.length === 0) return { ...(await one(result.digest)), ...where }
  const verdicts = await Promise.all(picked.map(async (i) => ({ ...i, ...(await one(i.digest)) })))
  const rejected = verdicts.filter((v) => v.verdict === 'rejected')
  const unverified = verdicts.filter((v) => v.verdict === 'unverifiable')
  const said = (v: (typeof verdicts)[number]): string =>
    `for ${formatPlatform(v.platform)} (${v.digest}): ${v.verdict === 'accepted' ? 'accepted' : v.reason}`
  // Known platforms: a pod landing on a refused one fails there. Unknown: only all refused is a refusal.
  const refuse = platforms.length > 0 ? rejected.length > 0 : rejected.length === verdicts.length
  if (refuse) {
    const first = rejected[0]!
    return {
      verdict: 'rejected',
      reason: rejected.map(said).join('; '),
      ...where,
      ...(first.requirement === undefined ? {} : { requirement: first.requirement }),
      ...(first.attachmentsOff === undefined ? {} : { attachmentsOff: first.attachmentsOff }),
    }
  }
  if (unverified.length > 0 || rejected.length > 0) {
    const first = unverified[0] ?? rejected[0]!
    return {
      verdict: 'unverifiable',
      reason:
        unverified.length > 0
          ? unverified.map(said).join('; ')
          : `it depends on the node's platform: ${verdicts.map(said).join('; ')}`,
      ...where,
      ...(first.requirement === undefined ? {} : { requirement: first.requirement }),
    }
  }
  return { verdict: 'accepted', ...where }
}

/**
 * The instance each platform would pull: the first entry that matches it, as a runtime picks one
 * (attestations never). No platform known: every entry but attestations.
 */
function pickInstances(instances: readonly IndexInstance[], platforms: readonly Platform[]): IndexInstance[] {
  const images = instances.filter((i) => !isAttestation(i.platform))
  if (platforms.length === 0) return images
  const picked = new Map<string, IndexInstance>()
  for (const p of platforms) {
    const hit = images.find((i) => platformMatches(p, i.platform))
    if (hit !== undefined) picked.set(hit.digest, hit)
  }
  return [...picked.values()]
}

/**
 * The repository the manifest came from, as registries.d is consulted for it: a registries.conf
 * source (labelled `host/repository`) or the image's own.
 */
function physicalReference(ref: ImageReference, answeredBy: string | undefined): ImageReference {
  if (answeredBy === undefined || !answeredBy.includes('/')) return ref
  const host = answeredBy.slice(0, answeredBy.indexOf('/'))
  const name = host === 'registry-1.docker.io' ? `docker.io${answeredBy.slice(host.length)}` : answeredBy
  const parsed = tryParseReference(ref.digest === undefined ? `${name}:${ref.reference}` : `${name}@${ref.digest}`)
  return parsed.ok ? parsed.ref : ref
}
