/**
 * What a pod spec tells pullguard: the images the kubelet will pull (with the field path a person
 * can find them at), the pull secrets and service account it will use, and where it may be
 * scheduled. Reads only; the API server has validated the object already, so wrong types here
 * mean a forged or broken review (ReviewDecodeError).
 */
import type { ImageUse, SchedulingConstraints } from '../policy/subject.js'
import { ReviewDecodeError } from './review.js'

export interface PodSpecView {
  images: ImageUse[]
  imagePullSecrets: string[]
  serviceAccountName: string | undefined
  scheduling: SchedulingConstraints
}

/** The kubelet pulls init containers first, then containers; ephemeral ones on `kubectl debug`. */
const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const

export function readPodSpec(spec: unknown, prefix: string): PodSpecView {
  if (spec === undefined || spec === null)
    return {
      images: [],
      imagePullSecrets: [],
      serviceAccountName: undefined,
      scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
    }
  const s = object(spec, prefix)
  const images: ImageUse[] = []
  for (const list of CONTAINER_LISTS) {
    array(s[list], `${prefix}.${list}`).forEach((item, i) => {
      const field = itemField(prefix, list, i)
      const c = object(item, field)
      // The API server requires an image; a missing one cannot be pulled and is not ours to judge.
      if (typeof c.image !== 'string') return
      const use: ImageUse = {
        container: typeof c.name === 'string' ? c.name : `#${i}`,
        kind: 'container',
        field,
        image: c.image,
      }
      if (c.imagePullPolicy === 'Never') use.neverPulled = true
      images.push(use)
    })
  }
  // Image volumes (KEP-4639) are pulled by the kubelet with the pod's credentials, like containers.
  array(s.volumes, `${prefix}.volumes`).forEach((item, i) => {
    const v = object(item, `${prefix}.volumes[${i}]`)
    if (v.image === undefined || v.image === null) return
    const image = object(v.image, `${prefix}.volumes[${i}].image`)
    if (typeof image.reference !== 'string' || image.reference === '') return
    const use: ImageUse = {
      container: typeof v.name === 'string' ? v.name : `#${i}`,
      kind: 'volume',
      field: itemField(prefix, 'volumes', i),
      image: image.reference,
    }
    if (image.pullPolicy === 'Never') use.neverPulled = true
    images.push(use)
  })
  const imagePullSecrets = array(s.imagePullSecrets, `${prefix}.imagePullSecrets`)
    .map((ref, i) => object(ref, `${prefix}.imagePullSecrets[${i}]`).name)
    .filter((name): name is string => typeof name === 'string' && name !== '')
  const sa = [s.serviceAccountName, s.serviceAccount].find((v): v is string => typeof v === 'string' && v !== '')
  // The audit keeps one of these per workload (tens of thousands): arrays grown by push keep up to
  // 16 spare slots, so they are trimmed to size.
  return {
    images: images.slice(),
    imagePullSecrets: imagePullSecrets.slice(),
    serviceAccountName: sa,
    scheduling: readScheduling(s, prefix),
  }
}

/**
 * `spec.template.spec.containers[0]` (a volume's: `….volumes[0].image`), one shared flat string per
 * prefix, list and position: the audit keeps these for every image of every workload, and a
 * template literal would keep its pieces too. Bounded: few prefixes exist (one per workload kind's
 * pod spec), and positions past 64 are made afresh.
 */
const fields = new Map<string, Map<string, string[]>>()
const MAX_FIELD_PREFIXES = 16
const MAX_FIELD_INDEX = 64
/**
 * A field as itemField writes it (`spec.template.spec.containers[0]`, `spec.volumes[1].image`) →
 * its path steps, names and indices: where a report points in a file, where a patch writes.
 */
export function fieldSteps(field: string): Array<string | number> {
  const out: Array<string | number> = []
  for (const part of field.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part)
    if (m === null) throw new Error(`unexpected field ${field}`)
    out.push(m[1]!)
    for (const index of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(index[1]))
  }
  return out
}

function itemField(prefix: string, list: string, i: number): string {
  const make = (): string => [prefix, '.', list, '[', i, list === 'volumes' ? '].image' : ']'].join('')
  let byList = fields.get(prefix)
  if (byList === undefined) {
    if (fields.size >= MAX_FIELD_PREFIXES || i >= MAX_FIELD_INDEX) return make()
    fields.set(prefix, (byList = new Map()))
  }
  if (i >= MAX_FIELD_INDEX) return make()
  let known = byList.get(list)
  if (known === undefined) byList.set(list, (known = []))
  return (known[i] ??= make())
}

function readScheduling(s: Record<string, unknown>, prefix: string): SchedulingConstraints {
  const nodeSelector: Record<string, string> = {}
  if (s.nodeSelector !== undefined && s.nodeSelector !== null) {
    for (const [k, v] of Object.entries(object(s.nodeSelector, `${prefix}.nodeSelector`)))
      if (typeof v === 'string') nodeSelector[k] = v
  }
  const required = ((
    (s.affinity as Record<string, unknown> | null | undefined)?.nodeAffinity as
      | Record<string, unknown>
      | null
      | undefined
  )?.requiredDuringSchedulingIgnoredDuringExecution ?? null) as Record<string, unknown> | null
  const field = `${prefix}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`
  const nodeSelectorTerms = (required === null ? [] : array(required.nodeSelectorTerms, field)).map((term, i) => {
    const t = object(term, `${field}[${i}]`)
    const requirements = (list: 'matchExpressions' | 'matchFields') =>
      array(t[list], `${field}[${i}].${list}`).map((e, j) => {
        const x = object(e, `${field}[${i}].${list}[${j}]`)
        const values = Array.isArray(x.values) ? x.values.filter((v): v is string => typeof v === 'string') : undefined
        return {
          key: String(x.key ?? ''),
          operator: String(x.operator ?? ''),
          ...(values === undefined ? {} : { values }),
        }
      })
    const matchFields = requirements('matchFields')
    return { matchExpressions: requirements('matchExpressions'), ...(matchFields.length > 0 ? { matchFields } : {}) }
  })
  const tolerations = array(s.tolerations, `${prefix}.tolerations`).map((item, i) => {
    const x = object(item, `${prefix}.tolerations[${i}]`)
    const text = (k: string) => (typeof x[k] === 'string' ? { [k]: x[k] as string } : {})
    return { ...text('key'), ...text('operator'), ...text('value'), ...text('effect') }
  })
  const nodeName = typeof s.nodeName === 'string' && s.nodeName !== '' ? s.nodeName : undefined
  return {
    nodeSelector,
    nodeSelectorTerms,
    ...(tolerations.length > 0 ? { tolerations } : {}),
    ...(nodeName === undefined ? {} : { nodeName }),
  }
}

/** Images in `current` that `previous` did not have: on UPDATE only those are pulled anew. */
export function newImages(current: readonly ImageUse[], previous: readonly ImageUse[]): ImageUse[] {
  const before = new Set(previous.map((u) => u.image))
  return current.filter((u) => !before.has(u.image))
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReviewDecodeError(`${field} must be an object`)
  return v as Record<string, unknown>
}

function array(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw new ReviewDecodeError(`${field} must be an array`)
  return v
}
