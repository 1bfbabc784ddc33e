/**
 * The JSONPatch (RFC 6902) that pins a Pod's images: for each pin a `test` of the image the review
 * held, then its `replace` (a mutation that races another writer fails whole instead of pinning
 * something else), and the annotation `pullguard.io/pinned-from` that keeps each original
 * reference, a JSON map of the image's field path to it. A pod pinned before (an earlier
 * invocation, before another webhook rewrote an image) keeps its entries; a field pinned again
 * records the reference it was pinned from this time.
 */
import type { Pin } from '../policy/pins.js'
import { fieldSteps } from './pod-spec.js'

export const PINNED_FROM = 'pullguard.io/pinned-from'

export type PatchOp = { op: 'test' | 'replace' | 'add'; path: string; value: unknown }

/** `spec.containers[0]` → `/spec/containers/0/image`; a volume's `spec.volumes[1].image` → `…/image/reference`. */
export function imagePointer(pin: Pin): string {
  const steps = [...fieldSteps(pin.use.field), pin.use.kind === 'volume' ? 'reference' : 'image']
  return `/${steps.map((step) => escapePointer(String(step))).join('/')}`
}

/** The annotation's key for a pin: the image's own field path (`spec.containers[0].image`). */
export function pinnedFromKey(pin: Pin): string {
  return pin.use.kind === 'volume' ? `${pin.use.field}.reference` : `${pin.use.field}.image`
}

/**
 * `annotate: false` for `pods/ephemeralcontainers`, whose update keeps only the ephemeral
 * containers of what it is given (the API server drops any other change, metadata included).
 */
export function pinPatch(pod: Record<string, unknown>, pins: readonly Pin[], annotate = true): PatchOp[] {
  if (pins.length === 0) return []
  const ops: PatchOp[] = []
  for (const pin of pins) {
    const path = imagePointer(pin)
    ops.push({ op: 'test', path, value: pin.from }, { op: 'replace', path, value: pin.to })
  }
  if (!annotate) return ops
  const metadata = (typeof pod.metadata === 'object' && pod.metadata !== null ? pod.metadata : {}) as Record<
    string,
    unknown
  >
  const annotations =
    typeof metadata.annotations === 'object' && metadata.annotations !== null
      ? (metadata.annotations as Record<string, unknown>)
      : undefined
  const before = { ...readPinnedFrom(annotations) }
  for (const pin of pins) before[pinnedFromKey(pin)] = pin.from
  const value = JSON.stringify(before)
  if (annotations === undefined) ops.push({ op: 'add', path: '/metadata/annotations', value: { [PINNED_FROM]: value } })
  else ops.push({ op: 'add', path: `/metadata/annotations/${escapePointer(PINNED_FROM)}`, value })
  return ops
}

/**
 * A pod's `pullguard.io/pinned-from` map (an earlier invocation's); anything else (no annotation,
 * one edited by hand into no map) is an empty one.
 */
export function readPinnedFrom(annotations: Record<string, unknown> | undefined): Record<string, string> {
  const raw = annotations?.[PINNED_FROM]
  if (typeof raw !== 'string') return {}
  try {
    const parsed = JSON.parse(raw) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {}
    return Object.fromEntries(
      Object.entries(parsed as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'),
    )
  } catch {
    return {}
  }
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapePointer(step: string): string {
  return step.replaceAll('~', '~0').replaceAll('/', '~1')
}
