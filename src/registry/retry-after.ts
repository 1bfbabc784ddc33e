/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns whole seconds from
 * `now`, or undefined when absent or unparseable. Capped: a registry asking us to wait a day
 * still gets reported, but as a bounded number.
 */
const MAX_SECONDS = 24 * 60 * 60

export function retryAfterSeconds(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const trimmed = v.trim()
  if (/^\d+$/.test(trimmed)) return Math.min(MAX_SECONDS, Number(trimmed))
  if (!/[A-Za-z]/.test(trimmed)) return undefined // Date.parse('-5') is a date; an HTTP-date has a weekday
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return undefined
  return Math.min(MAX_SECONDS, Math.max(0, Math.ceil((at - now) / 1000)))
}
