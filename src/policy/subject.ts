/** What the admission layer hands the policy, and what it gets back. */
import type { Operation } from './operation.js'

export interface ImageUse {
  /** Container name. */
  container: string
  /** Where it sits in the object, e.g. `spec.initContainers[0]`. */
  field: string
  image: string
}

export interface ReviewSubject {
  uid: string
  namespace: string
  /** `Pod`, or a workload kind. */
  kind: string
  name: string
  operation: Operation
  dryRun: boolean
  /** The images to judge (on UPDATE, only the new ones). */
  images: ImageUse[]
  /** imagePullSecrets names, in pod order. */
  pullSecrets: string[]
}

export interface Verdict {
  allowed: boolean
  /** Set when denied: the whole explanation, one line per image. */
  message: string | undefined
  warnings: string[]
}

export type Judge = (subject: ReviewSubject) => Promise<Verdict>
