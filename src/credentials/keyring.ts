/**
 * The kubelet's BasicDockerKeyring (kubernetes pkg/credentialprovider/keyring.go, v1.33+ — the
 * matching has not changed since v1.6). Keys and image names are compared through Go's url.Parse,
 * net.SplitHostPort and filepath.Match, so those are ported here as far as the keyring uses them;
 * the WHATWG URL parser would lower-case hosts and normalize paths, which the kubelet does not.
 *
 * 1. Add: a key without "http://" or "https://" gets "https://"; url.Parse; a key Go cannot parse is
 *    dropped (logged by the kubelet); a path starting "/v1/" or "/v2/" loses its first 3 characters;
 *    KEY = Host + path, the path left off when empty or "/". Credentials pile up per KEY in the order
 *    added (secrets in pod order); the index of distinct KEYs is sorted, then reversed.
 * 2. Lookup: every KEY in index order that URLsMatch the image name contributes all its credentials.
 *    Nothing is deduplicated: a repeated (username, password) is tried again.
 * 3. Nothing matched, and isDefaultRegistryMatch(image): the credentials under KEY "index.docker.io".
 */
import { parseHttpUrl, splitHostPort } from '../go/url.js'
import { globMatch } from '../go/glob.js'

export interface KeyringEntry {
  /** The registry key as written in the docker config. */
  key: string
  username: string
  password: string
  /** Where it came from, e.g. `secret team-a/regcred (key "quay.io")`; never a value. */
  label: string
}

export interface NormalizedKey {
  /** What the kubelet indexes: Host (with any port) + path. */
  key: string
  /** Host without port (net.SplitHostPort; brackets dropped when a port follows). */
  host: string
  /** "" when none. */
  port: string
  /** "" when empty or "/"; otherwise it starts with "/". */
  path: string
}

/** keyring.go defaultRegistryHost: the KEY of "https://index.docker.io/v1/". */
const DOCKER_HUB_KEY = 'index.docker.io'

/** BasicDockerKeyring.Add's key normalization; undefined when the kubelet would drop the key. */
export function normalizeKey(key: string): NormalizedKey | undefined {
  const parsed = parseOnce(key.startsWith('https://') || key.startsWith('http://') ? key : `https://${key}`)
  if (parsed === undefined) return undefined
  let path = parsed.path
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3)
  if (path === '/') path = ''
  const { host, port } = splitHostPort(parsed.host)
  return { key: parsed.host + path, host, port, path }
}

/** Whether a key as written in a docker config matches a normalized image name (`docker.io/library/nginx`). */
export function keyMatches(key: string, imageName: string): boolean {
  const normalized = normalizeKey(key)
  return normalized !== undefined && urlsMatch(normalized.key, imageName)
}

/** Whether the kubelet would try a key's credentials for an image, Docker Hub's default key included. */
export function keyApplies(key: string, imageName: string): boolean {
  return createKeyring([{ key, username: '', password: '', label: '' }])(imageName).length > 0
}

/** BasicDockerKeyring.Lookup over entries added in the given order. */
export function lookup(entries: readonly KeyringEntry[], imageName: string): KeyringEntry[] {
  return createKeyring(entries)(imageName)
}

/** Builds the keyring once (Add) for many lookups. */
export function createKeyring(entries: readonly KeyringEntry[]): (imageName: string) => KeyringEntry[] {
  const byKey = new Map<string, KeyringEntry[]>()
  for (const entry of entries) {
    const normalized = normalizeKey(entry.key)
    if (normalized === undefined) continue
    const list = byKey.get(normalized.key)
    if (list === undefined) byKey.set(normalized.key, [entry])
    else list.push(entry)
  }
  // sets.NewString(...).List() sorts by Go string (byte) order, then sort.Reverse.
  const index = [...byKey.keys()].sort((a, b) => Buffer.compare(Buffer.from(b), Buffer.from(a)))
  return (imageName) => {
    const found: KeyringEntry[] = []
    for (const key of index) if (urlsMatch(key, imageName)) found.push(...(byKey.get(key) ?? []))
    if (found.length > 0 || !isDefaultRegistryMatch(imageName)) return found
    return [...(byKey.get(DOCKER_HUB_KEY) ?? [])]
  }
}

/**
 * keyring.go isDefaultRegistryMatch. With a normalized name this is docker.io — and also any
 * domain without "." or ":" (`localhost/app`), which therefore gets the Docker Hub credentials too.
 */
export function isDefaultRegistryMatch(imageName: string): boolean {
  const slash = imageName.indexOf('/')
  const first = slash < 0 ? imageName : imageName.slice(0, slash)
  if (first === '') return false
  if (slash < 0) return true
  if (first === 'docker.io' || first === 'index.docker.io') return true
  return !/[.:]/.test(first)
}

/**
 * keyring.go URLsMatchStr/URLsMatch: both sides get "https://" and url.Parse; ports equal, the same
 * number of host labels, the glob's path a plain string prefix of the target's, each label
 * filepath.Match-ed (a malformed pattern matches nothing).
 */
/**
 * parseHttpUrl is pure and the same few keys and image names come back on every review: parse each
 * once. Bounded by clearing, as the strings come from pod specs and secret keys.
 */
const parsedUrls = new Map<string, ReturnType<typeof parseHttpUrl>>()
const MAX_PARSED_URLS = 10_000
function parseOnce(url: string): ReturnType<typeof parseHttpUrl> {
  // A key with userinfo (`https://user:pass@host`) is parsed every time rather than kept.
  if (url.includes('@')) return parseHttpUrl(url)
  if (parsedUrls.has(url)) return parsedUrls.get(url)
  if (parsedUrls.size >= MAX_PARSED_URLS) parsedUrls.clear()
  const parsed = parseHttpUrl(url)
  parsedUrls.set(url, parsed)
  return parsed
}

export function urlsMatch(glob: string, target: string): boolean {
  const g = parseOnce(`https://${glob}`)
  const t = parseOnce(`https://${target}`)
  if (g === undefined || t === undefined) return false
  const gHost = splitHostPort(g.host)
  const tHost = splitHostPort(t.host)
  if (gHost.port !== tHost.port) return false
  const gLabels = gHost.host.split('.')
  const tLabels = tHost.host.split('.')
  if (gLabels.length !== tLabels.length) return false
  if (!t.path.startsWith(g.path)) return false
  return gLabels.every((label, i) => globMatch(label, tLabels[i] ?? ''))
}

export { globMatch }
