/**
 * Reading what the kubelet already said about a pod: which containers are stuck on an image pull
 * (their waiting reason), the event that carries the runtime's own error text, and what kind of
 * error that text is. Pure functions over the API's shapes.
 */
import type { ContainerState, PodEvent } from '../kube/sources.js'

/**
 * Waiting reasons that mean "the image is not there" (pkg/kubelet/images/types.go). ErrImagePull
 * is the first failure, ImagePullBackOff the wait before the next try, InvalidImageName a reference
 * the kubelet cannot parse, ErrImageNeverPull an image absent under `imagePullPolicy: Never`,
 * ImageInspectError the runtime failing to look at its images (CRI-O: an ambiguous short name),
 * SignatureValidationFailed the runtime's signature policy refusing the pull (CRI-O).
 */
export const PULL_FAILURE_REASONS = [
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'ImageInspectError',
  'SignatureValidationFailed',
] as const
export type PullFailureReason = (typeof PULL_FAILURE_REASONS)[number]

export function pullFailureReason(c: ContainerState): PullFailureReason | undefined {
  return (PULL_FAILURE_REASONS as readonly string[]).includes(c.waitingReason ?? '')
    ? (c.waitingReason as PullFailureReason)
    : undefined
}

export function failingContainers(
  containers: readonly ContainerState[],
): Array<ContainerState & { reason: PullFailureReason }> {
  return containers.flatMap((c) => {
    const reason = pullFailureReason(c)
    return reason === undefined ? [] : [{ ...c, reason }]
  })
}

/** The kubelet's summary events; they name the state, not the cause. */
const GENERIC =
  /^(Error: (ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull|ImageInspectError|SignatureValidationFailed)|Back-off pulling image .*)$/

/**
 * The event a person should read for one container: the latest kubelet Warning about it that is
 * not a generic "Error: ImagePullBackOff" (that is "Failed to pull image …: <runtime error>", or
 * InspectFailed, or ErrImageNeverPull), else the latest of any kind about it.
 */
export function kubeletEvent(
  events: readonly PodEvent[],
  container: Pick<ContainerState, 'name' | 'list'>,
): PodEvent | undefined {
  const about = events.filter((e) => e.fieldPath === `spec.${container.list}{${container.name}}`)
  const latest = (list: PodEvent[]): PodEvent | undefined =>
    list.reduce<PodEvent | undefined>(
      (best, e) => (best === undefined || (e.lastSeen ?? '') >= (best.lastSeen ?? '') ? e : best),
      undefined,
    )
  return (
    latest(about.filter((e) => e.type === 'Warning' && !GENERIC.test(e.message))) ??
    latest(about.filter((e) => e.type === 'Warning')) ??
    latest(about)
  )
}

/** What kind of failure the node reported, from the runtime's error text (containerd, CRI-O). */
export type KubeletCause =
  | 'not-found'
  | 'denied'
  | 'rate-limited'
  | 'tls'
  | 'network'
  | 'platform'
  | 'invalid'
  | 'never-pull'
  | 'signature'
  | 'short-name'
  | 'other'

const CAUSES: Array<[KubeletCause, RegExp]> = [
  ['never-pull', /not present with pull policy of Never|ErrImageNeverPull/],
  // CRI-O's words (server/image_pull.go) and containers-image's (shortnames, signature).
  ['short-name', /short name mode is enforcing|returns ambiguous list|did not resolve to an alias/i],
  [
    'signature',
    /SignatureValidationFailed|Source image rejected|is rejected by policy|A signature was required|signature verification failed/i,
  ],
  ['invalid', /invalid reference format|couldn't parse image|InvalidImageName/i],
  ['platform', /no match for platform/i],
  // Before "denied": Docker Hub's 429 says "toomanyrequests" and sometimes "denied" too.
  ['rate-limited', /toomanyrequests|too many requests|rate limit|\b429\b/i],
  [
    'tls',
    /x509|tls:|certificate (signed by unknown authority|is not valid|has expired)|server gave HTTP response to HTTPS client/i,
  ],
  [
    'denied',
    /pull access denied|unauthorized|authorization failed|authentication required|insufficient_scope|403 Forbidden|401 Unauthorized|\bdenied\b/i,
  ],
  [
    'network',
    /i\/o timeout|connection refused|no such host|network is unreachable|no route to host|dial tcp|context deadline exceeded|connection reset|EOF$/i,
  ],
  ['not-found', /not found|manifest unknown|NotFound|name unknown/i],
]

export function kubeletCause(message: string): KubeletCause {
  return CAUSES.find(([, pattern]) => pattern.test(message))?.[0] ?? 'other'
}
