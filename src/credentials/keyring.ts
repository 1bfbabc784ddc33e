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
import { isIPv6 } from 'node:net'

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
  const parsed = parseHttpUrl(key.startsWith('https://') || key.startsWith('http://') ? key : `https://${key}`)
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
function urlsMatch(glob: string, target: string): boolean {
  const g = parseHttpUrl(`https://${glob}`)
  const t = parseHttpUrl(`https://${target}`)
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

// --- Go's net/url.Parse, for a string starting "http://" or "https://" -------------------------------
// Since Go 1.24.8/1.25.2 (CVE-2025-47912) brackets must hold an IPv6 address, and since the fix for
// CVE-2026-25679 (go.dev/issue/77578) only at the start of the host: a "[a-z]" class inside a host
// key makes url.Parse fail and the kubelet drops the key (kubelets built with older Go honoured it).
// Hosts with several ":" (refused from Go 1.26) parse in older Go but can never match an image.

function parseHttpUrl(raw: string): { host: string; path: string } | undefined {
  const hash = raw.indexOf('#')
  const u = hash < 0 ? raw : raw.slice(0, hash)
  if (hash >= 0 && unescape(raw.slice(hash + 1), 'other') === undefined) return undefined
  if (/[\x00-\x1f\x7f]/.test(u)) return undefined
  let rest = u.slice(u.indexOf(':') + 1)
  if (rest.endsWith('?') && rest.indexOf('?') === rest.length - 1) rest = rest.slice(0, -1)
  else if (rest.includes('?')) rest = rest.slice(0, rest.indexOf('?'))
  let authority = rest.slice(2)
  let path = ''
  const slash = authority.indexOf('/')
  if (slash >= 0) [authority, path] = [authority.slice(0, slash), authority.slice(slash)]
  const at = authority.lastIndexOf('@')
  const host = parseHost(authority.slice(at + 1))
  if (host === undefined) return undefined
  if (at >= 0 && !validUserinfo(authority.slice(0, at))) return undefined
  const decodedPath = unescape(path, 'other')
  return decodedPath === undefined ? undefined : { host, path: decodedPath }
}

function parseHost(host: string): string | undefined {
  const open = host.lastIndexOf('[')
  if (open > 0) return undefined
  if (open === 0) {
    const close = host.lastIndexOf(']')
    if (close < 0 || !validOptionalPort(host.slice(close + 1))) return undefined
    const name = host.slice(1, close)
    const zone = name.indexOf('%25')
    const address = zone < 0
      ? unescape(name, 'host')
      : join(unescape(name.slice(0, zone), 'host'), unescape(name.slice(zone), 'zone'))
    // netip.ParseAddr, and not a plain IPv4 address.
    if (address === undefined || !isIPv6(address)) return undefined
    return `[${address}]${host.slice(close + 1)}`
  }
  const colon = host.lastIndexOf(':')
  if (colon >= 0 && !validOptionalPort(host.slice(colon))) return undefined
  return unescape(host, 'host')
}

function join(a: string | undefined, b: string | undefined): string | undefined {
  return a === undefined || b === undefined ? undefined : a + b
}

function validOptionalPort(port: string): boolean {
  return /^(?::[0-9]*)?$/.test(port)
}

function validUserinfo(userinfo: string): boolean {
  if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return false
  const colon = userinfo.indexOf(':')
  const parts = colon < 0 ? [userinfo] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)]
  return parts.every((part) => unescape(part, 'other') !== undefined)
}

/** Characters a host may hold unescaped (url.go shouldEscape in encodeHost mode). */
const HOST_CHAR = /[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]/

/** url.go unescape: "%XY" must be hex; in a host only non-ASCII may be %-encoded (and "%25"). */
function unescape(s: string, mode: 'host' | 'zone' | 'other'): string | undefined {
  const bytes: number[] = []
  for (let i = 0; i < s.length;) {
    if (s[i] === '%') {
      const hex = s.slice(i + 1, i + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
      const v = parseInt(hex, 16)
      if (mode === 'host' && v < 0x80 && hex !== '25') return undefined
      if (mode === 'zone' && hex !== '25' && v !== 0x20 && !(v < 0x80 && HOST_CHAR.test(String.fromCharCode(v)))) return undefined
      bytes.push(v)
      i += 3
    } else {
      const char = String.fromCodePoint(s.codePointAt(i) ?? 0)
      if (mode !== 'other' && char < '\x80' && !HOST_CHAR.test(char)) return undefined
      bytes.push(...Buffer.from(char))
      i += char.length
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** net.SplitHostPort; on error the kubelet (SplitURL) keeps the whole host and an empty port. */
function splitHostPort(hostport: string): { host: string; port: string } {
  const whole = { host: hostport, port: '' }
  const i = hostport.lastIndexOf(':')
  if (i < 0) return whole
  let host: string
  let j = 0
  let k = 0
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']')
    if (end < 0 || end + 1 !== i) return whole
    host = hostport.slice(1, end)
    j = 1
    k = end + 1
  } else {
    host = hostport.slice(0, i)
    if (host.includes(':')) return whole
  }
  if (hostport.slice(j).includes('[') || hostport.slice(k).includes(']')) return whole
  return { host, port: hostport.slice(i + 1) }
}

// --- Go's path.Match (filepath.Match on Linux), Go 1.16+: a malformed pattern never matches ----------
// Runes are code points here; Go steps through bytes when skipping for "*", which only differs for
// non-ASCII names, and image names are ASCII.

export function globMatch(pattern: string, name: string): boolean {
  let p = [...pattern]
  let n = [...name]
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p)
    p = rest
    if (star && chunk.length === 0) return !n.includes('/')
    const here = matchChunk(chunk, n)
    if (here.ok && (here.rest.length === 0 || p.length > 0)) {
      n = here.rest
      continue
    }
    if (here.bad) return false
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i++) {
        const skipped = matchChunk(chunk, n.slice(i + 1))
        if (skipped.ok) {
          if (p.length === 0 && skipped.rest.length > 0) continue
          n = skipped.rest
          continue outer
        }
        if (skipped.bad) return false
      }
    }
    return false
  }
  return n.length === 0
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let start = 0
  while (pattern[start] === '*') start++
  let inRange = false
  let i = start
  for (; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\') { if (i + 1 < pattern.length) i++ }
    else if (c === '[') inRange = true
    else if (c === ']') inRange = false
    else if (c === '*' && !inRange) break
  }
  return { star: start > 0, chunk: pattern.slice(start, i), rest: pattern.slice(i) }
}

type ChunkResult = { ok: true; rest: string[]; bad: false } | { ok: false; bad: boolean }

/** path.matchChunk: keeps reading the pattern after a mismatch so malformed patterns are caught. */
function matchChunk(chunk: string[], s: string[]): ChunkResult {
  let failed = false
  let c = 0
  let i = 0
  const bad = { ok: false, bad: true } as const
  while (c < chunk.length) {
    if (!failed && i >= s.length) failed = true
    const ch = chunk[c]
    if (ch === '[') {
      const r = failed ? '' : (s[i++] ?? '')
      c++
      const negated = chunk[c] === '^'
      if (negated) c++
      let match = false
      let ranges = 0
      for (;;) {
        if (chunk[c] === ']' && ranges > 0) { c++; break }
        const lo = getEsc(chunk, c)
        if (lo === undefined) return bad
        let hi = lo
        c = lo.next
        if (chunk[c] === '-') {
          const upper = getEsc(chunk, c + 1)
          if (upper === undefined) return bad
          hi = upper
          c = upper.next
        }
        const code = r.codePointAt(0)
        if (code !== undefined && code >= rune(lo.rune) && code <= rune(hi.rune)) match = true
        ranges++
      }
      if (match === negated) failed = true
    } else if (ch === '?') {
      if (!failed) { if (s[i] === '/') failed = true; i++ }
      c++
    } else {
      let literal = ch
      if (ch === '\\') {
        c++
        literal = chunk[c]
        if (literal === undefined) return bad
      }
      if (!failed) { if (literal !== s[i]) failed = true; i++ }
      c++
    }
  }
  return failed ? { ok: false, bad: false } : { ok: true, rest: s.slice(i), bad: false }
}

function rune(char: string): number {
  return char.codePointAt(0) ?? 0
}

/** path.getEsc: one possibly escaped rune of a character class; undefined when malformed. */
function getEsc(chunk: string[], at: number): { rune: string; next: number } | undefined {
  let c = at
  if (c >= chunk.length || chunk[c] === '-' || chunk[c] === ']') return undefined
  if (chunk[c] === '\\') {
    c++
    if (c >= chunk.length) return undefined
  }
  const rune = chunk[c] ?? ''
  c++
  return c >= chunk.length ? undefined : { rune, next: c }
}
