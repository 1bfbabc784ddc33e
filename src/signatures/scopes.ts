/**
 * Policy scopes as containers-image (go.podman.io/image/v5 v5.38.0) names them: which keys of a
 * policy.json transport section (and of registries.d's "docker" map) can match an image, and which
 * keys each transport refuses when the file is read.
 */
import type { ImageReference } from '../reference/index.js'

/**
 * docker_transport.go PolicyConfigurationIdentity, then PolicyConfigurationNamespaces
 * (policyconfiguration/naming.go): the most specific scope first.
 *
 * The identity is `name:tag` or `name@digest`, never both and never neither: CRI-O builds the policy's
 * reference with ParseRegistryImageReferenceFromOutOfProcessData, which adds ":latest" to a bare name
 * and drops the tag when a digest is present (containers-image refuses references carrying both) —
 * exactly `ref.canonical`.
 *
 * After the name and each parent ("quay.io:443/ns/repo", "quay.io:443/ns", "quay.io:443") come
 * wildcards of the host with any port cut at the first ":" ("*.io"); a host without "." ("localhost",
 * "[::1]:5000") gets none.
 */
export function dockerScopes(ref: ImageReference): string[] {
  const scopes = [ref.canonical]
  let name = ref.name
  for (;;) {
    scopes.push(name)
    const slash = name.lastIndexOf('/')
    if (slash < 0) break
    name = name.slice(0, slash)
  }
  const colon = name.indexOf(':')
  if (colon >= 0) name = name.slice(0, colon)
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.')) {
    name = name.slice(dot + 1)
    scopes.push(`*.${name}`)
  }
  return scopes
}

/**
 * dockerTransport.ValidatePolicyConfigurationScope. In v5.38 it refuses nothing ("FIXME? We could be
 * verifying the various character set and length restrictions"): a scope that can never match, such
 * as "*.example.com/ns" or "Quay.io/x", is accepted and silently unused. Returns a problem or undefined.
 */
export function validDockerScope(_scope: string): string | undefined {
  return undefined
}

/**
 * Each transport's ValidatePolicyConfigurationScope, for the transports CRI-O links in
 * (transports/alltransports, with containers-storage and docker-daemon). A scope a transport refuses
 * makes the whole policy invalid (policy_config.go reports it as an unknown key); a transport name
 * nobody registered is accepted without looking at its scopes. "" is always allowed.
 */
export function transportScopeProblem(transport: string, scope: string): string | undefined {
  if (scope === '') return undefined
  switch (transport) {
    case 'dir':
    case 'sif':
      return absolutePathProblem(scope, 'Must be an absolute path', 'Uses non-canonical format, perhaps try')
    case 'oci':
    case 'oci-archive':
      return absolutePathProblem(
        scope,
        'must be an absolute path',
        'Uses non-canonical path format, perhaps try with path',
      )
    case 'docker-archive':
    case 'tarball':
      return `${transport}: does not support any scopes except the default "" one`
    case 'docker-daemon':
      return goDigestProblem(scope) === undefined
        ? `docker-daemon: can not use algo:digest value ${scope} as a namespace`
        : undefined
    case 'openshift':
      return OPENSHIFT_SCOPE.test(scope) ? undefined : `Invalid scope name ${scope}`
    case 'containers-storage':
      return storageScopeProblem(scope)
    default: // docker and the ostree stub accept anything; so do transports nobody registered
      return undefined
  }
}

/** openshift_transport.go scopeRegexp. */
const OPENSHIFT_SCOPE = /^[^/]*(\/[^:/]*(\/[^:/]*(:[^:/]*)?)?)?$/

function absolutePathProblem(scope: string, notAbsolute: string, notClean: string): string | undefined {
  if (!scope.startsWith('/')) return `Invalid scope ${scope}: ${notAbsolute}`
  // "/" would shadow the transport default "" with the same meaning.
  if (scope === '/') return 'Invalid scope "/": Use the generic default scope ""'
  const cleaned = cleanAbsolutePath(scope)
  return cleaned === scope ? undefined : `Invalid scope ${scope}: ${notClean} ${cleaned}`
}

/** Go's filepath.Clean for a path starting with "/". */
function cleanAbsolutePath(path: string): string {
  const out: string[] = []
  for (const element of path.split('/')) {
    if (element === '' || element === '.') continue
    if (element === '..') out.pop()
    else out.push(element)
  }
  return `/${out.join('/')}`
}

/** storage_transport.go ValidatePolicyConfigurationScope: "[driver@/root]name[:tag][@digest][@id]". */
function storageScopeProblem(scope: string): string | undefined {
  const invalid = 'invalid reference'
  if (!scope.startsWith('[')) return invalid
  const close = scope.indexOf(']')
  if (close < 1) return invalid
  const storeSpec = scope.slice(1, close)
  const rest = scope.slice(close + 1)
  const at = storeSpec.indexOf('@')
  if (at >= 0) {
    const driver = storeSpec.slice(0, at)
    const root = storeSpec.slice(at + 1)
    if (driver === '' || root === '') return invalid
    if (!root.startsWith('/')) return 'path name is not absolute'
  } else if (storeSpec !== '') {
    if (!storeSpec.startsWith('/')) return 'path name is not absolute'
  } else {
    return invalid
  }
  if (rest === '') return undefined
  const fields = splitN(rest, '@', 3)
  if (fields.length === 2) {
    const id = fields[1]!
    const idProblem = goDigestProblem(`sha256:${id}`)
    const digestProblem = goDigestProblem(id)
    if (idProblem !== undefined && digestProblem !== undefined) {
      return `${id} is neither a valid digest(${digestProblem}) nor a valid ID(${idProblem})`
    }
  } else if (fields.length === 3) {
    return goDigestProblem(fields[1]!) ?? goDigestProblem(`sha256:${fields[2]!}`)
  }
  return undefined
}

/** Go's strings.SplitN. */
function splitN(s: string, sep: string, n: number): string[] {
  const parts = s.split(sep)
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)]
}

/** go-digest's algorithms with their hex lengths; containers-image links crypto/sha256 and crypto/sha512. */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
])
const DIGEST_ANCHORED = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const LOWER_HEX = /^[a-f0-9]+$/

/** go-digest v1.0.0 Parse (Digest.Validate): undefined when valid, otherwise its error text. */
export function goDigestProblem(s: string): string | undefined {
  const colon = s.indexOf(':')
  if (colon <= 0 || colon + 1 === s.length) return 'invalid checksum digest format'
  const length = DIGEST_HEX_LENGTH.get(s.slice(0, colon))
  if (length === undefined) {
    return DIGEST_ANCHORED.test(s) ? 'unsupported digest algorithm' : 'invalid checksum digest format'
  }
  const encoded = s.slice(colon + 1)
  if (encoded.length !== length) return 'invalid checksum digest length'
  return LOWER_HEX.test(encoded) ? undefined : 'invalid checksum digest format'
}
