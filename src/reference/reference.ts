/**
 * Image reference parsing and normalization, matching distribution/reference's ParseNormalizedNamed
 * (normalize.go, reference.go, regexp.go, v0.6.0) — the parser the kubelet uses before it pulls and
 * containerd's CRI plugin uses when it does. Whatever it refuses, the kubelet reports as
 * `InvalidImageName`; whatever it accepts, we must split into domain and path exactly as it does,
 * because keyring matching and the registry request are built from those parts.
 *
 * 1. Cut the digest at the first "@", then the tag at the last ":" when no "/" follows it.
 * 2. Decide the domain the way splitDockerDomain does (first component, docker.io defaults).
 * 3. Check the path, the domain, the path length, the tag and the digest against the grammar.
 */
import { InvalidReferenceError, type InvalidReferenceReason } from './errors.js'
import { digestProblem, domainProblem, pathProblem, tagProblem } from './grammar.js'

export interface ImageReference {
  /** As given. */
  readonly input: string
  /** Normalized domain: "docker.io", "localhost:5000", "[::1]:5000", "quay.io". */
  readonly domain: string
  /** Repository path on that domain: "library/nginx". */
  readonly path: string
  /** domain + "/" + path: what the kubelet's keyring matches pull-secret keys against. */
  readonly name: string
  /** As given; undefined when absent. */
  readonly tag?: string
  /** "sha256:…" when given. */
  readonly digest?: string
  /** host[:port] of the registry API: "registry-1.docker.io" for docker.io, otherwise the domain. */
  readonly registryHost: string
  /** What is pulled: the digest if present, else the tag, else "latest". */
  readonly reference: string
  /** name + "@" + digest, or name + ":" + (tag ?? "latest"); a tag next to a digest is dropped (ParseDockerRef). */
  readonly canonical: string
}

/**
 * Work bound before any grammar check runs: pod specs are untrusted. A real reference is at most a
 * host name (≤ 253 in DNS) + 255 (path) + 129 (":" tag) + 136 ("@sha512:…"), so 4096 refuses nothing
 * a runtime could pull while keeping the cost per image small. distribution itself has no such bound.
 */
export const MAX_INPUT_LENGTH = 4096
/**
 * RepositoryNameTotalLengthMax. Since distribution/reference v0.6.0 (PR #9, vendored by Kubernetes
 * and by containerd 1.7.18+/2.x) it limits the path only; before, it limited domain + "/" + path.
 */
export const MAX_PATH_LENGTH = 255

const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
/** Docker Hub's API host; containerd's resolver maps docker.io to it (remotes/docker/resolver.go). */
const DOCKER_HUB_API_HOST = 'registry-1.docker.io'
const OFFICIAL_REPO_PREFIX = 'library/'
const DEFAULT_TAG = 'latest'
/** ParseNormalizedNamed refuses a bare 64-hex string: it is an image ID, not a name. */
const IMAGE_ID = /^[a-f0-9]{64}$/
const UPPER_CASE = /[A-Z]/

export function parseReference(input: string): ImageReference {
  const fail = (reason: InvalidReferenceReason, detail: string): InvalidReferenceError =>
    new InvalidReferenceError(input, reason, detail)

  if (input === '') throw fail('empty', 'image reference is empty')
  if (input.length > MAX_INPUT_LENGTH) {
    throw fail('too-long', `image reference is ${input.length} characters; at most ${MAX_INPUT_LENGTH} are accepted`)
  }
  const odd = firstNonPrintableAscii(input)
  if (odd >= 0) {
    throw fail(
      'invalid-format',
      `character ${JSON.stringify(input.charAt(odd))} at position ${odd + 1} is not allowed (whitespace, control and non-ASCII characters never appear in image references)`,
    )
  }
  const scheme = input.indexOf('://')
  if (scheme >= 0) {
    throw fail(
      'invalid-format',
      `image references have no URL scheme; remove ${JSON.stringify(input.slice(0, scheme + 3))}`,
    )
  }
  if (IMAGE_ID.test(input)) {
    throw fail('invalid-format', 'a 64-character hex string is an image ID, not a repository name')
  }

  const at = input.indexOf('@')
  const nameAndTag = at < 0 ? input : input.slice(0, at)
  const digest = at < 0 ? undefined : input.slice(at + 1)
  const colon = nameAndTag.lastIndexOf(':')
  const hasTag = colon > nameAndTag.lastIndexOf('/')
  const nameText = hasTag ? nameAndTag.slice(0, colon) : nameAndTag
  const tag = hasTag ? nameAndTag.slice(colon + 1) : undefined
  if (nameText === '') {
    throw fail('invalid-format', `no repository name before ${JSON.stringify(hasTag ? ':' : '@')}`)
  }

  const split = splitDockerDomain(nameText)
  if (split === undefined) {
    throw fail('invalid-path', `no repository path after registry host ${JSON.stringify(nameText.slice(0, -1))}`)
  }
  const { domain, path } = split
  if (UPPER_CASE.test(path)) throw fail('uppercase-repository', 'repository name must be lowercase')

  // Length is measured on what distribution calls the path; see the fallback below.
  let measured = path
  const badDomain = domain === DEFAULT_DOMAIN ? undefined : domainProblem(domain)
  if (badDomain !== undefined) {
    // When the first component contains "." but is no host name — only possible through "_", as in
    // "my_registry.local/app" — reference.Parse reads the whole name as a path with an empty domain,
    // and the kubelet accepts it. containerd then pulls from the text before the first "/"
    // (reference.Spec.Hostname), so that is our domain, and the length limit covers the whole name.
    if (pathProblem(nameText) !== undefined) throw fail('invalid-domain', badDomain)
    measured = nameText
  }
  const badPath = pathProblem(path)
  if (badPath !== undefined) {
    const hint =
      !nameText.includes('/') && nameText.startsWith('[')
        ? ' (a registry host must be followed by "/" and a repository path, e.g. "[::1]:5000/app")'
        : ''
    throw fail('invalid-path', badPath + hint)
  }
  if (measured.length > MAX_PATH_LENGTH) {
    throw fail('too-long', `repository path must be at most ${MAX_PATH_LENGTH} characters, got ${measured.length}`)
  }
  const badTag = tag === undefined ? undefined : tagProblem(tag)
  if (badTag !== undefined) throw fail('invalid-tag', badTag)
  const badDigest = digest === undefined ? undefined : digestProblem(digest)
  if (badDigest !== undefined) throw fail(badDigest.reason, badDigest.detail)

  return buildReference(input, domain, path, tag, digest)
}

export function tryParseReference(
  input: string,
): { ok: true; ref: ImageReference } | { ok: false; error: InvalidReferenceError } {
  try {
    return { ok: true, ref: parseReference(input) }
  } catch (error) {
    if (error instanceof InvalidReferenceError) return { ok: false, error }
    throw error
  }
}

/**
 * normalize.go splitDockerDomain. With no "/" the whole name is a Docker Hub repository, even
 * "localhost" or "example.com". Otherwise the first component is a domain when it is "localhost",
 * contains "." or ":", or has upper case (repositories cannot, so it must be a host). Returns
 * undefined when a domain is followed by nothing ("quay.io/").
 */
function splitDockerDomain(name: string): { domain: string; path: string } | undefined {
  const slash = name.indexOf('/')
  if (slash < 0) return { domain: DEFAULT_DOMAIN, path: OFFICIAL_REPO_PREFIX + name }
  const first = name.slice(0, slash)
  const rest = name.slice(slash + 1)
  const isDomain = first === 'localhost' || /[.:]/.test(first) || UPPER_CASE.test(first)
  if (isDomain && rest === '') return undefined
  const domain = !isDomain || first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first
  let path = isDomain ? rest : name
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path
  return { domain, path }
}

function buildReference(
  input: string,
  domain: string,
  path: string,
  tag: string | undefined,
  digest: string | undefined,
): ImageReference {
  const name = `${domain}/${path}`
  return Object.freeze({
    input,
    domain,
    path,
    name,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    registryHost: domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain,
    reference: digest ?? tag ?? DEFAULT_TAG,
    canonical: digest === undefined ? `${name}:${tag ?? DEFAULT_TAG}` : `${name}@${digest}`,
  })
}

/** Index of the first character outside printable ASCII ("!".."~"), or -1. */
function firstNonPrintableAscii(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x21 || c > 0x7e) return i
  }
  return -1
}
