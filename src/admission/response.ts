/**
 * AdmissionReview v1 out. Built only by these helpers, each taking the request's uid, the way
 * controller-runtime's response.go does: nobody hand-builds a review.
 */
import { MAX_WARNING_LENGTH } from '../policy/messages.js'

export interface AdmissionResponse {
  uid: string
  allowed: boolean
  status?: { code: number; reason: string; message: string }
  warnings?: string[]
  /** A mutating webhook's change: RFC 6902 operations, JSON, base64 (the only type v1 knows). */
  patchType?: 'JSONPatch'
  patch?: string
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1'
  kind: 'AdmissionReview'
  response: AdmissionResponse
}

export const MAX_WARNINGS = 20

function review(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }
}

/** Warnings are built to fit MAX_WARNING_LENGTH (policy/messages.ts says why); anything longer is cut with an ellipsis rather than lost whole. */
function cleanWarnings(warnings: readonly string[]): string[] {
  const out = warnings.slice(0, MAX_WARNINGS).map((w) => {
    const line = w.replace(/\s+/g, ' ').trim()
    return line.length > MAX_WARNING_LENGTH ? line.slice(0, MAX_WARNING_LENGTH - 1) + '…' : line
  })
  if (warnings.length > MAX_WARNINGS)
    out[MAX_WARNINGS - 1] = `… and ${warnings.length - MAX_WARNINGS + 1} more warnings (see pullguard's decision log)`
  return out
}

export function allowed(uid: string, warnings: readonly string[] = []): AdmissionReviewOut {
  return review(
    warnings.length > 0 ? { uid, allowed: true, warnings: cleanWarnings(warnings) } : { uid, allowed: true },
  )
}

/** Allowed, with the object changed by `patch` (empty: allowed as it came). */
export function patched(uid: string, patch: readonly unknown[]): AdmissionReviewOut {
  if (patch.length === 0) return allowed(uid)
  return review({
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  })
}

export function denied(uid: string, message: string, warnings: readonly string[] = []): AdmissionReviewOut {
  const response: AdmissionResponse = { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message } }
  if (warnings.length > 0) response.warnings = cleanWarnings(warnings)
  return review(response)
}

/**
 * The HTTP 400 body for a request that is not a well-formed AdmissionReview (its JSON, or its
 * fields). Not a review: the API server never sends such a body, and without a valid uid there is
 * no request to answer.
 */
export interface MalformedReviewOut {
  error: 'MalformedReview'
  reason: string
}

export function malformedReview(reason: string): MalformedReviewOut {
  return { error: 'MalformedReview', reason }
}
