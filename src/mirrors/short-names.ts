/**
 * Short names on CRI-O nodes: the kubelet hands the runtime the image as the pod spec writes it,
 * and CRI-O asks containers-image's shortnames.Resolve for the names to try, in order; the first
 * that pulls wins (CRI-O server/image_pull.go). containerd expands the same name to docker.io.
 * - A name is short when its first component is no registry: no "/", or a first component without
 *   "." or ":" that is not "localhost" (parseUnnormalizedShortName).
 * - An alias (registries.conf `[aliases]`, or the aliases cache file, which wins) is the only
 *   candidate, with the tag or digest as written, in every mode.
 * - Otherwise each `unqualified-search-registries` entry + "/" + the name as written; with
 *   several and CRI-O's `short_name_mode = "enforcing"` the name is ambiguous and the pull fails.
 * - No alias and no search registry: the pull fails.
 * Pure: the caller reads the files.
 */
import { tryParseReference, type ImageReference } from '../reference/index.js'

/** CRI-O's `short_name_mode` (crio.conf [crio.image]): only these two. */
export type ShortNameMode = 'enforcing' | 'disabled'

export type ShortNameResolution =
  /** Not a short name: pulled as written. */
  | { kind: 'qualified' }
  | { kind: 'alias'; written: string; candidates: [ImageReference]; origin: string }
  | { kind: 'search'; written: string; candidates: ImageReference[]; origin: string }
  /** Several search registries in enforcing mode: CRI-O refuses to guess. */
  | { kind: 'ambiguous'; written: string; candidates: ImageReference[]; origin: string }
  /** No candidate at all, or one that is no valid reference: the pull fails. */
  | { kind: 'unresolvable'; written: string; problem: string }

export interface ShortNameConfig {
  search: readonly string[]
  searchOrigin: string | undefined
  /** Short name → { fully qualified repository, or '' (removed), where it was set }. */
  aliases: ReadonlyMap<string, { target: string; origin: string }>
}

/** The part before the tag and digest, as written. */
function nameOf(input: string): string {
  const at = input.indexOf('@')
  const noDigest = at < 0 ? input : input.slice(0, at)
  const colon = noDigest.lastIndexOf(':')
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest
}

function hasRegistry(name: string): boolean {
  const slash = name.indexOf('/')
  if (slash < 0) return false
  const first = name.slice(0, slash)
  return /[.:]/.test(first) || first === 'localhost'
}

/** Whether `input` (an image as a pod spec writes it) is a short name. */
export function isShortName(input: string): boolean {
  return !hasRegistry(nameOf(input))
}

/** Why `name` cannot be an alias's name (a short name without tag or digest), or undefined. */
export function shortNameProblem(name: string): string | undefined {
  if (name.includes('@')) return `invalid short name ${JSON.stringify(name)}: must not contain digest`
  if (nameOf(name) !== name) return `invalid short name ${JSON.stringify(name)}: must not contain tag`
  if (hasRegistry(name)) return `invalid short name ${JSON.stringify(name)}: must not contain registry`
  if (!tryParseReference(name).ok) return `cannot parse short name ${JSON.stringify(name)}`
  return undefined
}

/** An alias's target, normalized (`docker.io/alpine` → `docker.io/library/alpine`), or why it cannot be one. */
export function aliasTargetProblem(
  target: string,
): { problem: string; name?: never } | { problem?: never; name: string } {
  const quoted = JSON.stringify(target)
  if (target.includes('@')) return { problem: `invalid alias ${quoted}: must not contain digest` }
  if (nameOf(target) !== target) return { problem: `invalid alias ${quoted}: must not contain tag` }
  if (!hasRegistry(target)) return { problem: `invalid alias ${quoted}: must contain registry and repository` }
  const parsed = tryParseReference(target)
  if (!parsed.ok) return { problem: `parsing alias ${quoted}: ${parsed.error.message}` }
  return { name: parsed.ref.name }
}

/**
 * What CRI-O tries for `input`. `cache` is the aliases cache file's table (it wins over the
 * configuration's, and an entry of '' there hides the configuration's alias).
 */
export function resolveShortName(
  input: string,
  config: ShortNameConfig,
  cache: ReadonlyMap<string, { target: string; origin: string }> | undefined,
  mode: ShortNameMode,
): ShortNameResolution {
  if (!isShortName(input)) return { kind: 'qualified' }
  const name = nameOf(input)
  const suffix = input.slice(name.length)
  const alias = cache?.get(name) ?? config.aliases.get(name)
  if (alias !== undefined && alias.target !== '') {
    const candidate = tryParseReference(`${alias.target}${suffix}`)
    if (!candidate.ok)
      return {
        kind: 'unresolvable',
        written: name,
        problem: `alias ${alias.target} in ${alias.origin}: ${candidate.error.message}`,
      }
    return { kind: 'alias', written: name, candidates: [candidate.ref], origin: alias.origin }
  }
  const origin = config.searchOrigin ?? 'registries.conf'
  if (config.search.length === 0)
    return {
      kind: 'unresolvable',
      written: name,
      problem: `short-name ${JSON.stringify(input)} did not resolve to an alias and no unqualified-search registries are defined in ${JSON.stringify(origin)}`,
    }
  const candidates: ImageReference[] = []
  for (const registry of config.search) {
    const candidate = tryParseReference(`${registry}/${input}`)
    if (!candidate.ok)
      return {
        kind: 'unresolvable',
        written: name,
        problem: `creating reference with unqualified-search registry ${JSON.stringify(registry)}: ${candidate.error.message}`,
      }
    candidates.push(candidate.ref)
  }
  if (mode === 'enforcing' && candidates.length > 1) return { kind: 'ambiguous', written: name, candidates, origin }
  return { kind: 'search', written: name, candidates, origin }
}

/** CRI-O's words for an ambiguous name (server/image_pull.go), with the tag the kubelet adds. */
export function ambiguousReason(input: string): string {
  const name = nameOf(input)
  const tagged = input === name ? `${input}:latest` : input
  return `short name mode is enforcing, but image name ${tagged} returns ambiguous list`
}
