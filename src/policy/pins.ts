/**
 * Which images a pod can be pinned to the digest pullguard verified (opt-in, the mutating webhook
 * and `check --pin-digests`). An image is pinned only when every node pool the pod can land on
 * found the same manifest for its tag: the digest the registry returned for it (an index's own for
 * a multi-platform image), which is what the runtime resolves the tag to. It is left as written
 * when it already names a digest, is never pulled (`imagePullPolicy: Never`), is exempt, was not
 * verified everywhere, is under a signature policy (whose identity rules read the name as written),
 * or was answered by a mirror (which may serve the tag but not the digest).
 *
 * The pinned form is the name as written with the tag replaced by the digest (`repo@sha256:…`):
 * containerd (distribution's ParseDockerRef) and CRI-O (RegistryImageReferenceFromRaw) both drop
 * a tag written beside a digest and pull by the digest, and containers-image's docker transport
 * refuses the pair outright; the digest alone means the same to every runtime.
 */
import { tryParseReference } from '../reference/index.js'
import { pullability, type ImageOutcome } from './outcome.js'
import type { ImageUse } from './subject.js'

export interface Pin {
  use: ImageUse
  /** The image as the pod wrote it. */
  from: string
  /** The same name at the verified digest. */
  to: string
  digest: string
}

export type PinSkip =
  | 'digest'
  | 'never-pulled'
  | 'exempt'
  | 'unverified'
  | 'pools-differ'
  | 'signature-policy'
  | 'mirror'

export interface Pins {
  pins: Pin[]
  skipped: Array<{ use: ImageUse; why: PinSkip }>
}

/**
 * `outcomes`: one list per pool the pod can land on (one list without pools), each with an
 * outcome per image use, matched by field.
 */
export function pinsFor(uses: readonly ImageUse[], outcomes: ReadonlyArray<readonly ImageOutcome[]>): Pins {
  const out: Pins = { pins: [], skipped: [] }
  for (const use of uses) {
    const why = skipFor(use, outcomes)
    if (typeof why === 'string') out.skipped.push({ use, why })
    else out.pins.push(why)
  }
  return out
}

function skipFor(use: ImageUse, outcomes: ReadonlyArray<readonly ImageOutcome[]>): PinSkip | Pin {
  if (use.neverPulled === true) return 'never-pulled'
  const parsed = tryParseReference(use.image)
  const ref = parsed.ok ? parsed.ref : undefined
  if (ref?.digest !== undefined) return 'digest'
  const mine = outcomes.map((list) => list.find((o) => o.use.field === use.field))
  if (mine.some((o) => o?.kind === 'exempt')) return 'exempt'
  const digests = new Set<string>()
  for (const o of mine) {
    if (o === undefined || o.kind !== 'checked' || o.result.code !== 'Exists' || pullability(o) !== 'pullable')
      return 'unverified'
    // A signature policy judges the name as written: under signedIdentity matchExact a signature for
    // the tag does not match the digest, so the pinned pod would be refused where the tag pulls.
    if (o.signature !== undefined) return 'signature-policy'
    // Answered by a mirror: the nodes may reach it for tags only (CRI-O's pull-from-mirror =
    // "tag-only", containerd's resolve-only hosts), so the digest could be pulled elsewhere.
    if (!answeredByItself(o.result.answeredBy, o.ref.registryHost, o.ref.path)) return 'mirror'
    digests.add(o.result.digest)
  }
  if (ref === undefined || digests.size === 0) return 'unverified'
  if (digests.size > 1) return 'pools-differ'
  const [digest] = [...digests] as [string]
  return { use, from: use.image, to: pinnedImage(use.image, ref.tag, digest), digest }
}

/** No mirror involved: no route at all, or the registry itself (containerd's `host`, CRI-O's `host/path`). */
function answeredByItself(label: string | undefined, host: string, path: string): boolean {
  return label === undefined || label === host || label === `${host}/${path}`
}

/** `name:tag` → `name@digest`, the name as written (`nginx`, `host:5000/team/app`). */
export function pinnedImage(image: string, tag: string | undefined, digest: string): string {
  const name = tag !== undefined && image.endsWith(`:${tag}`) ? image.slice(0, -(tag.length + 1)) : image
  return `${name}@${digest}`
}
