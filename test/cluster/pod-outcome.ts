// What the kubelet did with a pod, read as a user reads it (`kubectl get pod`, `kubectl get events`):
// every container Running, or the first image failure the kubelet reported (the reason and message
// of its `Failed` event, which keeps the runtime's error after the status has moved on to
// ImagePullBackOff).
import type { ControlPlane } from './control-plane.js'

export type PodOutcome =
  | { kind: 'running' }
  | {
      kind: 'failed'
      /** ErrImagePull, ErrImageNeverPull, …: the status reason (or the event's `Error: X`). */
      reason: string
      /** The runtime's error, from the `Failed to pull image "…": …` event when there is one. */
      message: string
    }

interface PodJson {
  metadata: { name: string }
  status?: {
    phase?: string
    containerStatuses?: Array<{
      state?: { running?: unknown; waiting?: { reason?: string; message?: string } }
    }>
  }
}
interface EventJson {
  involvedObject: { name: string }
  type?: string
  reason?: string
  message?: string
}

/** Reasons a container waits with when its image could not be had; the kubelet will not get further alone. */
const IMAGE_FAILURES = ['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']
const POLL_MS = 300

function outcomeOf(pod: PodJson, events: readonly EventJson[]): PodOutcome | undefined {
  const statuses = pod.status?.containerStatuses ?? []
  if (pod.status?.phase === 'Running' && statuses.length > 0 && statuses.every((s) => s.state?.running !== undefined))
    return { kind: 'running' }
  const mine = events.filter((e) => e.involvedObject.name === pod.metadata.name && e.type === 'Warning')
  const pulled = mine.find((e) => e.reason === 'Failed' && e.message?.startsWith('Failed to pull image') === true)
  const error = mine.find((e) => e.reason === 'Failed' && e.message?.startsWith('Error: ') === true)
  const waiting = statuses.map((s) => s.state?.waiting).find((w) => IMAGE_FAILURES.includes(w?.reason ?? ''))
  // An image volume that cannot be pulled leaves the containers ContainerCreating: the events say why.
  const reason = error?.message?.slice('Error: '.length) ?? waiting?.reason
  if (reason === undefined || !IMAGE_FAILURES.includes(reason)) return undefined
  if (reason === 'ImagePullBackOff' && pulled === undefined) return undefined
  // ErrImageNeverPull has no pull event: the status (or a Warning event of that reason) says why.
  const never = mine.find((e) => e.reason === reason && e.message !== undefined)
  return {
    kind: 'failed',
    reason,
    message: pulled?.message ?? waiting?.message ?? never?.message ?? error?.message ?? '',
  }
}

/** Waits until each named pod in `namespace` runs or has failed to get its images; throws naming the others. */
export async function podOutcomes(
  cp: Pick<ControlPlane, 'kubectlOk'>,
  namespace: string,
  names: readonly string[],
  timeoutMs: number,
): Promise<Map<string, PodOutcome>> {
  const deadline = Date.now() + timeoutMs
  const found = new Map<string, PodOutcome>()
  for (;;) {
    const pods = JSON.parse(await cp.kubectlOk(['get', 'pods', '-n', namespace, '-o', 'json'])) as { items: PodJson[] }
    const events = JSON.parse(await cp.kubectlOk(['get', 'events', '-n', namespace, '-o', 'json'])) as {
      items: EventJson[]
    }
    for (const pod of pods.items) {
      if (!names.includes(pod.metadata.name) || found.has(pod.metadata.name)) continue
      const outcome = outcomeOf(pod, events.items)
      if (outcome !== undefined) found.set(pod.metadata.name, outcome)
    }
    if (found.size === names.length) return found
    if (Date.now() > deadline) {
      const left = names.filter((n) => !found.has(n))
      const states = pods.items
        .filter((p) => left.includes(p.metadata.name))
        .map((p) => `${p.metadata.name}: ${JSON.stringify(p.status)}`)
      throw new Error(`no outcome after ${timeoutMs} ms for ${left.join(', ')}:\n${states.join('\n')}`)
    }
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}
