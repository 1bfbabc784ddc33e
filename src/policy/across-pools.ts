/**
 * A subject's assessment on every node pool it can land on. Pools whose files are the same share
 * one assessment (their readers, and so their registry answers, are the same objects); each pool
 * then holds the answers against its own nodes: its runtime (a schema 1 manifest), its kubelet's
 * credential verification (an image never pulled), the node a bound pod is on.
 */
import type { Placement } from '../pools/placement.js'
import { DEFAULT_POOL, DEFAULT_VERIFICATION_POLICY, type KubeletPullSettings } from '../pools/pool.js'
import { formatRuntime, parseRuntime, schema1Support, type RuntimeVersion } from '../pools/runtime.js'
import { judgeNeverPulled, type OwnCredentialsAnswer } from '../pools/verification.js'
import { isSchema1MediaType, type CheckResult, type Platform } from '../registry/index.js'
import { assess, type AssessOptions, type Assessment } from './assess.js'
import type { JudgedPool, NodePools, NodeSide } from './node-pools.js'
import type { ImageOutcome } from './outcome.js'
import { formatPlatform } from './platforms.js'
import type { PodSubject } from './subject.js'

/** The judge's options with pools: the node side of AssessOptions comes from each pool. */
export interface PooledOptions extends AssessOptions {
  /** The node pools; undefined: judge with AssessOptions' own node side, as one pool of unknown runtime. */
  pools?: NodePools
  /** Without pools: the nodes' kubelet settings (default: the kubelet's). */
  kubelet?: KubeletPullSettings
}

/** One pool's outcomes. */
export interface PoolOutcomes {
  pool: string
  /** The runtimes its nodes run (or its file names), as messages name them. */
  runtimes: string[]
  outcomes: ImageOutcome[]
}

export type PooledAssessment = Assessment & {
  /** With pools: how the pools were chosen, and each pool's outcomes (`outcomes` above is the first's). */
  pools?: { how: Placement['how']; judged: PoolOutcomes[] }
}

export async function assessAcrossPools(
  options: PooledOptions,
  subject: PodSubject,
  signal: AbortSignal,
): Promise<PooledAssessment> {
  const nodePools = options.pools
  if (nodePools === undefined) {
    const found = await assess(options, subject, signal)
    if (found.mode === 'exempt' || found.mode === 'off') return found
    return { ...found, outcomes: withoutPools(found.outcomes, options.kubelet) }
  }
  // Nothing about the nodes is read for a namespace that is not judged.
  if (options.exemptNamespaces?.has(subject.namespace) === true) return { mode: 'exempt' }
  const ns = await options.modes.modeFor(subject.namespace, signal)
  if (ns.mode === 'off') return { mode: 'off', modeNote: ns.note }
  const placement = await nodePools.place(subject.scheduling, signal)
  const runs = new Map<string, Promise<Assessment>>()
  const views = poolViews(placement, subject)
  const found = await Promise.all(
    views.map(async (view) => {
      let run = runs.get(view.key)
      if (run === undefined) {
        run = assess(viewOptions(options, view), subject, signal)
        runs.set(view.key, run)
      }
      return { view, assessment: await run }
    }),
  )
  const first = found[0]!.assessment
  if (first.mode === 'exempt' || first.mode === 'off') return first
  const boundImages =
    placement.how === 'bound' && subject.images.some((u) => u.neverPulled === true)
      ? await nodePools.nodeImages(subject.scheduling.nodeName!, signal)
      : undefined
  const bound = boundImages === undefined ? undefined : { node: subject.scheduling.nodeName!, images: boundImages }
  const judged = found.map(({ view, assessment }): PoolOutcomes => {
    if (assessment.mode === 'exempt' || assessment.mode === 'off') throw new Error('pools: one mode per namespace')
    return onView(view, assessment.outcomes, bound)
  })
  return { ...first, outcomes: judged[0]!.outcomes, pools: { how: placement.how, judged } }
}

/** One pool as a subject is judged on it: the platforms and runtimes that count, and its answers' key. */
export interface PoolView {
  pool: JudgedPool
  platforms: readonly Platform[]
  runtimes: readonly RuntimeVersion[]
  /** Equal for pools whose assessments are the same (same node side, same platforms): asked once. */
  key: string
}

/** The pools of a placement, as the subject is judged on each. */
export function poolViews(placement: Placement<JudgedPool>, subject: PodSubject): PoolView[] {
  return placement.pools.map(({ shape, nodes: all }) => {
    // A bound pod is on one node: its platform and runtime are the only ones that matter.
    const bound = placement.how === 'bound' ? all.filter((n) => n.name === subject.scheduling.nodeName) : []
    const nodes = bound.length > 0 ? bound : all
    const platforms =
      shape.platforms.length > 0 && bound.length === 0
        ? shape.platforms
        : distinctPlatforms(nodes.map((n) => n.platform).filter((p) => p.os !== '' && p.architecture !== ''))
    // What a node reports is what it runs; the pool file speaks for a pool whose nodes have not
    // said (scaled to zero, or not read): a stale file must not outvote the nodes during an upgrade.
    const reported = nodes.filter((n) => n.runtime !== '')
    const runtimes = reported.length > 0 ? poolRuntimes(undefined, reported) : poolRuntimes(shape.runtime, [])
    const key = `${sideId(shape.node)}\u0000${platforms.map(formatPlatform).sort().join(',')}`
    return { pool: shape, platforms, runtimes, key }
  })
}

/** A view's assessed outcomes held against its pool (runtime, kubelet, a bound node's images). */
export function onView(
  view: PoolView,
  outcomes: readonly ImageOutcome[],
  bound?: { node: string; images: readonly string[] },
): PoolOutcomes {
  const { pool, runtimes } = view
  return {
    pool: pool.name,
    runtimes: runtimes.map(formatRuntime),
    outcomes: outcomes.map((o) =>
      onPool(o, pool.name === DEFAULT_POOL ? undefined : pool.name, pool.kubelet, runtimes, bound),
    ),
  }
}

/** Outcomes judged without pools: the kubelet's settings still decide what a Never image gets. */
export function withoutPools(
  outcomes: readonly ImageOutcome[],
  kubelet: KubeletPullSettings | undefined,
): ImageOutcome[] {
  const settings = kubelet ?? { verificationPolicy: DEFAULT_VERIFICATION_POLICY, allowlist: [] }
  return outcomes.map((o) => onPool(o, undefined, settings, [], undefined))
}

/** The view's node side in place of the options' own, and its platforms. */
export function viewOptions(options: PooledOptions, view: PoolView): AssessOptions {
  const { pool, platforms } = view
  const {
    pools: _pools,
    kubelet: _kubelet,
    nodeCredentials,
    credentialProviders,
    pullRules,
    signaturePolicies,
    ...shared
  } = options
  const node: NodeSide = pool.node
  return {
    ...shared,
    checker: node.checker,
    ...(node.nodeCredentials === undefined ? {} : { nodeCredentials: node.nodeCredentials }),
    ...(node.credentialProviders === undefined ? {} : { credentialProviders: node.credentialProviders }),
    ...(node.pullRules === undefined ? {} : { pullRules: node.pullRules }),
    ...(node.signaturePolicies === undefined ? {} : { signaturePolicies: node.signaturePolicies }),
    clusterPlatforms: { platforms: async () => platforms },
  }
}

/** A small number per node side (by identity): pools with equal files were given the same object. */
const sideIds = new WeakMap<NodeSide, number>()
let nextSide = 0
function sideId(side: NodeSide): number {
  let id = sideIds.get(side)
  if (id === undefined) sideIds.set(side, (id = ++nextSide))
  return id
}

/** The pool file's runtime, else the distinct runtimes its nodes report. */
function poolRuntimes(declared: string | undefined, nodes: readonly { runtime: string }[]): RuntimeVersion[] {
  const raw = declared !== undefined ? [declared] : [...new Set(nodes.map((n) => n.runtime))]
  return raw.flatMap((r) => {
    const parsed = parseRuntime(r)
    return parsed === undefined ? [] : [parsed]
  })
}

/** One image's outcome on one pool: its runtime's and its kubelet's say. */
function onPool(
  o: ImageOutcome,
  pool: string | undefined,
  kubelet: KubeletPullSettings,
  runtimes: readonly RuntimeVersion[],
  bound: { node: string; images: readonly string[] } | undefined,
): ImageOutcome {
  if (o.kind !== 'checked') return o
  const out: ImageOutcome = pool === undefined ? { ...o } : { ...o, pool }
  if (o.use.neverPulled === true) {
    const own = ownAnswer(o.result.code)
    out.neverPull = {
      ...judgeNeverPulled(kubelet.verificationPolicy, kubelet.allowlist, o.use.image, own),
      policy: kubelet.verificationPolicy,
    }
    if (bound !== undefined && !holds(bound.images, o)) out.notOnNode = bound.node
    return out
  }
  if (o.result.code === 'Exists' && isSchema1MediaType(o.result.mediaType)) {
    const support = runtimes.map(schema1Support)
    const refusing = runtimes.filter((_, i) => support[i] !== 'pulled').map(formatRuntime)
    if (refusing.length > 0)
      out.schema1 = {
        verdict: support.every((s) => s === 'refused') ? 'refused' : 'uncertain',
        runtimes: refusing,
      }
  }
  return out
}

/** What the registry said to the pod's own credentials, as the kubelet's verification sees it. */
function ownAnswer(code: CheckResult['code']): OwnCredentialsAnswer {
  switch (code) {
    case 'Exists':
      return 'reads'
    case 'AccessDenied':
    case 'RepositoryNotFoundOrDenied':
      return 'denied'
    case 'TagNotFound':
    case 'DigestNotFound':
    case 'RepositoryNotFound':
      return 'missing'
    default:
      return 'other'
  }
}

/** Whether a node's status.images names this image (by the pod's string, its canonical name, or its digest). */
function holds(images: readonly string[], o: Extract<ImageOutcome, { kind: 'checked' }>): boolean {
  const names = new Set(images)
  if (names.has(o.use.image) || names.has(o.ref.canonical)) return true
  const digest = o.result.code === 'Exists' ? o.result.digest : o.ref.digest
  return digest !== undefined && images.some((i) => i.endsWith(`@${digest}`) && i.startsWith(`${o.ref.name}@`))
}

function distinctPlatforms(list: readonly Platform[]): Platform[] {
  const out = new Map<string, Platform>()
  for (const p of list) out.set(formatPlatform(p), p)
  return [...out.values()]
}
