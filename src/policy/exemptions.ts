/**
 * `--exempt-image` patterns: globs where `*` matches any run of characters (slashes included) and
 * `?` one character. A pattern is tried against the normalized reference
 * (`docker.io/library/nginx:1.25`, `quay.io/org/app@sha256:…`) and against the image as written in
 * the spec, so both `registry.internal/*` and `nginx:*` do what they say.
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

  /** The first pattern matching the image, or undefined. */
  match(image: string, ref: ImageReference | undefined): string | undefined {
    const forms = ref === undefined ? [image] : [ref.canonical, image]
    return this.#patterns.find((p) => forms.some((f) => globMatch(p, f)))
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
