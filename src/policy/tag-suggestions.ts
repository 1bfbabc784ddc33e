/**
 * Which existing tags to name when the tag asked for does not exist. Two kinds of nearness and
 * nothing else, because a wrong suggestion sends a developer to deploy the wrong thing:
 *  1. Spelling: the same numbers written differently — `lates` → `latest`, `Latest` → `latest`,
 *     `1.25.3-alpne` → `1.25.3-alpine`, `1.25.3` → `v1.25.3`. Optimal-string-alignment
 *     Damerau-Levenshtein, case-insensitive, within a limit that grows with length. The digit
 *     runs must be identical: a different number is another version or build, never a typo
 *     (`3f2a1b9` is not "nearly" `3f2a1b8`, `1.25.3` is not "nearly" `12.5.3`).
 *  2. Version: same family (prefix and suffix: `v1.2.3`, `1.25-alpine`), same major. Deeper
 *     agreement first (`1.25.x` before `1.24.x`); within a line the nearest lower version, the
 *     line's own floating tag (`1.25`), then the rest by distance; a missing line (`1.25`)
 *     suggests its members, newest first.
 * Spelling matches come first: they keep the exact version that was asked for.
 */
import { tagProblem } from '../reference/grammar.js'

/** listTags stops at 10 000 tags; anything beyond is ignored so the work stays a few ms. */
export const MAX_SUGGESTION_INPUT = 10_000

export function suggestTags(wanted: string, existing: readonly string[], max = 3): string[] {
  const limit = Math.floor(max)
  if (!(limit > 0) || tagProblem(wanted) !== undefined) return []
  // Duplicates in the input are harmless (the output is a set); deduplicating 10 000 tags first
  // would cost more than the rest of the work.
  const tags = existing.length > MAX_SUGGESTION_INPUT ? existing.slice(0, MAX_SUGGESTION_INPUT) : existing
  const out = new Set<string>()
  // `2.4.l` for `2.4.1`: a letter typed for the digit it looks like is the one typo that changes
  // the digits, so it is undone first and the tag it then names (and its neighbours) come first.
  const undone = digitLookalikes(wanted)
  const first =
    undone === wanted
      ? []
      : [...tags.filter((t) => t === undone), ...bySpelling(undone, tags), ...byVersion(undone, tags)]
  for (const tag of [...first, ...bySpelling(wanted, tags), ...byVersion(wanted, tags)]) {
    if (out.size >= limit) break
    out.add(tag)
  }
  return [...out]
}

const LOOKALIKES: Readonly<Record<string, string>> = { l: '1', I: '1', O: '0', o: '0' }
const NUMERIC_NEIGHBOUR = /^[0-9.]$/

/**
 * `l`/`I` → `1` and `O`/`o` → `0` where they sit among digits: after a digit or a dot, and before
 * a digit, a dot, a dash or the end (`2.4.l`, `1.2O`, `v1.O.3-alpine`); `latest` stays as it is.
 */
export function digitLookalikes(tag: string): string {
  let out = ''
  for (let i = 0; i < tag.length; i++) {
    const c = tag[i]!
    const digit = Object.hasOwn(LOOKALIKES, c) ? LOOKALIKES[c] : undefined
    const prev = tag[i - 1]
    const next = tag[i + 1]
    const fits =
      prev !== undefined &&
      NUMERIC_NEIGHBOUR.test(prev) &&
      (next === undefined || next === '-' || next === '_' || NUMERIC_NEIGHBOUR.test(next))
    out += digit !== undefined && fits ? digit : c
  }
  return out
}

/** A few ms of table cells (about 12 ns each); real tag lists need a few thousand. */
const MAX_SPELLING_CELLS = 250_000

/**
 * How many edits still read as a typo of a tag this long. Short tags get none beyond case:
 * `v1` → `v2` or `lts` → `lst` is a different tag, not a slip of the finger.
 */
export function typoLimit(length: number): number {
  if (length <= 3) return 0
  if (length <= 5) return 1
  if (length <= 9) return 2
  return 3
}

/** A commit id (`3f2a1b9`, `sha-3f2a1b9…`): one letter off is another commit, so only case may differ. */
const HEX_RUN = /[0-9a-f]{7,}/gi
function looksLikeCommit(tag: string): boolean {
  for (const [run] of tag.matchAll(HEX_RUN)) if (/\d/.test(run) && /[a-f]/i.test(run)) return true
  return false
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

/** Whether a and b hold the same runs of digits in the same order (`1.25.3` and `v1.25.3` do). */
export function sameDigitRuns(a: string, b: string): boolean {
  let i = 0
  let j = 0
  for (;;) {
    while (i < a.length && !isDigit(a.charCodeAt(i))) i++
    while (j < b.length && !isDigit(b.charCodeAt(j))) j++
    if (i === a.length || j === b.length) return i === a.length && j === b.length
    while (isDigit(a.charCodeAt(i)) && a.charCodeAt(i) === b.charCodeAt(j)) {
      i++
      j++
    }
    // One run went on where the other stopped, or a digit differs.
    if (isDigit(a.charCodeAt(i)) || isDigit(b.charCodeAt(j))) return false
  }
}

function bySpelling(wanted: string, tags: readonly string[]): string[] {
  const w = wanted.toLowerCase()
  const limit = looksLikeCommit(wanted) ? 0 : typoLimit(wanted.length)
  const found: Array<{ tag: string; d: number }> = []
  const cells = { count: 0 }
  for (const tag of tags) {
    // Only a hostile list (thousands of long tags alike but for a few letters) gets here; the
    // tags seen so far still give a deterministic answer.
    if (cells.count > MAX_SPELLING_CELLS) break
    if (tag === wanted || Math.abs(tag.length - w.length) > limit || !sameDigitRuns(wanted, tag)) continue
    const d = osaDistance(w, tag.toLowerCase(), limit, cells)
    if (d <= limit) found.push({ tag, d })
  }
  found.sort((a, b) => a.d - b.d || compareText(a.tag, b.tag))
  return found.map((f) => f.tag)
}

/** Three rows of a table for tags of up to 128 characters; longer inputs get their own. */
const SCRATCH_WIDTH = 132
const scratch = new Int32Array(3 * SCRATCH_WIDTH)

/**
 * Optimal string alignment distance, or limit + 1 for anything farther. A typo leaves the ends
 * alike, so the common prefix and suffix are cut off first; the rest is computed only within
 * `limit` of the diagonal, on three rotating rows. The only out-of-band cells ever read are the
 * two at the band's edges, set to "far" on each row. `cells` counts the work done.
 */
export function osaDistance(a: string, b: string, limit: number, cells = { count: 0 }): number {
  const far = limit + 1
  let lo = 0
  while (lo < a.length && lo < b.length && a.charCodeAt(lo) === b.charCodeAt(lo)) lo++
  let endA = a.length
  let endB = b.length
  while (endA > lo && endB > lo && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) {
    endA--
    endB--
  }
  const n = endA - lo
  const m = endB - lo
  if (Math.abs(n - m) > limit) return far
  if (n === 0 || m === 0) return Math.max(n, m)
  if (limit === 0) return far
  const width = m + 2
  const t = width <= SCRATCH_WIDTH ? scratch : new Int32Array(3 * width)
  const row = (i: number): number => (i % 3) * width
  for (let j = 0; j <= Math.min(m, limit); j++) t[j] = j
  if (limit < m) t[limit + 1] = far
  for (let i = 1; i <= n; i++) {
    const cur = row(i)
    const prev = row(i - 1)
    const older = row(i + 1) // (i - 2) mod 3
    t[cur] = i <= limit ? i : far
    if (i - limit - 1 > 0) t[cur + i - limit - 1] = far
    const hi = Math.min(m, i + limit)
    const ca = a.charCodeAt(lo + i - 1)
    let best = t[cur]!
    for (let j = Math.max(1, i - limit); j <= hi; j++) {
      const cb = b.charCodeAt(lo + j - 1)
      let d = Math.min(t[prev + j]! + 1, t[cur + j - 1]! + 1, t[prev + j - 1]! + (ca === cb ? 0 : 1))
      if (i > 1 && j > 1 && ca === b.charCodeAt(lo + j - 2) && a.charCodeAt(lo + i - 2) === cb)
        d = Math.min(d, t[older + j - 2]! + 1)
      t[cur + j] = Math.min(d, far)
      if (d < best) best = d
    }
    cells.count += hi - Math.max(1, i - limit) + 1
    if (best > limit) return far
    t[cur + hi + 1] = far
  }
  return Math.min(t[row(n) + m]!, far)
}

/** A tag read as prefix, dotted numbers, suffix: `v1.2.3`, `1.25-alpine3.18`, `release-7`. */
export interface Version {
  /** The numbers start here; before is the prefix (`v`, `release-`). */
  prefixEnd: number
  /** The suffix (`-alpine3.18`) starts here. */
  suffixStart: number
  nums: number[]
}

/** Longer digit runs (timestamps, build ids) lose precision as numbers: not versions. */
const MAX_COMPONENT_DIGITS = 15

/**
 * The numbers are the first run of digits and dots; everything after belongs to the suffix.
 * Scanned by hand without building strings: this runs for every tag of the list.
 */
export function parseVersion(tag: string): Version | undefined {
  let i = 0
  while (i < tag.length && !isDigit(tag.charCodeAt(i))) i++
  if (i === tag.length) return undefined
  const prefixEnd = i
  const nums: number[] = []
  for (;;) {
    const start = i
    while (isDigit(tag.charCodeAt(i))) i++
    if (i - start > MAX_COMPONENT_DIGITS) return undefined
    nums.push(Number(tag.slice(start, i)))
    if (tag.charCodeAt(i) !== 0x2e || !isDigit(tag.charCodeAt(i + 1))) break
    i++
  }
  return { prefixEnd, suffixStart: i, nums }
}

/** Prefix and suffix agree, ignoring case: `1.25.2-alpine` is in the family of `1.25.3-Alpine`. */
function sameFamily(a: string, va: Version, b: string, vb: Version): boolean {
  if (va.prefixEnd !== vb.prefixEnd || a.length - va.suffixStart !== b.length - vb.suffixStart) return false
  return (
    a.slice(0, va.prefixEnd).toLowerCase() === b.slice(0, vb.prefixEnd).toLowerCase() &&
    a.slice(va.suffixStart).toLowerCase() === b.slice(vb.suffixStart).toLowerCase()
  )
}

enum Kind {
  /** Same numbers, spelled otherwise (`1.025` for `1.25`). */
  Same,
  /** Inside the wanted line (`1.25.4` for `1.25`). */
  Descendant,
  /** Parts ways with the wanted one at `common` (`1.25.2` for `1.25.3`). */
  Sibling,
  /** The floating tag of a line holding the wanted one (`1.25` for `1.25.3`). */
  Ancestor,
}

/** `common`: leading numbers shared with the wanted tag; `distance`: at the first that differs. */
type Ranked = { tag: string; nums: number[]; common: number; kind: Kind; distance: number; lower: boolean }

function byVersion(wanted: string, tags: readonly string[]): string[] {
  const w = parseVersion(wanted)
  if (w === undefined) return []
  const ranked: Ranked[] = []
  for (const tag of tags) {
    if (tag === wanted) continue
    const e = parseVersion(tag)
    // A different major is a different product line: never "near".
    if (e === undefined || e.nums[0] !== w.nums[0] || !sameFamily(wanted, w, tag, e)) continue
    let common = 0
    while (common < w.nums.length && common < e.nums.length && w.nums[common] === e.nums[common]) common++
    const kind =
      common === w.nums.length
        ? common === e.nums.length
          ? Kind.Same
          : Kind.Descendant
        : common === e.nums.length
          ? Kind.Ancestor
          : Kind.Sibling
    const diff = kind === Kind.Sibling ? (e.nums[common] ?? 0) - (w.nums[common] ?? 0) : 0
    ranked.push({ tag, nums: e.nums, common, kind, distance: Math.abs(diff), lower: diff < 0 })
  }
  ranked.sort(compareRanked)
  // Within each level, the line's floating tag goes right after the nearest sibling: the best
  // real version first, then the tag that always follows that line.
  const out: string[] = []
  for (let i = 0; i < ranked.length; ) {
    let j = i
    while (j < ranked.length && ranked[j]?.common === ranked[i]?.common) j++
    const level = ranked.slice(i, j)
    const a = level.findIndex((r) => r.kind === Kind.Ancestor)
    if (a > 1) level.splice(1, 0, ...level.splice(a, 1))
    out.push(...level.map((r) => r.tag))
    i = j
  }
  return out
}

function compareRanked(a: Ranked, b: Ranked): number {
  if (a.common !== b.common) return b.common - a.common
  if (a.kind !== b.kind) return a.kind - b.kind
  const from = a.common + 1
  if (a.kind === Kind.Descendant) {
    // The line's newest member first, shorter (floating) tags before their members.
    return a.nums.length - b.nums.length || compareNums(b.nums, a.nums, a.common) || compareText(a.tag, b.tag)
  }
  if (a.kind === Kind.Sibling) {
    if (a.distance !== b.distance) return a.distance - b.distance
    if (a.lower !== b.lower) return a.lower ? -1 : 1
    if (a.nums.length !== b.nums.length) return a.nums.length - b.nums.length
    // Nearest to the wanted version: the highest of the lower ones, the lowest of the higher ones.
    const byNums = a.lower ? compareNums(b.nums, a.nums, from) : compareNums(a.nums, b.nums, from)
    if (byNums !== 0) return byNums
  }
  return compareText(a.tag, b.tag)
}

function compareNums(a: readonly number[], b: readonly number[], from: number): number {
  for (let i = from; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1)
    if (d !== 0) return d
  }
  return 0
}

/** Code-unit order, not locale order: the same answer on every node. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
