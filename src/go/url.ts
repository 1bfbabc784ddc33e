/** Ports of the Go standard library pieces the kubelet's keyring runs keys through. */
import { isIPv6 } from 'node:net'

// --- Go's net/url.Parse, for a string starting "http://" or "https://" -------------------------------
// Since Go 1.24.8/1.25.2 (CVE-2025-47912) brackets must hold an IPv6 address, and since the fix for
// CVE-2026-25679 (go.dev/issue/77578) only at the start of the host: a "[a-z]" class inside a host
// key makes url.Parse fail and the kubelet drops the key (kubelets built with older Go honoured it).
// Hosts with several ":" (refused from Go 1.26) parse in older Go but can never match an image.

export function parseHttpUrl(raw: string): { host: string; path: string } | undefined {
  const hash = raw.indexOf('#')
  const u = hash < 0 ? raw : raw.slice(0, hash)
  if (hash >= 0 && percentUnescape(raw.slice(hash + 1), 'other') === undefined) return undefined
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go's url.Parse refuses ASCII control characters, and so must we
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
  const decodedPath = percentUnescape(path, 'other')
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
    const address =
      zone < 0
        ? percentUnescape(name, 'host')
        : join(percentUnescape(name.slice(0, zone), 'host'), percentUnescape(name.slice(zone), 'zone'))
    // netip.ParseAddr, and not a plain IPv4 address.
    if (address === undefined || !isIPv6(address)) return undefined
    return `[${address}]${host.slice(close + 1)}`
  }
  const colon = host.lastIndexOf(':')
  if (colon >= 0 && !validOptionalPort(host.slice(colon))) return undefined
  return percentUnescape(host, 'host')
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
  return parts.every((part) => percentUnescape(part, 'other') !== undefined)
}

/** Characters a host may hold unescaped (url.go shouldEscape in encodeHost mode). */
const HOST_CHAR = /[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]/

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/
const HOST_CHARS_ONLY = /^[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]*$/

/** url.go unescape (named apart from the global unescape): "%XY" must be hex; in a host only non-ASCII may be %-encoded (and "%25"). */
function percentUnescape(s: string, mode: 'host' | 'zone' | 'other'): string | undefined {
  // The common case (registry hosts and paths): nothing escaped, nothing beyond printable ASCII.
  if (!s.includes('%') && PRINTABLE_ASCII.test(s)) return mode === 'other' || HOST_CHARS_ONLY.test(s) ? s : undefined
  const bytes: number[] = []
  for (let i = 0; i < s.length; ) {
    if (s[i] === '%') {
      const hex = s.slice(i + 1, i + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
      const v = parseInt(hex, 16)
      if (mode === 'host' && v < 0x80 && hex !== '25') return undefined
      if (mode === 'zone' && hex !== '25' && v !== 0x20 && !(v < 0x80 && HOST_CHAR.test(String.fromCharCode(v))))
        return undefined
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
export function splitHostPort(hostport: string): { host: string; port: string } {
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
