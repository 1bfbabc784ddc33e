// --- Go's path.Match (filepath.Match on Linux), Go 1.16+: a malformed pattern never matches ----------
// Runes are code points here; Go steps through bytes when skipping for "*", which only differs for
// non-ASCII names, and image names are ASCII.

export function globMatch(pattern: string, name: string): boolean {
  let p = [...pattern]
  let n = [...name]
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p)
    p = rest
    if (star && chunk.length === 0) return !n.includes('/')
    const here = matchChunk(chunk, n)
    if (here.ok && (here.rest.length === 0 || p.length > 0)) {
      n = here.rest
      continue
    }
    if (here.bad) return false
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i++) {
        const skipped = matchChunk(chunk, n.slice(i + 1))
        if (skipped.ok) {
          if (p.length === 0 && skipped.rest.length > 0) continue
          n = skipped.rest
          continue outer
        }
        if (skipped.bad) return false
      }
    }
    return false
  }
  return n.length === 0
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let start = 0
  while (pattern[start] === '*') start++
  let inRange = false
  let i = start
  for (; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\') {
      if (i + 1 < pattern.length) i++
    } else if (c === '[') inRange = true
    else if (c === ']') inRange = false
    else if (c === '*' && !inRange) break
  }
  return { star: start > 0, chunk: pattern.slice(start, i), rest: pattern.slice(i) }
}

type ChunkResult = { ok: true; rest: string[]; bad: false } | { ok: false; bad: boolean }

/** path.matchChunk: keeps reading the pattern after a mismatch so malformed patterns are caught. */
function matchChunk(chunk: string[], s: string[]): ChunkResult {
  let failed = false
  let c = 0
  let i = 0
  const bad = { ok: false, bad: true } as const
  while (c < chunk.length) {
    if (!failed && i >= s.length) failed = true
    const ch = chunk[c]
    if (ch === '[') {
      const r = failed ? '' : (s[i++] ?? '')
      c++
      const negated = chunk[c] === '^'
      if (negated) c++
      let match = false
      let ranges = 0
      for (;;) {
        if (chunk[c] === ']' && ranges > 0) {
          c++
          break
        }
        const lo = getEsc(chunk, c)
        if (lo === undefined) return bad
        let hi = lo
        c = lo.next
        if (chunk[c] === '-') {
          const upper = getEsc(chunk, c + 1)
          if (upper === undefined) return bad
          hi = upper
          c = upper.next
        }
        const code = r.codePointAt(0)
        if (code !== undefined && code >= rune(lo.rune) && code <= rune(hi.rune)) match = true
        ranges++
      }
      if (match === negated) failed = true
    } else if (ch === '?') {
      if (!failed) {
        if (s[i] === '/') failed = true
        i++
      }
      c++
    } else {
      let literal = ch
      if (ch === '\\') {
        c++
        literal = chunk[c]
        if (literal === undefined) return bad
      }
      if (!failed) {
        if (literal !== s[i]) failed = true
        i++
      }
      c++
    }
  }
  return failed ? { ok: false, bad: false } : { ok: true, rest: s.slice(i), bad: false }
}

function rune(char: string): number {
  return char.codePointAt(0) ?? 0
}

/** path.getEsc: one possibly escaped rune of a character class; undefined when malformed. */
function getEsc(chunk: string[], at: number): { rune: string; next: number } | undefined {
  let c = at
  if (c >= chunk.length || chunk[c] === '-' || chunk[c] === ']') return undefined
  if (chunk[c] === '\\') {
    c++
    if (c >= chunk.length) return undefined
  }
  const rune = chunk[c] ?? ''
  c++
  return c >= chunk.length ? undefined : { rune, next: c }
}
