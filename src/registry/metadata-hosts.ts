/**
 * Cloud metadata endpoints and link-local addresses: no node pulls an image from there, and a
 * request from pullguard (which holds credentials for every namespace, and runs with a service
 * account) to one of them is what a hostile pod spec would want. Refused by name before any
 * request, at every redirect hop and token realm, and after DNS (a name that resolves there).
 *
 * A short deny-list, not "no private addresses": in-cluster registries on private addresses are
 * normal.
 */

/** Names of metadata services (lower case, no trailing dot). */
const METADATA_NAMES: ReadonlySet<string> = new Set(['metadata.google.internal'])

/**
 * Why `host` (as in an image reference or URL: name or IP literal, optional port, IPv6 in
 * brackets) is refused, or undefined when it is not. Numeric IPv4 spellings that resolvers accept
 * (2852039166, 0xa9fea9fe, 0251.0376.0251.0376) count as the address they spell.
 */
export function metadataHostProblem(host: string): string | undefined {
  const name = stripPort(host).toLowerCase().replace(/\.$/, '')
  if (METADATA_NAMES.has(name)) return `${name} is a cloud metadata service`
  const address = canonicalAddress(name)
  if (address === undefined) return undefined
  return metadataAddressProblem(address)
}

/** The same question for an address a name resolved to (dotted IPv4 or IPv6, no brackets). */
export function metadataAddressProblem(address: string): string | undefined {
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(address) ? address.split('.').map(Number) : embeddedIpv4(address)
  if (v4 !== undefined) {
    if (v4[0] === 169 && v4[1] === 254)
      return `${v4.join('.')} is a link-local address (169.254.0.0/16: cloud metadata services live there)`
    // Alibaba Cloud's metadata service sits outside link-local.
    return v4.join('.') === '100.100.100.200'
      ? `${v4.join('.')} is a cloud metadata service (Alibaba Cloud)`
      : undefined
  }
  const groups = ipv6Groups(address)
  if (groups === undefined) return undefined
  if (hex(groups) === 'fd00:ec2:0:0:0:0:0:254') return `${address} is the AWS instance metadata service (fd00:ec2::254)`
  if ((groups[0]! & 0xffc0) === 0xfe80) return `${address} is a link-local address (fe80::/10)`
  return undefined
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.lastIndexOf(':')
  return colon !== -1 && host.indexOf(':') === colon && /^\d*$/.test(host.slice(colon + 1))
    ? host.slice(0, colon)
    : host
}

/** An IP literal as the URL standard reads it (IPv4 numbers in any base, IPv6 compressed), else undefined. */
function canonicalAddress(name: string): string | undefined {
  if (name === '') return undefined
  let hostname: string
  try {
    hostname = new URL(`http://${name}/`).hostname
  } catch {
    return undefined
  }
  if (hostname.startsWith('[')) return hostname.slice(1, -1)
  return /^\d+\.\d+\.\d+\.\d+$/.test(hostname) ? hostname : undefined
}

/** IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses reach the IPv4 address. */
function embeddedIpv4(address: string): number[] | undefined {
  const groups = ipv6Groups(address)
  if (groups === undefined) return undefined
  const prefix = hex(groups.slice(0, 6))
  const mapped = prefix === '0:0:0:0:0:ffff'
  const nat64 = prefix === '64:ff9b:0:0:0:0'
  if (!mapped && !nat64) return undefined
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff]
}

function hex(groups: readonly number[]): string {
  return groups.map((g) => g.toString(16)).join(':')
}

/** Eight 16-bit groups of an IPv6 address (dotted IPv4 tail allowed), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  if (!address.includes(':')) return undefined
  let text = address.toLowerCase().replace(/%.*$/, '')
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (tail !== null) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const head = part(halves[0]!)
  const rest = halves.length === 2 ? part(halves[1]!) : []
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0
  if (fill < 0) return undefined
  const all = [...head, ...Array<string>(fill).fill('0'), ...rest]
  if (all.length !== 8 || !all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return all.map((g) => parseInt(g, 16))
}
