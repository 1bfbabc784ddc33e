/**
 * Whether a signature's claimed docker-reference is acceptable for the image being pulled:
 * containers-image's PolicyReferenceMatch implementations (signature/policy_reference_match.go, v5.38.0).
 *
 * The image side is the reference CRI-O asked for, not where it was pulled from (mirrors do not
 * change it): `name:tag` or `name@digest`. CRI-O (ParseRegistryImageReferenceFromOutOfProcessData)
 * adds ":latest" to a bare name and drops the tag of `name:tag@digest`, so a pod's
 * "app:1@sha256:…" is matched as "app@sha256:…".
 */
import { type ImageReference, tryParseReference } from '../reference/index.js'
import { domainProblem, pathProblem } from '../reference/grammar.js'

/** A requirement's `signedIdentity`: which signed references are acceptable for the image pulled. */
export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string }

/** A parsed docker reference with containers-image's meaning of `String()`: name[:tag][@digest]. */
export interface DockerReference {
  readonly name: string
  readonly tag?: string
  readonly digest?: string
}

/** reference.Named.String(). */
export function referenceString(ref: DockerReference): string {
  return `${ref.name}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
}

/** The reference containers-image sees for an image CRI-O pulls (see the file comment). */
export function intendedReference(image: ImageReference): DockerReference {
  return image.digest === undefined
    ? { name: image.name, tag: image.tag ?? 'latest' }
    : { name: image.name, digest: image.digest }
}

/**
 * transports.ImageName of the docker reference, as containers-image words its messages:
 * "docker://" + reference.FamiliarString (docker.io and a lone "library/" dropped).
 */
export function dockerImageName(image: ImageReference): string {
  const ref = intendedReference(image)
  let name = ref.name
  if (name.startsWith('docker.io/')) {
    name = name.slice('docker.io/'.length)
    const parts = name.split('/')
    if (parts.length === 2 && parts[0] === 'library') name = parts[1]!
  }
  return `docker://${referenceString({ ...ref, name })}`
}

/** NameTotalLengthMax in containers-image's own copy of docker/reference: it limits domain + "/" + path. */
const MAX_NAME_LENGTH = 255
const UPPER_CASE = /[A-Z]/

/**
 * reference.ParseNormalizedNamed as vendored in containers-image (docker/reference), which is older
 * than the distribution/reference v0.6.0 that src/reference follows: it has no bracketed IPv6 hosts,
 * takes a first component as a host only for ".", ":" or "localhost" (so "Registry/app" is an
 * upper-case path, refused), and limits the whole name, not just the path, to 255 characters.
 */
export function parseDockerReference(s: string): { ok: true; ref: DockerReference } | { ok: false; problem: string } {
  const parsed = tryParseReference(s)
  if (!parsed.ok) return { ok: false, problem: `invalid reference format: ${parsed.error.detail}` }
  const ref = parsed.ref
  const slash = s.indexOf('/')
  const first = slash < 0 ? '' : s.slice(0, slash)
  if (ref.domain.startsWith('[')) return { ok: false, problem: 'invalid reference format' }
  if (first !== '' && !/[.:]/.test(first) && first !== 'localhost' && UPPER_CASE.test(first)) {
    return { ok: false, problem: 'invalid reference format: repository name must be lowercase' }
  }
  if (ref.name.length > MAX_NAME_LENGTH) {
    return { ok: false, problem: `repository name must not be more than ${MAX_NAME_LENGTH} characters` }
  }
  return {
    ok: true,
    ref: {
      name: ref.name,
      ...(ref.tag === undefined ? {} : { tag: ref.tag }),
      ...(ref.digest === undefined ? {} : { digest: ref.digest }),
    },
  }
}

/**
 * validateIdentityRemappingPrefix: a host[:port] alone, or a host followed by a repository path.
 * Like containers-image, it does not catch every prefix that can never match ("ns/shortname").
 */
export function remapPrefixProblem(s: string): string | undefined {
  const isDomain = (d: string): boolean => !d.startsWith('[') && domainProblem(d) === undefined
  const slash = s.indexOf('/')
  if (isDomain(s)) return undefined
  if (slash > 0 && isDomain(s.slice(0, slash)) && pathProblem(s.slice(slash + 1)) === undefined) return undefined
  return `prefix ${JSON.stringify(s)} is not valid`
}

const isNameOnly = (ref: DockerReference): boolean => ref.tag === undefined && ref.digest === undefined

/** matchRepoDigestOrExactReferenceValues. */
function repoDigestOrExact(intended: DockerReference, signature: DockerReference): boolean {
  // Signatures must name an exact image: cosign's default repository-only claim never matches here.
  if (isNameOnly(signature)) return false
  if (intended.tag !== undefined) return referenceString(signature) === referenceString(intended)
  // By digest: the signed manifest digest is checked against the manifest elsewhere, so the repository suffices.
  if (intended.digest !== undefined) return signature.name === intended.name
  return false
}

/** prmRemapIdentity.remapReferencePrefix; undefined when the rewritten reference does not parse as canonical. */
function remap(intended: DockerReference, prefix: string, signedPrefix: string): DockerReference | undefined {
  const name = intended.name
  const matches =
    name.length === prefix.length ? name === prefix : name.startsWith(prefix) && name.charAt(prefix.length) === '/'
  if (!matches) return intended
  const rewritten = signedPrefix + referenceString(intended).slice(prefix.length)
  const parsed = parseDockerReference(rewritten)
  // reference.ParseNamed: the text must already be in normalized form.
  if (!parsed.ok || referenceString(parsed.ref) !== rewritten) return undefined
  return parsed.ref
}

export function identityMatches(identity: SignedIdentity, image: ImageReference, signedReference: string): boolean {
  const signed = parseDockerReference(signedReference)
  if (!signed.ok) return false
  const signature = signed.ref
  const intended = intendedReference(image)
  switch (identity.type) {
    case 'matchExact':
      return !isNameOnly(signature) && referenceString(signature) === referenceString(intended)
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(intended, signature)
    case 'matchRepository':
      return signature.name === intended.name
    case 'exactReference': {
      const wanted = parseDockerReference(identity.dockerReference)
      if (!wanted.ok || isNameOnly(wanted.ref) || isNameOnly(signature)) return false
      return referenceString(signature) === referenceString(wanted.ref)
    }
    case 'exactRepository': {
      const wanted = parseDockerReference(identity.dockerRepository)
      return wanted.ok && signature.name === wanted.ref.name
    }
    case 'remapIdentity': {
      const remapped = remap(intended, identity.prefix, identity.signedPrefix)
      return remapped !== undefined && repoDigestOrExact(remapped, signature)
    }
  }
}
