/**
 * The productions of distribution/reference's grammar (regexp.go), written as linear scanners rather
 * than one large regular expression: inputs come from untrusted pod specs, and every check here runs
 * in one pass with no backtracking. Each check returns undefined when the text is valid, otherwise a
 * plain-language description of what is wrong, used as the error's detail.
 */
import type { InvalidReferenceReason } from './errors.js'

const q = (s: string): string => JSON.stringify(s)

/** tag = `[\w][\w.-]{0,127}` (regexp.go); `\w` is ASCII in Go's RE2. */
export const MAX_TAG_LENGTH = 128

/**
 * go-digest's registered algorithms and their hex lengths (algorithm.go, anchoredEncodedRegexps).
 * sha384 is there too: the kubelet and containerd link crypto/sha512, which registers it.
 */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
])

/** digest-algorithm := component (separator component)*; components and separators are disjoint, so no backtracking. */
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/
/** `[[:xdigit:]]{32,}` in regexp.go: what any algorithm's encoded part must look like before go-digest sees it. */
const ANY_HEX_DIGEST = /^[0-9A-Fa-f]{32,}$/
const LOWER_HEX = /^[0-9a-f]*$/
const IPV6_INSIDE_BRACKETS = /^[a-fA-F0-9:]+$/
const DIGITS = /^[0-9]+$/

function isLowerAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
}

function isAlnum(c: number): boolean {
  return isLowerAlnum(c) || (c >= 0x41 && c <= 0x5a)
}

function isWordChar(c: number): boolean {
  return isAlnum(c) || c === 0x5f // "_"
}

/** Path separators (regexp.go `separator`): one ".", one "_", "__", or any run of "-". */
function isSeparator(sep: string): boolean {
  if (sep === '.' || sep === '_' || sep === '__') return true
  for (let i = 0; i < sep.length; i++) if (sep.charCodeAt(i) !== 0x2d) return false
  return sep.length > 0
}

/** path = component ("/" component)*, component = [a-z0-9]+ (separator [a-z0-9]+)*. */
export function pathProblem(path: string): string | undefined {
  for (const component of path.split('/')) {
    const problem = componentProblem(component)
    if (problem !== undefined) return problem
  }
  return undefined
}

function componentProblem(c: string): string | undefined {
  if (c === '') return 'repository path has an empty component (a leading, trailing or doubled "/")'
  let i = 0
  for (;;) {
    const start = i
    while (i < c.length && isLowerAlnum(c.charCodeAt(i))) i++
    if (i === start) return `path component ${q(c)} must start with a lower-case letter or digit`
    if (i === c.length) return undefined
    const sepStart = i
    while (i < c.length && !isLowerAlnum(c.charCodeAt(i))) i++
    const sep = c.slice(sepStart, i)
    const foreign = [...sep].find((ch) => ch !== '.' && ch !== '_' && ch !== '-')
    if (foreign !== undefined) {
      return `path component ${q(c)} contains ${q(foreign)}; only lower-case letters, digits, ".", "_" and "-" are allowed`
    }
    if (!isSeparator(sep)) {
      return `path component ${q(c)} contains ${q(sep)}; parts must be joined by one ".", one or two "_", or dashes`
    }
    if (i === c.length) return `path component ${q(c)} must end with a lower-case letter or digit`
  }
}

/** domain = host [":" port]; host = domain-name | "[" IPv6 "]"; port = [0-9]+ (regexp.go domainAndPort). */
export function domainProblem(domain: string): string | undefined {
  let port: string | undefined
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']')
    if (close < 0) return `registry host ${q(domain)} has "[" without a closing "]"`
    const inside = domain.slice(1, close)
    if (!IPV6_INSIDE_BRACKETS.test(inside)) {
      return `IPv6 address ${q(domain.slice(0, close + 1))} may only contain hex digits and ":" (no zone, no embedded IPv4)`
    }
    const after = domain.slice(close + 1)
    if (after === '') return undefined
    if (!after.startsWith(':')) return `registry host ${q(domain)} has ${q(after)} after the IPv6 address`
    port = after.slice(1)
  } else {
    const colon = domain.indexOf(':')
    const host = colon < 0 ? domain : domain.slice(0, colon)
    if (colon >= 0) port = domain.slice(colon + 1)
    if (port?.includes(':')) {
      return `registry host ${q(domain)} looks like an IPv6 address; write it in brackets, e.g. "[::1]:5000/app"`
    }
    const problem = hostNameProblem(host, domain)
    if (problem !== undefined) return problem
  }
  if (port !== undefined && !DIGITS.test(port)) {
    return `port ${q(port)} of registry host ${q(domain)} must be one or more digits`
  }
  return undefined
}

/** domain-name = label ("." label)*, label = `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`. */
function hostNameProblem(host: string, domain: string): string | undefined {
  for (const label of host.split('.')) {
    if (label === '') return `registry host ${q(domain)} has an empty name part (leading, trailing or doubled ".")`
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i)
      if (!isAlnum(c) && c !== 0x2d) {
        return `registry host ${q(domain)} contains ${q(label.charAt(i))}; host names allow letters, digits, "-" and "."`
      }
    }
    if (label.startsWith('-') || label.endsWith('-')) {
      return `registry host ${q(domain)} has a name part ${q(label)} that starts or ends with "-"`
    }
  }
  return undefined
}

export function tagProblem(tag: string): string | undefined {
  if (tag === '') return 'tag is empty'
  if (tag.length > MAX_TAG_LENGTH) return `tag must be at most ${MAX_TAG_LENGTH} characters, got ${tag.length}`
  if (!isWordChar(tag.charCodeAt(0))) return `tag ${q(tag)} must start with a letter, digit or "_"`
  for (let i = 1; i < tag.length; i++) {
    const c = tag.charCodeAt(i)
    if (!isWordChar(c) && c !== 0x2e && c !== 0x2d) {
      return `tag ${q(tag)} contains ${q(tag.charAt(i))}; tags allow letters, digits, "_", "." and "-"`
    }
  }
  return undefined
}

export interface DigestProblem {
  readonly reason: Extract<InvalidReferenceReason, 'invalid-digest' | 'unsupported-digest-algorithm'>
  readonly detail: string
}

/**
 * regexp.go's digest pattern, then go-digest's Validate: a registered algorithm needs exactly its
 * length of lower-case hex; an unregistered one is refused (ErrDigestUnsupported) because the runtime
 * cannot verify the content it pulls against it.
 */
export function digestProblem(digest: string): DigestProblem | undefined {
  if (digest === '') return { reason: 'invalid-digest', detail: 'digest after "@" is empty' }
  const colon = digest.indexOf(':')
  if (colon < 0) return { reason: 'invalid-digest', detail: `digest ${q(digest)} must be "algorithm:hex"` }
  const algorithm = digest.slice(0, colon)
  const hex = digest.slice(colon + 1)
  const expected = DIGEST_HEX_LENGTH.get(algorithm)
  if (expected !== undefined) {
    if (hex.length === expected && LOWER_HEX.test(hex)) return undefined
    const got = hex.length === expected ? `${hex.length} with upper-case or non-hex characters` : `${hex.length}`
    return {
      reason: 'invalid-digest',
      detail: `${algorithm} digest must be ${expected} lower-case hex characters, got ${got}`,
    }
  }
  if (!DIGEST_ALGORITHM.test(algorithm) || !ANY_HEX_DIGEST.test(hex)) {
    return {
      reason: 'invalid-digest',
      detail: `digest ${q(digest)} must be "algorithm:hex" with at least 32 hex characters`,
    }
  }
  const hint = DIGEST_HEX_LENGTH.has(algorithm.toLowerCase()) ? ' (algorithm names are lower case)' : ''
  return {
    reason: 'unsupported-digest-algorithm',
    detail: `digest algorithm ${q(algorithm)} is not supported${hint}; the kubelet accepts sha256, sha384 and sha512`,
  }
}
