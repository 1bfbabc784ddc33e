/**
 * Where the scheduler may put a pod, held against one node's labels and taints: the pod's
 * nodeSelector, its required node affinity and its tolerations, with the scheduler's semantics
 * (k8s.io/component-helpers scheduling/corev1: nodeaffinity.go, helpers.go ToleratesTaint).
 *
 * A pool with no node at the moment (scaled to zero) is known only by the labels and taints its
 * file gives: a label it does not give might be on its nodes, so a requirement on it is taken as
 * met. When in doubt a pool is kept: a pool kept wrongly costs at most a warning, a pool dropped
 * wrongly could deny a pod that would pull where it lands.
 */
import type { Taint } from './pool.js'

export interface NodeSelectorRequirement {
  key: string
  operator: string
  values?: string[]
}

/** requiredDuringSchedulingIgnoredDuringExecution: terms ORed, requirements within one ANDed. */
export interface NodeSelectorTerm {
  matchExpressions: NodeSelectorRequirement[]
  /** Only `metadata.name` exists (DaemonSet pods are pinned to their node with it). */
  matchFields?: NodeSelectorRequirement[]
}

export interface Toleration {
  key?: string
  /** `Exists` or `Equal` (the default when empty). */
  operator?: string
  value?: string
  /** Empty: every effect. */
  effect?: string
}

/** What decides which nodes a pod can land on. */
export interface PodScheduling {
  nodeSelector: Record<string, string>
  nodeSelectorTerms: NodeSelectorTerm[]
  tolerations?: Toleration[]
  /** spec.nodeName: the pod is bound already, the scheduler is not asked. */
  nodeName?: string
}

/** What is known of a node, or of a pool without nodes (`partial`: labels it does not name may be there). */
export interface NodeFacts {
  name?: string
  labels: Readonly<Record<string, string>>
  taints: readonly Taint[]
  partial: boolean
}

/** Could the scheduler place the pod on this node (as far as labels and taints go)? */
export function schedulable(pod: PodScheduling, node: NodeFacts): boolean {
  return selectorMatches(pod, node) && tolerated(pod.tolerations ?? [], node.taints)
}

/** The nodeSelector and the required node affinity, both of which must hold (nodeaffinity.go GetRequiredNodeAffinity). */
export function selectorMatches(pod: PodScheduling, node: NodeFacts): boolean {
  for (const [key, value] of Object.entries(pod.nodeSelector)) {
    const have = node.labels[key]
    if (have === undefined ? !node.partial : have !== value) return false
  }
  if (pod.nodeSelectorTerms.length === 0) return true
  // A term with no requirement matches nothing (NodeSelectorTerm semantics).
  return pod.nodeSelectorTerms.some(
    (t) =>
      t.matchExpressions.length + (t.matchFields?.length ?? 0) > 0 &&
      t.matchExpressions.every((r) => requirementMatches(r, node.labels[r.key], node.partial)) &&
      (t.matchFields ?? []).every((r) => fieldMatches(r, node)),
  )
}

/**
 * One label requirement (labels.Selector semantics). `have` undefined on a partial node: the label
 * may be there with any value, so only a requirement that no value could meet fails.
 */
export function requirementMatches(r: NodeSelectorRequirement, have: string | undefined, partial: boolean): boolean {
  const values = r.values ?? []
  if (have === undefined && partial) return r.operator !== 'In' || values.length > 0
  switch (r.operator) {
    case 'In':
      return have !== undefined && values.includes(have)
    case 'NotIn':
      return have === undefined || !values.includes(have)
    case 'Exists':
      return have !== undefined
    case 'DoesNotExist':
      return have === undefined
    case 'Gt':
    case 'Lt': {
      // One integer value; a label that is not an integer does not match (selector.go).
      if (have === undefined || values.length !== 1) return false
      const a = Number.parseInt(have, 10)
      const b = Number.parseInt(values[0]!, 10)
      if (!/^-?\d+$/.test(have) || !/^-?\d+$/.test(values[0]!)) return false
      return r.operator === 'Gt' ? a > b : a < b
    }
    default:
      // The API server validates operators; an unknown one is not ours to hold against a node.
      return true
  }
}

/** matchFields: `metadata.name` In / NotIn, the only field the API allows. */
function fieldMatches(r: NodeSelectorRequirement, node: NodeFacts): boolean {
  if (r.key !== 'metadata.name') return true
  // A pool known only by its file holds no node of that name.
  if (node.name === undefined) return r.operator === 'NotIn'
  const listed = (r.values ?? []).includes(node.name)
  return r.operator === 'In' ? listed : r.operator === 'NotIn' ? !listed : true
}

/** Every NoSchedule and NoExecute taint is tolerated (PreferNoSchedule only steers). */
export function tolerated(tolerations: readonly Toleration[], taints: readonly Taint[]): boolean {
  return taints.every((taint) => taint.effect === 'PreferNoSchedule' || tolerations.some((t) => tolerates(t, taint)))
}

/** corev1 helpers ToleratesTaint. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false
  const operator = t.operator === undefined || t.operator === '' ? 'Equal' : t.operator
  // An empty key with Exists tolerates everything; an empty key with Equal is refused by the API.
  if (operator === 'Exists') return true
  if (t.key === undefined || t.key === '') return false
  return operator === 'Equal' && (t.value ?? '') === (taint.value ?? '')
}
