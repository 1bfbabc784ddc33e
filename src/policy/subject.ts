import type { PodScheduling } from '../pools/scheduling.js'

/**
 * What the policy decides on, and what it gets back. The review around it (uid, operation, dry
 * run) is the admission layer's: it reaches the decision log only as the caller's request fields.
 */

export interface ImageUse {
  /** Container name, or image volume name. */
  container: string
  /** `volume` for an image volume (`spec.volumes[].image`), which the kubelet pulls like a container image. */
  kind: 'container' | 'volume'
  /** Where it sits in the object, e.g. `spec.template.spec.initContainers[0]`. */
  field: string
  image: string
  /** On UPDATE: the image this container or volume had before, when it changed. */
  previous?: string
  /**
   * `imagePullPolicy: Never` (a volume's `pullPolicy`): the kubelet never pulls it, and gives a copy
   * on the node only to a pod whose own credentials can pull it, unless it was preloaded.
   */
  neverPulled?: true
}

/** What decides which nodes a pod can land on: nodeSelector, required node affinity, tolerations, spec.nodeName. */
export type SchedulingConstraints = PodScheduling

export interface PodSubject {
  namespace: string
  /** `Pod`, or a workload kind (`Deployment`, `CronJob`, …). */
  kind: string
  name: string
  /** Where the pod spec sits in the object: `spec`, `spec.template.spec`, … */
  specField: string
  /** True for a pod template: its pods do not exist yet, so the service account's pull secrets still apply. */
  template: boolean
  /** The images to judge (on UPDATE, only the new ones; never `imagePullPolicy: Never`). */
  images: ImageUse[]
  /** imagePullSecrets names, in pod order. */
  pullSecrets: string[]
  /** spec.serviceAccountName (or the deprecated serviceAccount), undefined when unset. */
  serviceAccountName: string | undefined
  scheduling: SchedulingConstraints
  /**
   * A pod pinned by the mutating webhook: each pinned image's field path (`spec.containers[0].image`)
   * → the reference it was pinned from (its `pullguard.io/pinned-from` annotation).
   */
  pinnedFrom?: Readonly<Record<string, string>>
}

export interface Verdict {
  allowed: boolean
  /** Set when denied: the whole explanation, one line per image. */
  message: string | undefined
  warnings: string[]
}

/**
 * Who asked, as the admission layer names the request: written first on the decision log line,
 * never read by the decision. Named fields rather than any record: the line is one object literal
 * per review, and spreading a record into it cost a fifth of a warm review's CPU (npm run bench).
 */
export interface RequestFields {
  uid: string
  operation: string
  dryRun: boolean
}

export type Judge = (subject: PodSubject, request?: RequestFields) => Promise<Verdict>
