/**
 * The repositories of a registry's catalog nearest to one that does not exist, for the fix of a
 * RepositoryNotFound: the same spelling with a typo (`team/paymnets`), then the same name under
 * another namespace (`team-b/payments` for `team-a/payments`), as tag suggestions are made.
 */
import { osaDistance, typoLimit } from './tag-suggestions.js'

/** A catalog is bounded (registry/catalog.ts); this bounds the work on it too. */
const MAX_INPUT = 5_000

export function suggestRepositories(wanted: string, existing: readonly string[], max = 3): string[] {
  const repos = existing.length > MAX_INPUT ? existing.slice(0, MAX_INPUT) : existing
  const w = wanted.toLowerCase()
  const limit = Math.max(1, typoLimit(w.length))
  const base = w.slice(w.lastIndexOf('/') + 1)
  const scored: Array<{ name: string; d: number }> = []
  const cells = { count: 0 }
  for (const name of repos) {
    if (name === wanted) continue
    const d = osaDistance(w, name.toLowerCase(), limit, cells)
    if (d <= limit) scored.push({ name, d })
    else if (name.slice(name.lastIndexOf('/') + 1).toLowerCase() === base) scored.push({ name, d: limit + 1 })
  }
  scored.sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
  return scored.slice(0, Math.max(0, Math.floor(max))).map((s) => s.name)
}
