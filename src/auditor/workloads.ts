/**
 * What the audit looks at: every object that makes pods, read as the webhook reads a CREATE of it
 * (the same pod-spec reader, the same subject), and the pods that nothing else makes. An object a
 * controller of these kinds owns (a Deployment's ReplicaSets, their pods) is left to its owner, so
 * each image is judged once, where its fix goes; except a pod pinned to digests, which pulls what
 * its owner's template no longer says.
 */
import { readPodSpec, type PodSpecView } from '../admission/pod-spec.js'
import { ReviewDecodeError } from '../admission/review.js'
import { createSubject, dig, podSpecLocation } from '../admission/workloads.js'
import { readPinnedFrom } from '../admission/pin-patch.js'
import { tryParseReference } from '../reference/index.js'
import type { PodSubject } from '../policy/subject.js'

export const WORKLOAD_KINDS = [
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'ReplicationController',
  'CronJob',
  'Job',
  'Pod',
] as const
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number]

export const GROUP: Readonly<Record<WorkloadKind, string>> = {
  Deployment: 'apps',
  StatefulSet: 'apps',
  DaemonSet: 'apps',
  ReplicaSet: 'apps',
  ReplicationController: '',
  CronJob: 'batch',
  Job: 'batch',
  Pod: '',
}

/** Owners whose own template is audited: what they own is not audited again. */
const AUDITED_OWNERS: ReadonlySet<string> = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'ReplicationController',
  'Job',
  'CronJob',
])

export interface AuditWorkload {
  kind: WorkloadKind
  namespace: string
  name: string
  uid: string
  /** Replicas set to 0, or a suspended CronJob or Job: nothing runs, but it would not come back either. */
  scaledToZero: boolean
  /** Exactly what the webhook would judge for a CREATE of it. */
  subject: PodSubject
  /**
   * A pinned pod: the same pod with each pinned image at the tag it was pinned from, asked in the
   * same pass to tell whether the tag still names the pinned manifest (information, not a finding).
   */
  pinnedTags?: PodSubject
}

type Raw = {
  metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; ownerReferences?: unknown; annotations?: unknown }
  spec?: { replicas?: unknown; suspend?: unknown }
  status?: { phase?: unknown; completionTime?: unknown; conditions?: unknown }
}

/** The workload an API object is, or undefined when the audit leaves it (owned, finished, malformed). */
export function auditWorkload(kind: WorkloadKind, object: unknown): AuditWorkload | undefined {
  if (typeof object !== 'object' || object === null) return undefined
  const raw = object as Raw & Record<string, unknown>
  const m = raw.metadata
  if (typeof m?.name !== 'string' || typeof m.namespace !== 'string' || typeof m.uid !== 'string') return undefined
  // A pod pinned to digests (the mutating webhook) pulls those, not its owner's tags: it is audited
  // at them too, as what the node pulls when it restarts or moves.
  const pinnedFrom =
    kind === 'Pod' && typeof m.annotations === 'object' && m.annotations !== null
      ? readPinnedFrom(m.annotations as Record<string, unknown>)
      : {}
  const pinned = Object.keys(pinnedFrom).length > 0
  const owned = (kind === 'ReplicaSet' || kind === 'Pod' || kind === 'Job') && ownedByAudited(m.ownerReferences, kind)
  if (owned && !pinned) return undefined
  if (kind === 'Job' && finished(raw.status)) return undefined
  // A pod that ended pulls nothing again; a running one the kubelet may restart or re-pull.
  if (kind === 'Pod' && (raw.status?.phase === 'Succeeded' || raw.status?.phase === 'Failed')) return undefined
  const location = podSpecLocation(GROUP[kind], kind)
  if (location === undefined) return undefined
  const prefix = location.path.join('.')
  let spec: PodSpecView
  try {
    spec = readPodSpec(dig(raw, location.path), prefix)
  } catch (err) {
    if (err instanceof ReviewDecodeError) return undefined
    throw err
  }
  const replicas = raw.spec?.replicas
  const whole = createSubject({ namespace: m.namespace, kind, name: m.name }, location, spec)
  // Each pinned image with the tag it came from: only where the annotation's entry is this image's
  // own (a webhook that inserted a container after pinning shifts the indices it names).
  const pins = whole.images.flatMap((use) => {
    const tag = pinnedFrom[`${use.field}.${use.kind === 'volume' ? 'reference' : 'image'}`]
    return tag !== undefined && sameRepository(tag, use.image) ? [{ use, tag }] : []
  })
  // A controller's pod: only what was pinned is its own to audit; the rest is its owner's template's.
  const subject = owned ? { ...whole, images: pins.map((p) => p.use) } : whole
  const tagged = pins.map((p) => ({ ...p.use, image: p.tag }))
  return {
    kind,
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    scaledToZero: replicas === 0 || ((kind === 'CronJob' || kind === 'Job') && raw.spec?.suspend === true),
    // join: one flat string (kept for the workload's life; a template literal keeps its pieces).
    subject: pinned ? { ...subject, pinnedFrom } : subject,
    ...(tagged.length === 0 ? {} : { pinnedTags: { ...subject, images: tagged } }),
  }
}

/**
 * A ReplicaSet of a Deployment, a Pod of any audited controller, a Job of a CronJob: their owner's
 * template is audited. A Job of a CronJob that is still running keeps its own (it may make pods
 * again), so only Deployments own ReplicaSets away and only finished Jobs are dropped.
 */
function ownedByAudited(refs: unknown, kind: WorkloadKind): boolean {
  if (!Array.isArray(refs)) return false
  return refs.some((r) => {
    if (typeof r !== 'object' || r === null) return false
    const ref = r as { kind?: unknown; controller?: unknown }
    if (ref.controller !== true || typeof ref.kind !== 'string') return false
    if (kind === 'ReplicaSet') return ref.kind === 'Deployment'
    if (kind === 'Job') return false
    return AUDITED_OWNERS.has(ref.kind)
  })
}

/** A tag and a digest of one repository (`reg/app:1` and `reg/app@sha256:…`). */
function sameRepository(tag: string, pinned: string): boolean {
  const a = tryParseReference(tag)
  const b = tryParseReference(pinned)
  return a.ok && b.ok && b.ref.digest !== undefined && a.ref.digest === undefined && a.ref.name === b.ref.name
}

/** A Job that completed or failed makes no more pods. */
function finished(status: Raw['status']): boolean {
  if (status?.completionTime !== undefined && status.completionTime !== null) return true
  const conditions = Array.isArray(status?.conditions) ? status.conditions : []
  return conditions.some((c: unknown) => {
    const cond = c as { type?: unknown; status?: unknown }
    return (cond.type === 'Complete' || cond.type === 'Failed') && cond.status === 'True'
  })
}

/** kubectl's resource name for a kind: `deployment`, `cronjob`, … */
export function resourceOf(kind: WorkloadKind): string {
  return kind.toLowerCase()
}

/** Where a fix patches the live object's pod spec; undefined where it cannot be (a Job's template, a bare pod). */
export function patchPath(kind: WorkloadKind): string[] | undefined {
  if (kind === 'Job' || kind === 'Pod') return undefined
  return podSpecLocation(GROUP[kind], kind)?.path.slice()
}
