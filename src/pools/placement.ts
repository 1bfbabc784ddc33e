/**
 * Which pool each node belongs to, and which pools a pod can land on. A node belongs to the first
 * pool (in the file's order) whose labels it all carries, the way node pools are told apart by a
 * label their nodes get at creation (cloud.google.com/gke-nodepool, eks.amazonaws.com/nodegroup,
 * karpenter.sh/nodepool, …); a pool with no labels takes every node left.
 */
import type { Platform } from '../registry/index.js'
import type { NodeSummary, PoolShape, Taint } from './pool.js'
import { schedulable, type NodeFacts, type PodScheduling } from './scheduling.js'

export interface PoolNodes<S extends PoolShape = PoolShape> {
  shape: S
  /** Its nodes now; empty for a pool scaled to zero, which still counts. */
  nodes: readonly NodeSummary[]
}

/** `unpooled`: nodes no pool takes (pods landing there are not judged for them: say so). */
export function assignNodes<S extends PoolShape>(
  shapes: readonly S[],
  nodes: readonly NodeSummary[],
): { pools: PoolNodes<S>[]; unpooled: NodeSummary[] } {
  const byPool = shapes.map((): NodeSummary[] => [])
  const unpooled: NodeSummary[] = []
  for (const node of nodes) {
    const i = shapes.findIndex((s) => carries(node.labels, s.nodeLabels))
    if (i < 0) unpooled.push(node)
    else byPool[i]!.push(node)
  }
  return { pools: shapes.map((shape, i) => ({ shape, nodes: byPool[i]! })), unpooled }
}

export interface Placement<S extends PoolShape = PoolShape> {
  pools: PoolNodes<S>[]
  /**
   * `bound`: spec.nodeName names a node of that pool; `scheduled`: the pools its scheduling
   * allows; `anywhere`: none allows it (the scheduler will say so): judged on every pool.
   */
  how: 'bound' | 'scheduled' | 'anywhere'
}

/** The pools the pod can land on. */
export function placePod<S extends PoolShape>(pod: PodScheduling, pools: readonly PoolNodes<S>[]): Placement<S> {
  if (pod.nodeName !== undefined && pod.nodeName !== '') {
    const holder = pools.find((p) => p.nodes.some((n) => n.name === pod.nodeName))
    if (holder !== undefined) return { pools: [holder], how: 'bound' }
    // Bound to a node not read yet (joined since, or no list): the scheduler is not asked, so
    // nothing said here keeps it off any pool.
    return { pools: [...pools], how: 'anywhere' }
  }
  // A pool counts by its nodes now, and by its file too: an autoscaler adds nodes with other label
  // values, and taints come and go (cluster-autoscaler's, Karpenter's disruption) on nodes of a pool.
  const reachable = pools.filter(
    (p, i) =>
      p.nodes.some((n) => schedulable(pod, nodeFacts(n))) ||
      (schedulable(
        pod,
        shapeFacts(
          p.shape,
          p.nodes.map((n) => n.platform),
        ),
      ) &&
        !earlierPoolTakes(pod, pools.slice(0, i))),
  )

  return reachable.length > 0 ? { pools: reachable, how: 'scheduled' } : { pools: [...pools], how: 'anywhere' }
}

/**
 * Whether every node the pod's selector asks for carries all the labels of an earlier pool, and so
 * belongs to that pool, never to a later one (`pool: gpu` asked of a pool without labels that
 * takes the nodes left). Only what the pod requires for sure counts: its nodeSelector, and in each
 * required term the `In` expressions with one value.
 */
function earlierPoolTakes(pod: PodScheduling, earlier: readonly PoolNodes<PoolShape>[]): boolean {
  const takes = (required: Readonly<Record<string, string>>): boolean =>
    earlier.some(
      (q) =>
        Object.keys(q.shape.nodeLabels).length > 0 &&
        Object.entries(q.shape.nodeLabels).every(([k, v]) => required[k] === v),
    )
  if (takes(pod.nodeSelector)) return true
  if (pod.nodeSelectorTerms.length === 0) return false
  return pod.nodeSelectorTerms.every((term) => {
    const required: Record<string, string> = { ...pod.nodeSelector }
    for (const e of term.matchExpressions)
      if (e.operator === 'In' && e.values?.length === 1) required[e.key] = e.values[0]!
    return takes(required)
  })
}

/**
 * A node as the scheduler sees it, without the taints the node lifecycle controller sets and lifts
 * (not-ready, unreachable, unschedulable, pressure): a cordoned node's pool still counts.
 */
export function nodeFacts(n: NodeSummary): NodeFacts {
  return { name: n.name, labels: n.labels, taints: n.taints.filter((t) => !transient(t)), partial: false }
}

/**
 * A pool as its file describes any node of it: its labels, its taints, and the platform labels its
 * platforms fix (else its nodes' now: a pool's nodes share one architecture, whatever else varies).
 */
export function shapeFacts(shape: PoolShape, nodePlatforms: readonly Platform[] = []): NodeFacts {
  const platforms = shape.platforms.length > 0 ? shape.platforms : nodePlatforms.filter((p) => p.os !== '')
  const labels: Record<string, string> = { ...platformLabels(platforms), ...shape.nodeLabels }
  return { labels, taints: shape.taints, partial: true }
}

function transient(t: Taint): boolean {
  return t.key.startsWith('node.kubernetes.io/') || t.key.startsWith('node.cloudprovider.kubernetes.io/')
}

/** kubernetes.io/os and /arch when the pool has one value for each (the kubelet sets both on every node). */
function platformLabels(platforms: readonly Platform[]): Record<string, string> {
  const out: Record<string, string> = {}
  const os = new Set(platforms.map((p) => p.os))
  const arch = new Set(platforms.map((p) => p.architecture))
  if (os.size === 1) out['kubernetes.io/os'] = [...os][0]!
  if (arch.size === 1) out['kubernetes.io/arch'] = [...arch][0]!
  return out
}

function carries(labels: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(wanted)) if (labels[k] !== v) return false
  return true
}
