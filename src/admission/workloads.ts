/**
 * Which objects carry a pod spec, and where. A Deployment's bad image is best refused at
 * `kubectl apply` of the Deployment, not minutes later when its ReplicaSet fails to make pods.
 */
import type { PodSubject } from '../policy/subject.js'
import type { PodSpecView } from './pod-spec.js'
export interface PodSpecLocation {
  /** Keys from the object root to the pod template's `spec` (for a Pod: the spec itself). */
  path: readonly string[]
  /** A template: its pods do not exist yet (service-account pull secrets still to be added). */
  template: boolean
}

const TEMPLATE = ['spec', 'template', 'spec']

/** Keyed by `group/Kind` (core group is empty). */
const LOCATIONS: ReadonlyMap<string, PodSpecLocation> = new Map([
  ['/Pod', { path: ['spec'], template: false }],
  ['/PodTemplate', { path: ['template', 'spec'], template: true }],
  ['/ReplicationController', { path: TEMPLATE, template: true }],
  ['apps/Deployment', { path: TEMPLATE, template: true }],
  ['apps/ReplicaSet', { path: TEMPLATE, template: true }],
  ['apps/StatefulSet', { path: TEMPLATE, template: true }],
  ['apps/DaemonSet', { path: TEMPLATE, template: true }],
  ['batch/Job', { path: TEMPLATE, template: true }],
  ['batch/CronJob', { path: ['spec', 'jobTemplate', 'spec', 'template', 'spec'], template: true }],
])

export function podSpecLocation(group: string, kind: string): PodSpecLocation | undefined {
  return LOCATIONS.get(`${group}/${kind}`)
}

/** What the webhook would judge for a CREATE of an object (`check`, the audit). */
export function createSubject(
  id: { namespace: string; kind: string; name: string },
  location: PodSpecLocation,
  spec: PodSpecView,
): PodSubject {
  // Written out, not spread: fields added after a spread give every object a hidden class of its
  // own (measured: 20 000 audited workloads, 10 MB of them).
  return {
    namespace: id.namespace,
    kind: id.kind,
    name: id.name,
    specField: specField(location),
    template: location.template,
    images: spec.images,
    pullSecrets: spec.imagePullSecrets,
    serviceAccountName: spec.serviceAccountName,
    scheduling: spec.scheduling,
  }
}

const specFields = new WeakMap<PodSpecLocation, string>()
/** `spec.template.spec`: one string per location (the table's), not one per subject. */
function specField(location: PodSpecLocation): string {
  let field = specFields.get(location)
  if (field === undefined) specFields.set(location, (field = location.path.join('.')))
  return field
}

/** Follows `path` into `object`; undefined where a step is missing. */
export function dig(object: Record<string, unknown>, path: readonly string[]): unknown {
  let cur: unknown = object
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}
