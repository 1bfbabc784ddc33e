/**
 * Manifest documents → the subjects the webhook would judge: `List` objects are opened, objects
 * that carry no pod spec are skipped, and each pod spec is read by the admission layer's own
 * readPodSpec, so a manifest yields exactly the images a CREATE of it would have the kubelet pull.
 */
import { ReviewDecodeError } from '../admission/review.js'
import { fieldSteps, readPodSpec, type PodSpecView } from '../admission/pod-spec.js'
import { createSubject, dig, podSpecLocation } from '../admission/workloads.js'
import type { PodSubject } from '../policy/subject.js'
import { InputError } from '../commands/errors.js'
import type { Document } from './manifests.js'
import type { FieldPath, Position } from './positions.js'
import type { ImageUse } from '../policy/subject.js'
import type { Pin } from '../policy/pins.js'

export interface CheckObject {
  /** The file it came from (`-` for stdin). */
  source: string
  subject: PodSubject
  /** The document it was read from, and the object's own path in it (`items.3` inside a List). */
  document: Document
  at: FieldPath
}

/** Where an image's string sits in its document: `image` of a container, `reference` of a volume. */
function imagePath(object: CheckObject, use: ImageUse): FieldPath {
  // A volume's field already names its `image` (`spec.volumes[0].image`).
  return [...object.at, ...fieldSteps(use.field), use.kind === 'volume' ? 'reference' : 'image']
}

/** The line of an image's `image:` field (`reference:` of an image volume) in its file. */
export function imagePosition(object: CheckObject, use: ImageUse): Position | undefined {
  return object.document.positionOf(imagePath(object, use))
}

/** Writes the pinned image into the object's document (`check --pin-digests`). */
export function pinInDocument(object: CheckObject, pin: Pin): boolean {
  return object.document.replaceString(imagePath(object, pin.use), pin.to)
}

export interface ManifestObjects {
  objects: CheckObject[]
  /** Kubernetes objects that carry no pod spec (Services, ConfigMaps, …). */
  skipped: number
}

/** `List` inside `List` is legal but never written by hand; this bounds a hostile input. */
const MAX_LIST_DEPTH = 8

export function manifestObjects(documents: readonly Document[], defaultNamespace: string): ManifestObjects {
  const result: ManifestObjects = { objects: [], skipped: 0 }
  for (const doc of documents) collect(doc, doc.value, [], `document ${doc.index}`, defaultNamespace, result, 0)
  return result
}

function collect(
  document: Document,
  value: unknown,
  at: FieldPath,
  where: string,
  defaultNamespace: string,
  into: ManifestObjects,
  depth: number,
): void {
  const source = document.source
  const name = source === '-' ? '(stdin)' : source
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    // A file of another kind (an Ansible play, a list of hooks) has nothing to check; an item of a
    // List must be an object.
    if (depth === 0) {
      into.skipped++
      return
    }
    throw new InputError(`${name}: ${where} is not a Kubernetes object`)
  }
  const object = value as Record<string, unknown>
  const kind = typeof object.kind === 'string' ? object.kind : undefined
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : undefined
  // Not a Kubernetes object at all (a Helm values file in the same directory): nothing to check.
  if (kind === undefined || apiVersion === undefined) {
    into.skipped++
    return
  }
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(object.items))) {
    if (depth >= MAX_LIST_DEPTH) throw new InputError(`${name}: ${where}: Lists nested deeper than ${MAX_LIST_DEPTH}`)
    const items = Array.isArray(object.items) ? object.items : []
    for (const [i, item] of items.entries())
      collect(document, item, [...at, 'items', i], `${where} items[${i}]`, defaultNamespace, into, depth + 1)
    return
  }
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  const location = podSpecLocation(group, kind)
  if (location === undefined) {
    into.skipped++
    return
  }
  const metadata = (typeof object.metadata === 'object' && object.metadata !== null ? object.metadata : {}) as Record<
    string,
    unknown
  >
  const objectName =
    typeof metadata.name === 'string' && metadata.name !== ''
      ? metadata.name
      : typeof metadata.generateName === 'string'
        ? `${metadata.generateName}*`
        : '(unnamed)'
  const namespace =
    typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : defaultNamespace
  let spec: PodSpecView
  try {
    spec = readPodSpec(dig(object, location.path), location.path.join('.'))
  } catch (err) {
    if (err instanceof ReviewDecodeError) throw new InputError(`${name}: ${kind} ${objectName}: ${err.reason}`)
    throw err
  }
  into.objects.push({
    source,
    document,
    at,
    subject: createSubject({ namespace, kind, name: objectName }, location, spec),
  })
}
