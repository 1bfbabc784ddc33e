/**
 * What a pod spec tells pullguard: the images the kubelet will pull (with the field path a person
 * can find them at) and the pull secrets it will use. Reads only; the API server has validated
 * the object already, so wrong types here mean a forged or broken review (ReviewDecodeError).
 */
import type { ImageUse } from '../policy/subject.js'
import { ReviewDecodeError } from './review.js'

export interface PodSpecView {
  images: ImageUse[]
  imagePullSecrets: string[]
}

/** The kubelet pulls init containers first, then containers; ephemeral ones on `kubectl debug`. */
const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const

export function readPodSpec(spec: unknown, prefix: string): PodSpecView {
  if (spec === undefined || spec === null) return { images: [], imagePullSecrets: [] }
  const s = object(spec, prefix)
  const images: ImageUse[] = []
  for (const list of CONTAINER_LISTS) {
    const items = array(s[list], `${prefix}.${list}`)
    items.forEach((item, i) => {
      const field = `${prefix}.${list}[${i}]`
      const c = object(item, field)
      // The API server requires an image; a missing one cannot be pulled and is not ours to judge.
      if (typeof c.image !== 'string') return
      images.push({ container: typeof c.name === 'string' ? c.name : `#${i}`, field, image: c.image })
    })
  }
  const imagePullSecrets = array(s.imagePullSecrets, `${prefix}.imagePullSecrets`)
    .map((ref, i) => object(ref, `${prefix}.imagePullSecrets[${i}]`).name)
    .filter((name): name is string => typeof name === 'string' && name !== '')
  return { images, imagePullSecrets }
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
