/**
 * The exec API between the kubelet and a plugin (credentialprovider.kubelet.k8s.io), both ways:
 * the CredentialProviderRequest written to the plugin's stdin, and the CredentialProviderResponse
 * read from its stdout, checked as the kubelet checks it (plugin.go decodeResponse and provide):
 * 1. stdout must be exactly one JSON value;
 * 2. its apiVersion must equal the provider's configured one;
 * 3. strict decode: kind CredentialProviderResponse, no unknown or wrong-case fields, strings where
 *    strings belong, `cacheDuration` a Go duration string;
 * 4. cacheKeyType exactly Image, Registry or Global.
 * A plugin's stdout holds passwords: no problem text ever quotes it, beyond short values that can
 * only be version or enum strings.
 */
import { parseGoDuration } from '../go/duration.js'

export type CacheKeyType = 'Image' | 'Registry' | 'Global'

export interface PluginResponse {
  cacheKeyType: CacheKeyType
  /** Milliseconds; undefined: the provider's defaultCacheDuration applies. */
  cacheDurationMs: number | undefined
  /** Auth-map key (a matchImages-style pattern) → credentials, in the order the plugin wrote them. */
  auth: Array<{ key: string; username: string; password: string }>
}

export type Decoded = { ok: true; response: PluginResponse } | { ok: false; problem: string }

/**
 * The request as the kubelet encodes it: compact JSON in field order kind, apiVersion, image,
 * serviceAccountToken, serviceAccountAnnotations (sorted keys), empty fields left out, Go's HTML-safe
 * escaping, a trailing newline. Older exec API versions carry only the image.
 */
export function encodeRequest(
  apiVersion: string,
  image: string,
  token?: string,
  annotations?: Readonly<Record<string, string>>,
): string {
  const v1 = apiVersion === 'credentialprovider.kubelet.k8s.io/v1'
  const body: Record<string, unknown> = { kind: 'CredentialProviderRequest', apiVersion, image }
  if (v1 && token !== undefined && token !== '') body['serviceAccountToken'] = token
  if (v1 && annotations !== undefined && Object.keys(annotations).length > 0) {
    body['serviceAccountAnnotations'] = Object.fromEntries(
      Object.keys(annotations)
        .sort(byteOrder)
        .map((k) => [k, annotations[k]]),
    )
  }
  return `${goJson(body)}\n`
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** encoding/json escapes <, >, & and U+2028/U+2029 in strings. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

const RESPONSE_FIELDS = ['kind', 'apiVersion', 'cacheKeyType', 'cacheDuration', 'auth']
const OPAQUE = 'error decoding credential provider plugin response from stdout'
/** Values short and plain enough to be a version or an enum, never a credential worth hiding. */
const SHOWABLE = /^[A-Za-z0-9./-]{0,64}$/

export function decodeResponse(stdout: string, apiVersion: string): Decoded {
  let value: unknown
  try {
    value = JSON.parse(stdout)
  } catch {
    // Node's parse errors quote the input: never shown.
    return { ok: false, problem: 'error reading GVK from response: not a single JSON value' }
  }
  const o =
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  const actual = o?.['apiVersion']
  if (actual !== apiVersion) {
    const shown =
      typeof actual === 'string' && SHOWABLE.test(actual) ? actual : actual === undefined ? '' : '(not shown)'
    return {
      ok: false,
      problem: `apiVersion from credential plugin response did not match expected apiVersion:${apiVersion}, actual apiVersion:${shown}`,
    }
  }
  if (o === undefined || o['kind'] !== 'CredentialProviderResponse') return { ok: false, problem: OPAQUE }
  if (Object.keys(o).some((k) => !RESPONSE_FIELDS.includes(k))) return { ok: false, problem: OPAQUE }
  let cacheDurationMs: number | undefined
  const duration = o['cacheDuration']
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'string') return { ok: false, problem: OPAQUE }
    const parsed = parseGoDuration(duration)
    if (!parsed.ok) return { ok: false, problem: OPAQUE }
    cacheDurationMs = parsed.ms
  }
  const auth: PluginResponse['auth'] = []
  const map = o['auth']
  if (map !== undefined && map !== null) {
    if (typeof map !== 'object' || Array.isArray(map)) return { ok: false, problem: OPAQUE }
    for (const [key, entry] of Object.entries(map as Record<string, unknown>)) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { ok: false, problem: OPAQUE }
      const e = entry as Record<string, unknown>
      if (Object.keys(e).some((k) => k !== 'username' && k !== 'password')) return { ok: false, problem: OPAQUE }
      const username = e['username'] ?? ''
      const password = e['password'] ?? ''
      if (typeof username !== 'string' || typeof password !== 'string') return { ok: false, problem: OPAQUE }
      auth.push({ key, username, password })
    }
  }
  const type = o['cacheKeyType'] ?? ''
  if (type !== 'Image' && type !== 'Registry' && type !== 'Global') {
    const shown = typeof type === 'string' && SHOWABLE.test(type) ? type : '(not shown)'
    return { ok: false, problem: `credential provider plugin did not return a valid cacheKeyType: ${shown}` }
  }
  return { ok: true, response: { cacheKeyType: type, cacheDurationMs, auth } }
}
