/**
 * Docker config parsing exactly as the kubelet does it (kubernetes pkg/credentialprovider/config.go:
 * DockerConfigJSON, DockerConfig, DockerConfigEntry.UnmarshalJSON, decodeDockerConfigFieldAuth; v1.33+).
 * The kubelet decodes with Go's encoding/json, whose rules differ from JSON.parse in ways a secret can
 * trip over, so we follow Go rather than JavaScript:
 *
 * 1. Any type mismatch anywhere in a known field is an error — and any error makes the kubelet fail
 *    every pull of the pod (secrets/secrets.go MakeDockerKeyring returns it). Unknown fields are ignored.
 * 2. Field names match case-insensitively ("Auth", "USERNAME"), Unicode-folded ("ſ" is "s").
 * 3. `null` is "no value": a null field keeps what an earlier duplicate set; a null entry is an entry
 *    with empty credentials; a null `auths` (or null document) holds no entries.
 * 4. A repeated `auths` merges into the map already read (Go reuses a non-nil map); a repeated key
 *    inside a map replaces the earlier entry.
 * 5. `auth`, when non-empty, replaces username AND password with base64(user:pass) split at the first
 *    ":" (padded when it ends in "=", unpadded otherwise); no ":" is an error. `email` is type-checked
 *    and dropped; `identitytoken`/`registrytoken` are not fields the kubelet knows, so they are ignored.
 *
 * Problems name keys and field names, never values.
 */
import { describe, members, readDocument, type JsonValue, type Members } from '../go/json.js'

export interface DockerConfigEntry {
  /** The registry key as written in the file (before normalization). */
  key: string
  username: string
  password: string
}

export type DockerConfigParse =
  | {
      ok: true
      entries: DockerConfigEntry[]
      /**
       * Only from parseDockerConfigFile: registries whose credentials live in a credential helper
       * (`credHelpers` keys; "*" for a `credsStore`). The kubelet never runs helpers, so it cannot
       * use them.
       */
      helpers?: string[]
    }
  | { ok: false; problem: string }

export { MAX_DOCKER_CONFIG_LENGTH } from '../go/json.js'

/** A `.dockerconfigjson`: `{"auths": {KEY: ENTRY}}` (config.go DockerConfigJSON). */
export function parseDockerConfigJson(text: string): DockerConfigParse {
  return parseDocument(text, false)
}

/** A legacy `.dockercfg`: `{KEY: ENTRY}` (config.go DockerConfig). */
export function parseDockerCfg(text: string): DockerConfigParse {
  const root = readDocument(text)
  if ('problem' in root) return { ok: false, problem: root.problem }
  if (root.type === 'null') return { ok: true, entries: [] }
  if (root.type !== 'object')
    return { ok: false, problem: `the document is ${describe(root)}, not an object of registry keys` }
  const entries = new Map<string, DockerConfigEntry>()
  const problem = readEntries(members(root), entries)
  return problem === undefined ? { ok: true, entries: [...entries.values()] } : { ok: false, problem }
}

/**
 * A node's `~/.docker/config.json`: the kubelet reads it with the same DockerConfigJSON type
 * (config.go readDockerConfigJSONFileFromBytes), so `credsStore`/`credHelpers` are invisible to it.
 */
export function parseDockerConfigFile(text: string): DockerConfigParse {
  return parseDocument(text, true)
}

function parseDocument(text: string, reportHelpers: boolean): DockerConfigParse {
  const root = readDocument(text)
  if ('problem' in root) return { ok: false, problem: root.problem }
  if (root.type === 'null') return { ok: true, entries: [], ...(reportHelpers ? { helpers: [] } : {}) }
  if (root.type !== 'object')
    return { ok: false, problem: `the document is ${describe(root)}, not an object with "auths"` }
  let auths: Map<string, DockerConfigEntry> | undefined
  const helpers: string[] = []
  for (const [name, value] of members(root)) {
    const field = goFieldName(name)
    if (field === 'auths') {
      if (value.type === 'null') auths = undefined
      else if (value.type !== 'object') return { ok: false, problem: `"auths" is ${describe(value)}, not an object` }
      else {
        auths ??= new Map()
        const problem = readEntries(members(value), auths)
        if (problem !== undefined) return { ok: false, problem }
      }
    } else if (field === 'httpheaders') {
      // DockerConfigJSON.HTTPHeaders map[string]string: unused, but still decoded, so still checked.
      const bad =
        value.type === 'object'
          ? members(value).some(([, header]) => header.type !== 'string' && header.type !== 'null')
          : value.type !== 'null'
      if (bad) return { ok: false, problem: '"HttpHeaders" must be an object of header names to strings' }
    } else if (reportHelpers && field === 'credsstore') {
      if (value.type === 'string' && value.value !== '') helpers.push('*')
    } else if (reportHelpers && field === 'credhelpers') {
      if (value.type === 'object') for (const [registry] of members(value)) helpers.push(registry)
    }
  }
  const entries = auths === undefined ? [] : [...auths.values()]
  return reportHelpers ? { ok: true, entries, helpers: [...new Set(helpers)] } : { ok: true, entries }
}

/** Decodes each `KEY: ENTRY` member into `into` (a repeated key replaces the earlier entry). */
function readEntries(entries: Members, into: Map<string, DockerConfigEntry>): string | undefined {
  for (const [key, value] of entries) {
    const entry = readEntry(key, value)
    if (typeof entry === 'string') return entry
    into.set(key, entry)
  }
  return undefined
}

/** DockerConfigEntry.UnmarshalJSON: decode into dockerConfigEntryWithAuth, then apply `auth`. */
function readEntry(key: string, value: JsonValue): DockerConfigEntry | string {
  const entry: DockerConfigEntry = { key, username: '', password: '' }
  const where = `entry ${JSON.stringify(displayKey(key))}`
  if (value.type === 'null') return entry
  if (value.type !== 'object') return `${where} is ${describe(value)}, not an object`
  let auth = ''
  for (const [name, field] of members(value)) {
    const known = goFieldName(name)
    if (known !== 'username' && known !== 'password' && known !== 'email' && known !== 'auth') continue
    if (field.type === 'null') continue
    if (field.type !== 'string') return `field ${JSON.stringify(known)} of ${where} is ${describe(field)}, not a string`
    if (known === 'username') entry.username = field.value
    else if (known === 'password') entry.password = field.value
    else if (known === 'auth') auth = field.value
  }
  if (auth === '') return entry
  // decodeDockerConfigFieldAuth: the "=" suffix (after TrimSpace) picks padded StdEncoding.
  const decoded = decodeGoBase64(auth, /[=]$/.test(auth.trim()))
  if (decoded === undefined) return `auth field of ${where} is not valid base64 (it must be base64 of user:password)`
  const text = decoded.toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return `auth field of ${where} is not base64 of user:password (no ":" after decoding)`
  entry.username = text.slice(0, colon)
  entry.password = text.slice(colon + 1)
  return entry
}

const BASE64_ALPHABET = /^[A-Za-z0-9+/]*$/

/**
 * Go's base64.StdEncoding (padded) or RawStdEncoding (unpadded) DecodeString: "\r" and "\n" are
 * skipped, padding must be exact, trailing bits may be non-zero. Undefined when Go would fail.
 */
export function decodeGoBase64(text: string, padded: boolean): Buffer | undefined {
  const s = text.replace(/[\r\n]/g, '')
  let body = s
  if (padded) {
    if (s.length % 4 !== 0) return undefined
    const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0
    body = s.slice(0, s.length - pad)
    if (pad > 0 && body.length % 4 !== 4 - pad) return undefined
  } else if (s.length % 4 === 1) {
    return undefined
  }
  if (!BASE64_ALPHABET.test(body)) return undefined
  return Buffer.from(body, 'base64')
}

/** A registry key for messages and labels: any `user:password@` written into it is hidden. */
export function displayKey(key: string): string {
  return key.replace(
    /^((?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/)?[^/?#]*@/,
    (_all, scheme: string | undefined) => `${scheme ?? ''}<redacted>@`,
  )
}

/**
 * encoding/json matches a key to a field case-insensitively with Unicode simple folding. The
 * fields we know are ASCII; the only non-ASCII runes that fold onto ASCII letters are "ſ" (s)
 * and the Kelvin sign (k).
 */
function goFieldName(name: string): string {
  return name
    .replace(/[A-Z]/g, (c) => c.toLowerCase())
    .replace(/\u017f/g, 's')
    .replace(/\u212a/g, 'k')
}
