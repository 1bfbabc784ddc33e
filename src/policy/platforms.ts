/**
 * Which platforms a pod may run on, and whether an image index has an entry for each of them.
 * Matching follows containerd (github.com/containerd/platforms), which the kubelet's runtime uses
 * to pick an index entry: `Normalize` (database.go normalizeArch) and `Only` (compare.go
 * platformVector), i.e. the default matcher of a containerd pull. A node pulls an entry the
 * matcher accepts, so we accept exactly those: accepting fewer would deny pods that pull fine.
 * Windows `os.version` matching is not modelled (nodeInfo and `--platform` carry no OS version).
 */
import type { PodScheduling } from '../pools/scheduling.js'
import type { Platform } from '../registry/index.js'

export type { Platform }

// Label keys the kubelet sets on every Node from its runtime.GOOS / GOARCH
// (pkg/kubelet/kubelet_node_status.go); the beta ones are the deprecated duplicates.
const OS_LABELS: ReadonlySet<string> = new Set(['kubernetes.io/os', 'beta.kubernetes.io/os'])
const ARCH_LABELS: ReadonlySet<string> = new Set(['kubernetes.io/arch', 'beta.kubernetes.io/arch'])
const STABLE_LABELS: ReadonlySet<string> = new Set(['kubernetes.io/os', 'kubernetes.io/arch'])
// Go's syslist (containerd database.go isKnownOS / isKnownArch): a typo in --platform would
// otherwise make every index "miss" a platform no node has, and deny every multi-arch image.
const KNOWN_OS: ReadonlySet<string> = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'wasip1',
  'windows',
  'zos',
])
const KNOWN_ARCH: ReadonlySet<string> = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'ppc64',
  'ppc64le',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
])
// containerd's specifierRe, plus '.' in the variant for arm64 minor versions (v8.2).
const COMPONENT = /^[A-Za-z0-9_-]+$/
const VARIANT = /^[A-Za-z0-9._-]+$/

/** `os/architecture[/variant]` as given to `--platform`, normalized. Throws an Error saying what is wrong. */
export function parsePlatform(specifier: string): Platform {
  const parts = specifier.trim().split('/')
  const [os, architecture, variant] = parts
  const usage = `expected os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7`
  if (parts.length < 2 || parts.length > 3 || os === undefined || architecture === undefined) {
    throw new Error(`invalid platform ${JSON.stringify(specifier)}: ${usage}`)
  }
  const bad =
    [os, architecture].find((part) => !COMPONENT.test(part)) ??
    (variant !== undefined && !VARIANT.test(variant) ? variant : undefined)
  if (bad !== undefined)
    throw new Error(
      `invalid platform ${JSON.stringify(specifier)}: ${JSON.stringify(bad)} is not a valid component; ${usage}`,
    )
  const p = normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant })
  if (!KNOWN_OS.has(p.os))
    throw new Error(`invalid platform ${JSON.stringify(specifier)}: unknown operating system ${JSON.stringify(p.os)}`)
  if (!KNOWN_ARCH.has(p.architecture))
    throw new Error(
      `invalid platform ${JSON.stringify(specifier)}: unknown architecture ${JSON.stringify(p.architecture)}`,
    )
  return p
}

/**
 * containerd's Normalize: lower case, architecture aliases, default variants made canonical
 * (arm64 ≡ arm64/v8, arm ≡ arm/v7, amd64 ≡ amd64/v1). An empty os stays empty (containerd would
 * substitute its own host's; we have no host that means anything).
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase()
  if (os === 'macos') os = 'darwin'
  let arch = p.architecture.toLowerCase()
  let variant = (p.variant ?? '').toLowerCase()
  switch (arch) {
    case 'i386':
      arch = '386'
      variant = ''
      break
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64'
      if (variant === 'v1') variant = ''
      break
    case 'aarch64':
    case 'arm64':
      arch = 'arm64'
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = ''
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9'
      break
    case 'armhf':
      arch = 'arm'
      variant = 'v7'
      break
    case 'armel':
      arch = 'arm'
      variant = 'v6'
      break
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7'
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`
      break
  }
  return variant === '' ? { os, architecture: arch } : { os, architecture: arch, variant }
}

/** Would a node of platform `node` pull the index entry `entry`? containerd's `Only(node).Match(entry)`. */
export function platformMatches(node: Platform, entry: Platform): boolean {
  const have = normalizePlatform(entry)
  return compatible(normalizePlatform(node)).some((p) => {
    const want = normalizePlatform(p)
    return (
      want.os === have.os && want.architecture === have.architecture && (want.variant ?? '') === (have.variant ?? '')
    )
  })
}

/**
 * compare.go platformVector: what a platform runs besides itself. amd64/vN runs amd64/v(N-1)…v1
 * and 386; arm/vN runs arm/v(N-1)…v5; arm64/v8.x runs arm64/v8.(x-1)…v8 and arm/v8…v5; arm64/v9.x
 * runs arm64/v9.(x-1)…v9 and arm64/v8.(x+5, at most 9)…v8, then arm/v8…v5.
 */
function compatible(p: Platform): Platform[] {
  const { os } = p
  const out: Platform[] = [p]
  const at = (architecture: string, variant: string): Platform =>
    variant === '' ? { os, architecture } : { os, architecture, variant }
  const version = (v: string | undefined): number =>
    v !== undefined && /^v?\d+$/.test(v) ? Number(v.replace(/^v/, '')) : NaN
  switch (p.architecture) {
    case 'amd64': {
      const n = version(p.variant)
      for (let v = n - 1; v >= 1; v--) out.push(at('amd64', `v${v}`))
      out.push(at('386', ''))
      break
    }
    case 'arm': {
      const n = version(p.variant)
      for (let v = n - 1; v >= 5; v--) out.push(at('arm', `v${v}`))
      break
    }
    case 'arm64': {
      let variant = p.variant ?? 'v8'
      const [majorPart = '', minorPart] = variant.split('.', 2)
      let major = version(majorPart)
      if (major >= 8) {
        let minor = variant.length === 4 && minorPart !== undefined && /^\d+$/.test(minorPart) ? Number(minorPart) : 0
        const down = (to: number): void => {
          for (let m = minor - 1; m >= 0; m--) out.push(at('arm64', m === 0 ? `v${to}` : `v${to}.${m}`))
        }
        if (major === 9) {
          down(9)
          // v9.0 branched from v8.5: v9.x runs v8.(x+5), up to v8.9.
          minor = Math.min(minor + 5, 9)
          major = 8
          out.push(at('arm64', `v8.${minor}`))
        }
        down(major)
      }
      // Every arm64 v8.x / v9.x runs 32-bit arm up to v8.
      if (variant.startsWith('v8.') || variant.startsWith('v9.')) variant = 'v8'
      out.push(...compatible(at('arm', variant)))
      break
    }
  }
  return out
}

/** BuildKit's attestation manifests (SBOM, provenance) sit in the index as `unknown/unknown`: no node runs them. */
export function isAttestation(p: Platform): boolean {
  return p.os.toLowerCase() === 'unknown' && p.architecture.toLowerCase() === 'unknown'
}

export function formatPlatform(p: Platform): string {
  return p.variant === undefined || p.variant === ''
    ? `${p.os}/${p.architecture}`
    : `${p.os}/${p.architecture}/${p.variant}`
}

/** As far as platforms go: the nodeSelector and the required node affinity's label requirements. */
export type SchedulingConstraints = Pick<PodScheduling, 'nodeSelector' | 'nodeSelectorTerms'>

/**
 * The cluster platforms a pod may be scheduled on, given its nodeSelector and required node
 * affinity on the os/arch labels (node labels are GOOS/GOARCH: compared as given, not normalized,
 * like the scheduler does). When in doubt we keep a platform: a platform kept wrongly costs at
 * most a warning, one dropped wrongly could deny a pod that pulls fine.
 */
export function podPlatforms(cluster: readonly Platform[], c: SchedulingConstraints): Platform[] {
  const out = new Map<string, Platform>()
  for (const raw of cluster) {
    const p = normalizePlatform(raw)
    if (!selectorAllows(p, c.nodeSelector)) continue
    // Terms are ORed, expressions within one term ANDed (k8s NodeSelector semantics).
    if (
      c.nodeSelectorTerms.length > 0 &&
      !c.nodeSelectorTerms.some((t) => t.matchExpressions.every((e) => expressionAllows(p, e)))
    )
      continue
    out.set(formatPlatform(p), p)
  }
  return [...out.values()]
}

function labelValue(p: Platform, key: string): string | undefined {
  if (OS_LABELS.has(key)) return p.os
  if (ARCH_LABELS.has(key)) return p.architecture
  return undefined
}

function selectorAllows(p: Platform, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => {
    const have = labelValue(p, key)
    return have === undefined || have === value
  })
}

function expressionAllows(p: Platform, e: { key: string; operator: string; values?: string[] }): boolean {
  const have = labelValue(p, e.key)
  if (have === undefined) return true // another key: it narrows nodes, not platforms we can name
  const values = e.values ?? []
  switch (e.operator) {
    case 'In':
      return values.includes(have)
    case 'NotIn':
      return !values.includes(have)
    case 'Exists':
      return true
    // Every kubelet sets the stable labels; whether nodes still carry the beta ones we cannot know.
    case 'DoesNotExist':
      return !STABLE_LABELS.has(e.key)
    default:
      return true // Gt/Lt and unknown operators: not something we can hold against a platform
  }
}

export interface PlatformJudgement {
  /** 'none': no candidate can pull it; 'some': only part of them can; 'ok': all can (or the cluster is unknown). */
  verdict: 'ok' | 'none' | 'some'
  /** Candidate platforms without a matching entry. */
  missing: Platform[]
  /** What the index does offer (attestations left out), for messages. */
  available: Platform[]
}

/**
 * Holds an index's platforms against the platforms the pod may run on. Attestation entries never
 * count. No candidates (cluster unknown, or a pod no node could take) → 'ok': nothing to hold it
 * against, and an unschedulable pod is the scheduler's to report.
 */
export function judgePlatforms(index: readonly Platform[], candidates: readonly Platform[]): PlatformJudgement {
  const available = new Map<string, Platform>()
  for (const raw of index) {
    if (isAttestation(raw)) continue
    const p = normalizePlatform(raw)
    available.set(formatPlatform(p), p)
  }
  const entries = [...available.values()]
  const missing = candidates.filter((c) => !entries.some((e) => platformMatches(c, e))).map(normalizePlatform)
  const verdict =
    candidates.length === 0 || missing.length === 0 ? 'ok' : missing.length === candidates.length ? 'none' : 'some'
  return { verdict, missing, available: entries }
}
