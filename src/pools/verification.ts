/**
 * The kubelet's check before it gives a pod an image already on the node (KEP-2535; kubelet
 * v1.37 pkg/kubelet/images/image_manager.go EnsureImageExists and
 * pullmanager/image_pull_manager.go MustAttemptImagePull, beta and on by default since 1.35).
 *
 * An image on the node is "preloaded" when the kubelet has no pull record of it (imported, pulled
 * by containerd itself, or there before the feature). When the policy asks for verification, a
 * copy is given to the pod only if the kubelet's record of its pull matches: pulled anonymously
 * or with node-wide credentials (nodePodsAccessible), or with one of the pod's own secrets (same
 * secret object, or same credential hash), or with the pod's service account's token. Otherwise
 * the kubelet pulls again with the pod's credentials (IfNotPresent), or refuses with
 * ErrImageNeverPull (Never): "Container image "X" is not present with pull policy of Never".
 * With `Never` the registry is never asked: only the records decide.
 */
import { tryParseReference } from '../reference/index.js'
import type { VerificationPolicy } from './pool.js'

/**
 * What the registry told pullguard when asked with the pod's own credentials, for a `Never` image:
 * it `reads`, `denied` the credentials, says the image is `missing` (no tag, digest or repository),
 * or gave no answer (`other`).
 */
export type OwnCredentialsAnswer = 'reads' | 'denied' | 'missing' | 'other'

/**
 * - `ok`: the kubelet gives the pod a copy on the node, whoever put it there;
 * - `refused`: it never does (ErrImageNeverPull on every node);
 * - `cached`: it does only where the node's copy came a certain way (said in `needs`).
 */
export type NeverPullVerdict = { kind: 'ok' } | { kind: 'refused' | 'cached'; needs: string }

/** A `Never` image on a node of a pool with this policy. `image` is the pod's string, as written. */
export function judgeNeverPulled(
  policy: VerificationPolicy,
  allowlist: readonly string[],
  image: string,
  own: OwnCredentialsAnswer,
): NeverPullVerdict {
  if (policy === 'NeverVerify') return { kind: 'ok' }
  if (policy === 'NeverVerifyAllowlistedImages' && allowlisted(image, allowlist)) return { kind: 'ok' }
  const preloadedRuns = policy === 'NeverVerifyPreloadedImages'
  if (own === 'denied')
    // A kubelet-pulled copy needs a record the pod's credentials match, which credentials the
    // registry refuses cannot have made (unless they were refused only since).
    return preloadedRuns
      ? { kind: 'cached', needs: 'only a preloaded copy (not one the kubelet pulled)' }
      : { kind: 'refused', needs: '' }
  if (preloadedRuns) return { kind: 'ok' }
  // AlwaysVerify, or an image off the allowlist: a preloaded copy is refused, and an image the
  // registry does not have cannot have been pulled by the kubelet (unless deleted only since).
  if (own === 'missing') return { kind: 'refused', needs: '' }
  return {
    kind: 'cached',
    needs:
      own === 'reads'
        ? "only a copy the kubelet pulled with this pod's secret, node credentials or anonymously, never a preloaded one"
        : 'only a copy the kubelet pulled with node credentials or anonymously, never a preloaded one',
  }
}

/**
 * preloadedImagesVerificationAllowlist matching (image_pull_policies.go imageMatches): the pod's
 * image with its tag and digest cut, compared as written (no normalization: `ubuntu` is not
 * `docker.io/library/ubuntu`), against exact names and `prefix/*` entries (any depth).
 */
export function allowlisted(image: string, allowlist: readonly string[]): boolean {
  const name = trimTagDigest(image)
  return allowlist.some((entry) => (entry.endsWith('/*') ? name.startsWith(entry.slice(0, -1)) : name === entry))
}

/** pullmanager trimImageTagDigest: `@digest` cut, then a `:tag` after the last `/`. */
export function trimTagDigest(image: string): string {
  const at = image.indexOf('@')
  const named = at < 0 ? image : image.slice(0, at)
  const colon = named.lastIndexOf(':')
  return colon > named.lastIndexOf('/') ? named.slice(0, colon) : named
}

/**
 * An allowlist entry the kubelet accepts (getAllowlistImagePattern): a name without tag or digest,
 * or a prefix ending in `/*`; undefined when valid, else the kubelet's reason.
 */
export function allowlistProblem(entry: string): string | undefined {
  if (entry.trim() !== entry) return 'leading/trailing spaces are not allowed'
  const wildcard = entry.endsWith('/*')
  const trimmed = wildcard ? entry.slice(0, -1) : entry
  if (trimmed.length === 0) return 'the supplied pattern is too short'
  if (trimmed.includes('*')) return "not a valid wildcard pattern, only patterns ending with '/*' are allowed"
  if (wildcard) return trimmed.length === 1 ? 'at least registry hostname is required' : undefined
  const parsed = tryParseReference(trimmed)
  if (!parsed.ok) return `failed to parse as an image name: ${parsed.error.message}`
  if (trimTagDigest(trimmed) !== trimmed) return 'neither tag nor digest is accepted in an image reference'
  return undefined
}
