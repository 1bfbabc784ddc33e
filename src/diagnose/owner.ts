/**
 * Which object a fix has to change. A pod made by a controller is re-made from its template, so an
 * image or pull-secret change belongs there; only a bare pod is changed (or re-created) itself.
 * Resolved from the pod alone, without reading the owner.
 */
import type { PodObject } from '../kube/sources.js'

export interface Workload {
  /** kubectl's resource name: `deployment`, `statefulset`, `pod`, … */
  resource: string
  name: string
  /** The path to the pod spec in a strategic merge patch of it (undefined: its template cannot be patched). */
  specPath: string[] | undefined
  /** A bare pod: deleting it loses it. */
  bare: boolean
}

const TEMPLATE = ['spec', 'template', 'spec']

/**
 * The deployment controller names a ReplicaSet `<deployment>-<pod-template-hash>` and labels its
 * pods with that hash (pkg/controller/deployment/sync.go), so the Deployment is known without a read.
 */
export function workloadOf(pod: Pick<PodObject, 'name' | 'labels' | 'controller'>): Workload {
  const c = pod.controller
  if (c === undefined) return { resource: 'pod', name: pod.name, specPath: undefined, bare: true }
  const hash = pod.labels['pod-template-hash']
  switch (c.kind) {
    case 'ReplicaSet':
      if (hash !== undefined && hash !== '' && c.name.endsWith(`-${hash}`)) {
        return { resource: 'deployment', name: c.name.slice(0, -hash.length - 1), specPath: TEMPLATE, bare: false }
      }
      return { resource: 'replicaset', name: c.name, specPath: TEMPLATE, bare: false }
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicationController':
      return { resource: c.kind.toLowerCase(), name: c.name, specPath: TEMPLATE, bare: false }
    // A Job's pod template is immutable; the fix goes to whatever creates the Job (a CronJob, a pipeline).
    default:
      return { resource: c.kind.toLowerCase(), name: c.name, specPath: undefined, bare: false }
  }
}
