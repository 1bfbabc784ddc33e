/**
 * Bytes-level contract of POST /validate, without HTTP: a parsed body in, a status and a body
 * out. Decodes the review, picks the images this request makes the kubelet pull, hands them to
 * the policy's Judge, and encodes its verdict. Knows nothing of registries.
 */
import type { ImageUse, Judge, PodSubject } from '../policy/subject.js'
import type { Pinner } from '../policy/pinner.js'
import { pinPatch, readPinnedFrom } from './pin-patch.js'
export type { Judge, Pinner }
import { readPodSpec, newImages } from './pod-spec.js'
import { dig, podSpecLocation } from './workloads.js'
import {
  allowed,
  denied,
  malformedReview,
  patched,
  type AdmissionReviewOut,
  type MalformedReviewOut,
} from './response.js'
import { ReviewDecodeError, decodeReview, type AdmissionRequest } from './review.js'

export type HandlerResult =
  | { status: 200; body: AdmissionReviewOut }
  /** `uid`: the request's, when the body held a usable one, for the log line about it. */
  | { status: 400; body: MalformedReviewOut; uid: string | undefined }

/** A body refused before it could be read as a review at all (its JSON, the server's parser says why). */
export function unreadableReview(reason: string): HandlerResult {
  return { status: 400, body: malformedReview(reason), uid: undefined }
}

export async function handleReview(body: unknown, judge: Judge): Promise<HandlerResult> {
  let req: AdmissionRequest | undefined
  let subject: PodSubject | undefined
  try {
    req = decodeReview(body)
    subject = podSubject(req)
  } catch (err) {
    // Refused while decoding, the error names the uid; refused for its pod spec, the decoded request does.
    if (err instanceof ReviewDecodeError)
      return { status: 400, body: malformedReview(err.reason), uid: err.uid ?? req?.uid }
    throw err
  }
  if (subject === undefined || subject.images.length === 0) return { status: 200, body: allowed(req.uid) }
  const verdict = await judge(subject, { uid: req.uid, operation: req.operation, dryRun: req.dryRun })
  return {
    status: 200,
    body: verdict.allowed
      ? allowed(req.uid, verdict.warnings)
      : denied(req.uid, verdict.message ?? 'pullguard denied the request', verdict.warnings),
  }
}

/**
 * POST /mutate (opt-in): a Pod's CREATE, or the ephemeral containers `kubectl debug` adds, with each
 * image the pinner verified rewritten to its digest. Templates (Deployments and the like) are
 * never changed: GitOps tools would see drift; the pods they make are pinned as they are created.
 */
export async function handleMutation(body: unknown, pinner: Pinner): Promise<HandlerResult> {
  let req: AdmissionRequest | undefined
  let subject: PodSubject | undefined
  try {
    req = decodeReview(body)
    subject = req.kind.group === '' && req.kind.kind === 'Pod' ? podSubject(req) : undefined
  } catch (err) {
    if (err instanceof ReviewDecodeError)
      return { status: 400, body: malformedReview(err.reason), uid: err.uid ?? req?.uid }
    throw err
  }
  if (subject === undefined || subject.images.length === 0 || req.object === null)
    return { status: 200, body: allowed(req.uid) }
  const pins = await pinner(subject, { uid: req.uid, operation: req.operation, dryRun: req.dryRun })
  return { status: 200, body: patched(req.uid, pinPatch(req.object, pins, req.subResource === undefined)) }
}

/** The pod (or pod template) this request makes the kubelet pull, or undefined when there is none. */
function podSubject(req: AdmissionRequest): PodSubject | undefined {
  const location = podSpecLocation(req.kind.group, req.kind.kind)
  if (location === undefined) return undefined
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return undefined
  // kubectl debug adds containers through this subresource; status, scale, binding and the like pull nothing.
  if (req.subResource !== undefined && !(req.kind.kind === 'Pod' && req.subResource === 'ephemeralcontainers'))
    return undefined
  if (req.object === null)
    throw new ReviewDecodeError(`request.object is required for ${req.operation} of a ${req.kind.kind}`)
  const prefix = location.path.join('.')
  const spec = readPodSpec(dig(req.object, location.path), prefix)
  let images = spec.images
  if (req.operation === 'UPDATE') {
    if (req.oldObject === null)
      throw new ReviewDecodeError(`request.oldObject is required for UPDATE of a ${req.kind.kind}`)
    const oldSpec = dig(req.oldObject, location.path)
    // A template whose pull secrets, service account or scheduling changed makes new pods pull every
    // image again, with other credentials or on other nodes: judge them all.
    const before = readPodSpec(oldSpec, prefix).images
    if (!location.template || pullContext(dig(req.object, location.path)) === pullContext(oldSpec)) {
      images = newImages(images, before)
    }
    images = withPrevious(images, before)
  }
  const metadata = (req.object.metadata ?? {}) as { name?: unknown; generateName?: unknown }
  const name =
    req.name !== ''
      ? req.name
      : typeof metadata.name === 'string'
        ? metadata.name
        : typeof metadata.generateName === 'string'
          ? `${metadata.generateName}*`
          : '(unnamed)'
  return {
    namespace: req.namespace,
    kind: req.kind.kind,
    name,
    specField: prefix,
    template: location.template,
    images,
    pullSecrets: spec.imagePullSecrets,
    serviceAccountName: spec.serviceAccountName,
    scheduling: spec.scheduling,
    ...pinnedFrom(req),
  }
}

/** A Pod the mutating webhook pinned: which tag each digest came from, for the decision line. */
function pinnedFrom(req: AdmissionRequest): { pinnedFrom?: Record<string, string> } {
  if (req.kind.kind !== 'Pod' || req.object === null) return {}
  const metadata = req.object.metadata as { annotations?: unknown } | undefined
  const annotations =
    typeof metadata?.annotations === 'object' && metadata.annotations !== null
      ? (metadata.annotations as Record<string, unknown>)
      : undefined
  const map = readPinnedFrom(annotations)
  return Object.keys(map).length === 0 ? {} : { pinnedFrom: map }
}

/** Each image with what the same container (or volume) had before, when that differs: the fix names it. */
function withPrevious(images: readonly ImageUse[], before: readonly ImageUse[]): ImageUse[] {
  return images.map((u) => {
    const old = before.find(
      (b) =>
        b.kind === u.kind &&
        b.container === u.container &&
        b.field.slice(0, b.field.lastIndexOf('[')) === u.field.slice(0, u.field.lastIndexOf('[')),
    )
    return old === undefined || old.image === u.image ? u : { ...u, previous: old.image }
  })
}

/** The parts of a pod spec, other than images, that decide whether its pulls succeed. */
function pullContext(spec: unknown): string {
  const s = (typeof spec === 'object' && spec !== null ? spec : {}) as Record<string, unknown>
  return JSON.stringify([s.imagePullSecrets, s.serviceAccountName, s.serviceAccount, s.nodeSelector, s.affinity])
}
