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

/**
 * The API server refuses Secrets whose data exceeds 1 MiB (core validation MaxSecretSize), so no
 * larger docker config can reach a kubelet; anything bigger comes from a file and is refused unread.
 */
export const MAX_DOCKER_CONFIG_LENGTH = 1024 * 1024
/** encoding/json's maxNestingDepth: deeper documents are a syntax error for the kubelet. */
const MAX_NESTING_DEPTH = 10_000

/** A `.dockerconfigjson`: `{"auths": {KEY: ENTRY}}` (config.go DockerConfigJSON). */
export function parseDockerConfigJson(text: string): DockerConfigParse {
  return parseDocument(text, false)
}

/** A legacy `.dockercfg`: `{KEY: ENTRY}` (config.go DockerConfig). */
export function parseDockerCfg(text: string): DockerConfigParse {
  const root = readDocument(text)
  if ('problem' in root) return { ok: false, problem: root.problem }
  if (root.type === 'null') return { ok: true, entries: [] }
  if (root.type !== 'object') return { ok: false, problem: `the document is ${describe(root)}, not an object of registry keys` }
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
  if (root.type !== 'object') return { ok: false, problem: `the document is ${describe(root)}, not an object with "auths"` }
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
      const bad = value.type === 'object'
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
  return key.replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/)?[^/?#]*@/, (_all, scheme: string | undefined) => `${scheme ?? ''}<redacted>@`)
}

/**
 * encoding/json matches a key to a field case-insensitively with Unicode simple folding. The
 * fields we know are ASCII; the only non-ASCII runes that fold onto ASCII letters are "ſ" (s)
 * and the Kelvin sign (k).
 */
function goFieldName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/\u017f/g, 's').replace(/\u212a/g, 'k')
}

// --- reading JSON the way encoding/json sees it: members in order, duplicates kept -----------------

type Members = ReadonlyArray<readonly [string, JsonValue]>
type JsonValue =
  | { type: 'null' | 'boolean' | 'number' | 'array' }
  | { type: 'string'; value: string }
  /** `members` is undefined below the depth anything is read from. */
  | { type: 'object'; members: Members | undefined }

/** Objects are read member by member down to this depth (document → auths → entry); deeper ones are typed only. */
const READ_DEPTH = 3

function members(value: { type: 'object'; members: Members | undefined }): Members {
  return value.members ?? []
}

function describe(value: JsonValue): string {
  switch (value.type) {
    case 'null': return 'null'
    case 'boolean': return 'true or false'
    case 'number': return 'a number'
    case 'string': return 'a string'
    case 'array': return 'an array'
    case 'object': return 'an object'
  }
}

function readDocument(text: string): JsonValue | { problem: string } {
  if (text.length > MAX_DOCKER_CONFIG_LENGTH) {
    return { problem: `it is ${text.length} characters long; a Secret holds at most ${MAX_DOCKER_CONFIG_LENGTH} bytes` }
  }
  try {
    JSON.parse(text) // the syntax check; its message may quote the text, so only the position is kept
  } catch (err) {
    const at = /position (\d+)/.exec(err instanceof Error ? err.message : '')
    return { problem: `it is not valid JSON${at === null ? '' : ` (at character ${at[1]})`}` }
  }
  if (nestingDepth(text) > MAX_NESTING_DEPTH) return { problem: `it is nested more than ${MAX_NESTING_DEPTH} levels deep` }
  return new Reader(text).value(0)
}

/** Deepest array/object nesting of valid JSON text, skipping strings. */
function nestingDepth(text: string): number {
  let depth = 0
  let max = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') i = stringEnd(text, i)
    else if (c === '{' || c === '[') max = Math.max(max, ++depth)
    else if (c === '}' || c === ']') depth--
  }
  return max
}

/** Index of the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
  return i
}

const LITERAL = /null|true|false|-?[0-9][0-9eE.+-]*/y

/** Walks text JSON.parse has already accepted, so it needs no error handling. */
class Reader {
  private pos = 0
  constructor(private readonly text: string) {}

  value(depth: number): JsonValue {
    this.skipSpace()
    const c = this.text[this.pos]
    if (c === '"') return { type: 'string', value: this.string() }
    if (c === '{') return { type: 'object', members: depth < READ_DEPTH ? this.object(depth) : this.skipNested() }
    if (c === '[') return this.skipNested() ?? { type: 'array' }
    LITERAL.lastIndex = this.pos
    const literal = LITERAL.exec(this.text)?.[0] ?? ''
    this.pos += literal.length
    if (literal === 'null') return { type: 'null' }
    return { type: literal === 'true' || literal === 'false' ? 'boolean' : 'number' }
  }

  private object(depth: number): Members {
    const out: Array<[string, JsonValue]> = []
    this.pos++ // {
    this.skipSpace()
    if (this.text[this.pos] === '}') { this.pos++; return out }
    for (;;) {
      this.skipSpace()
      const key = this.string()
      this.skipSpace()
      this.pos++ // :
      out.push([key, this.value(depth + 1)])
      this.skipSpace()
      if (this.text[this.pos++] === '}') return out
    }
  }

  private string(): string {
    const end = stringEnd(this.text, this.pos)
    const value = JSON.parse(this.text.slice(this.pos, end + 1)) as string
    this.pos = end + 1
    return value
  }

  /** Skips a whole array or object; returns undefined so callers can type the result themselves. */
  private skipNested(): undefined {
    let depth = 0
    do {
      const c = this.text[this.pos]
      if (c === '"') this.pos = stringEnd(this.text, this.pos)
      else if (c === '{' || c === '[') depth++
      else if (c === '}' || c === ']') depth--
      this.pos++
    } while (depth > 0)
    return undefined
  }

  private skipSpace(): void {
    while (/[ \t\n\r]/.test(this.text[this.pos] ?? '')) this.pos++
  }
}
