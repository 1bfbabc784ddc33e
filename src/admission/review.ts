/**
 * AdmissionReview v1 in: validate the untrusted JSON once at the boundary, then trust the types.
 * Anything that is not a well-formed review is a ReviewDecodeError, which the server answers with
 * HTTP 400 and the reason: the API server never sends such a body, so it is a client bug or abuse.
 */
export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT'
export const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']

export interface GroupVersionKind {
  group: string
  version: string
  kind: string
}

export interface AdmissionRequest {
  uid: string
  kind: GroupVersionKind
  resource: { group: string; version: string; resource: string }
  subResource: string | undefined
  name: string
  namespace: string
  operation: Operation
  object: Record<string, unknown> | null
  oldObject: Record<string, unknown> | null
  dryRun: boolean
}

export class ReviewDecodeError extends Error {
  readonly code = 'MalformedReview'
  /**
   * @param uid The request's uid when the body holds a usable one (decodeReview sets it, whatever
   * the body was refused for), so the log line about the refused body can name it.
   */
  constructor(
    readonly reason: string,
    readonly uid?: string,
  ) {
    super(reason)
    this.name = 'ReviewDecodeError'
  }
}

/** Kubernetes uids are 36 characters; allow other formats but not a megabyte echoed back. */
const MAX_UID_LENGTH = 128

export function decodeReview(body: unknown): AdmissionRequest {
  // Read once, before any check: a body refused for whatever reason still names its uid, when it has a usable one.
  const uid = requestUid(body)
  try {
    return decodeRequest(body, uid)
  } catch (err) {
    throw err instanceof ReviewDecodeError && uid !== undefined ? new ReviewDecodeError(err.reason, uid) : err
  }
}

/** `request.uid` when it is a string of at most MAX_UID_LENGTH characters, whatever else the body holds. */
function requestUid(body: unknown): string | undefined {
  const uid = (body as { request?: { uid?: unknown } } | null)?.request?.uid
  return typeof uid === 'string' && uid.length <= MAX_UID_LENGTH ? uid : undefined
}

function decodeRequest(body: unknown, uid: string | undefined): AdmissionRequest {
  const review = asObject(body, 'body must be a JSON object')
  if (review.apiVersion !== 'admission.k8s.io/v1')
    throw new ReviewDecodeError(`apiVersion must be "admission.k8s.io/v1", got ${describe(review.apiVersion)}`)
  if (review.kind !== 'AdmissionReview')
    throw new ReviewDecodeError(`kind must be "AdmissionReview", got ${describe(review.kind)}`)
  if (review.request === undefined || review.request === null) throw new ReviewDecodeError('request is missing')
  const req = asObject(review.request, 'request must be an object')
  if (uid === undefined || uid === '') throw new ReviewDecodeError('request.uid must be a non-empty string')
  const operation = req.operation
  if (typeof operation !== 'string' || !(OPERATIONS as readonly string[]).includes(operation)) {
    throw new ReviewDecodeError(`request.operation must be one of ${OPERATIONS.join(', ')}`)
  }
  const kind = asObject(req.kind, 'request.kind must be an object')
  const resource = asObject(req.resource ?? {}, 'request.resource must be an object')
  return {
    uid,
    kind: {
      group: str(kind.group, 'request.kind.group'),
      version: str(kind.version, 'request.kind.version'),
      kind: str(kind.kind, 'request.kind.kind'),
    },
    resource: {
      group: optStr(resource.group, 'request.resource.group'),
      version: optStr(resource.version, 'request.resource.version'),
      resource: optStr(resource.resource, 'request.resource.resource'),
    },
    subResource:
      req.subResource === undefined || req.subResource === '' ? undefined : str(req.subResource, 'request.subResource'),
    name: optStr(req.name, 'request.name'),
    namespace: optStr(req.namespace, 'request.namespace'),
    operation: operation as Operation,
    object: optObject(req.object, 'request.object'),
    oldObject: optObject(req.oldObject, 'request.oldObject'),
    dryRun: req.dryRun === true,
  }
}

function asObject(v: unknown, problem: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReviewDecodeError(problem)
  return v as Record<string, unknown>
}

function optObject(v: unknown, field: string): Record<string, unknown> | null {
  return v === undefined || v === null ? null : asObject(v, `${field} must be an object`)
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new ReviewDecodeError(`${field} must be a string`)
  return v
}

function optStr(v: unknown, field: string): string {
  return v === undefined || v === null ? '' : str(v, field)
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : v === undefined ? 'nothing' : typeof v
}
