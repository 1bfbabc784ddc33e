/**
 * `--exempt-image` patterns: globs where `*` matches any run of characters (slashes included) and
 * `?` one character, matched against the normalized reference only (`docker.io/library/nginx:1.25`,
 * `quay.io/org/app@sha256:…`). Not the image as written: `nginx:*` would then also match
 * `nginx:5000/evil/app`, another registry. An invalid reference is never exempt: the kubelet
 * refuses it whatever the pattern says.
 */
import type { ImageReference } from '../reference/index.js'

export class ImageExemptions {
  readonly #patterns: readonly string[]

  constructor(patterns: readonly string[]) {
    this.#patterns = [...patterns]
  }

  get size(): number {
    return this.#patterns.length
  }

  /** The first pattern matching the normalized reference, or undefined. */
  match(ref: ImageReference): string | undefined {
    return this.#patterns.find((p) => globMatch(p, ref.canonical))
  }
}

/**
 * Wildcard match without regular expressions: the classic two-pointer walk that remembers the
 * last `*` and retries from there, O(pattern × input) at worst. A regex with several `.*` can
 * backtrack exponentially on hostile image names, and the names come from pod specs.
 */
export function globMatch(pattern: string, input: string): boolean {
  let p = 0
  let i = 0
  let star = -1
  let retry = 0
  while (i < input.length) {
    const c = pattern[p]
    if (c !== undefined && c !== '*' && (c === '?' || c === input[i])) {
      p++
      i++
    } else if (c === '*') {
      star = p++
      retry = i
    } else if (star >= 0) {
      p = star + 1
      i = ++retry
    } else {
      return false
    }
  }
  while (pattern[p] === '*') p++
  return p === pattern.length
}
