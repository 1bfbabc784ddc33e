/**
 * Go's time.ParseDuration, which metav1.Duration uses for `defaultCacheDuration` and a response's
 * `cacheDuration`: `[-+]` then one or more `<decimal><unit>` with units ns, us (µs, μs), ms, s, m, h;
 * `0` alone is allowed. Returns milliseconds (fractions kept), or an error text as Go words it.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}
const PART = /^(\d*)(?:\.(\d*))?([^\d.]*)/

export type GoDuration = { ok: true; ms: number } | { ok: false; error: string }

export function parseGoDuration(text: string): GoDuration {
  const quoted = JSON.stringify(text)
  let s = text
  let sign = 1
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1
    s = s.slice(1)
  }
  if (s === '0') return { ok: true, ms: 0 }
  if (s === '') return { ok: false, error: `time: invalid duration ${quoted}` }
  let total = 0
  while (s !== '') {
    const m = PART.exec(s)
    const whole = m?.[1] ?? ''
    const fraction = m?.[2]
    if (m === null || (whole === '' && (fraction === undefined || fraction === '')))
      return { ok: false, error: `time: invalid duration ${quoted}` }
    const unit = m[3] ?? ''
    if (unit === '') return { ok: false, error: `time: missing unit in duration ${quoted}` }
    const perUnit = UNIT_MS[unit]
    if (perUnit === undefined)
      return { ok: false, error: `time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}` }
    total += Number(`${whole === '' ? '0' : whole}.${fraction ?? '0'}`) * perUnit
    s = s.slice(m[0].length)
  }
  // Go refuses more than about 292 years (int64 nanoseconds).
  if (total > 9_223_372_036_854) return { ok: false, error: `time: invalid duration ${quoted}` }
  return { ok: true, ms: sign * total }
}

/** Go's Duration.String for the values messages quote: `-1m0s`, `12h0m0s`, `1.5s`, `0s`. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s'
  const sign = ms < 0 ? '-' : ''
  let rest = Math.abs(ms)
  if (rest < 1000) {
    if (rest >= 1) return `${sign}${trim(rest)}ms`
    if (rest >= 1e-3) return `${sign}${trim(rest * 1000)}µs`
    return `${sign}${trim(rest * 1e6)}ns`
  }
  const h = Math.floor(rest / 3_600_000)
  rest -= h * 3_600_000
  const m = Math.floor(rest / 60_000)
  rest -= m * 60_000
  const s = `${trim(rest / 1000)}s`
  if (h > 0) return `${sign}${h}h${m}m${s}`
  if (m > 0) return `${sign}${m}m${s}`
  return `${sign}${s}`
}

function trim(n: number): string {
  return String(Math.round(n * 1e9) / 1e9)
}
