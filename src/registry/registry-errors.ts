import { jsonObject } from './json-body.js'

/**
 * The JSON error body of the distribution API: `{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`.
 * Codes are upper-case identifiers; anything else in the body is ignored (and never echoed:
 * a hostile registry could put anything there).
 */
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/

export function registryErrorCodes(body: Buffer): string[] {
  if (body.length === 0) return []
  const errors = jsonObject(body)?.errors
  if (!Array.isArray(errors)) return []
  const codes: string[] = []
  for (const e of errors.slice(0, 16)) {
    const code = (e as { code?: unknown } | null)?.code
    if (typeof code === 'string' && CODE.test(code)) codes.push(code)
  }
  return codes
}
