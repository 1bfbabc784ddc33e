/**
 * The logger's second line of defence: the code never puts a credential in a log object, and if
 * it ever did, a value under one of these keys is replaced wherever it sits in the object.
 *
 * A walk that copies only what it changes, instead of pino's path-based redaction: that one
 * clones each logged object and cost more than the whole rest of a cached review (about 100 µs
 * for one decision line); this costs a few µs and covers every depth, not only the listed paths.
 */

/** Keys whose values are credentials wherever they appear (compared lower-cased). */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'password',
  'auth',
  'token',
  'access_token',
  'refresh_token',
  'identitytoken',
  'registrytoken',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
])
export const CENSOR = '[redacted]'
/** Log objects are shallow; anything deeper (or a cycle) is cut here rather than walked. */
const MAX_DEPTH = 10
export const TOO_DEEP = '[too deep]'

/** `value` with every SECRET_KEYS value replaced by CENSOR; the same object when nothing was replaced. Never mutates. */
export function redactSecrets<T>(value: T): T {
  return walk(value, 0) as T
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (depth >= MAX_DEPTH) return TOO_DEEP
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      const w = walk(v, depth + 1)
      if (w !== v) (copy ??= value.slice())[i] = w
    }
    return copy ?? value
  }
  const isError = value instanceof Error
  if (!isError && !isPlain(value)) return value
  let copy: Record<string, unknown> | undefined
  const record = value as Record<string, unknown>
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue
    const v = record[key]
    const w = SECRET_KEYS.has(key.toLowerCase()) && v !== undefined && v !== null ? CENSOR : walk(v, depth + 1)
    if (w !== v) (copy ??= isError ? errorFields(value as Error) : { ...record })[key] = w
  }
  return copy ?? value
}

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** An Error that needs a field replaced becomes a plain object with what pino's serializer would keep. */
function errorFields(err: Error): Record<string, unknown> {
  return { ...err, type: err.constructor.name, message: err.message, stack: err.stack }
}
