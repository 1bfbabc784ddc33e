/**
 * JSON as Go's encoding/json and containers-image's ParanoidUnmarshalJSONObject read it, for policy.json
 * and sigstore payloads. JSON.parse only checks the syntax: it merges repeated keys, which paranoid
 * decoding must refuse, so a reader keeps object members in order with duplicates. Every decoder fails
 * with Go's wording, since that is what CRI-O reports.
 */

/** A JSON value with object members in order and duplicates kept. */
export type GoJson =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'array'; items: GoJson[] }
  | { kind: 'object'; members: Array<[string, GoJson]> }

/** A problem reading JSON, worded as containers-image words it. */
export class GoJsonError extends Error {}

/** A key or value quoted in a message, where containers-image uses %q. */
export const q = (s: string): string => JSON.stringify(s)

export function readGoJson(text: string): GoJson {
  try {
    JSON.parse(text) // the syntax check; its message may quote the text, so only the position is kept
  } catch (err) {
    const message = err instanceof Error ? err.message : ''
    const at = Number(/position (\d+)/.exec(message)?.[1] ?? (/end of JSON/i.test(message) ? text.length : 0))
    throw new GoJsonError(at >= text.length ? 'unexpected end of JSON input' : `invalid JSON at character ${at + 1}`)
  }
  return new Reader(text).value()
}

/** Walks text JSON.parse has already accepted, so it needs no error handling. */
class Reader {
  private pos = 0
  constructor(private readonly text: string) {}

  value(): GoJson {
    const c = this.peek()
    if (c === '"') return { kind: 'string', value: this.string() }
    if (c === '{') {
      const members: Array<[string, GoJson]> = []
      this.pos++
      while (this.peek() !== '}') {
        const key = this.string()
        this.peek()
        this.pos++ // ":"
        members.push([key, this.value()])
        if (this.peek() === ',') this.pos++
      }
      this.pos++
      return { kind: 'object', members }
    }
    if (c === '[') {
      const items: GoJson[] = []
      this.pos++
      while (this.peek() !== ']') {
        items.push(this.value())
        if (this.peek() === ',') this.pos++
      }
      this.pos++
      return { kind: 'array', items }
    }
    const literal = /null|true|false|-?[0-9][0-9eE.+-]*/y
    literal.lastIndex = this.pos
    const text = literal.exec(this.text)?.[0] ?? ''
    this.pos += text.length
    if (text === 'null') return { kind: 'null' }
    if (text === 'true' || text === 'false') return { kind: 'bool', value: text === 'true' }
    return { kind: 'number', text }
  }

  /** Skips blanks; the next character, not consumed. */
  private peek(): string | undefined {
    while (/[ \t\n\r]/.test(this.text[this.pos] ?? '')) this.pos++
    return this.text[this.pos]
  }

  private string(): string {
    this.peek()
    let end = this.pos + 1
    while (this.text[end] !== '"') end += this.text[end] === '\\' ? 2 : 1
    const value = JSON.parse(this.text.slice(this.pos, end + 1)) as string
    this.pos = end + 1
    return value
  }
}

/** ParanoidUnmarshalJSONObject: an object; each key once; `resolve` decodes a key's value or refuses the key. */
export function paranoid(value: GoJson, resolve: (key: string) => ((value: GoJson) => void) | undefined): void {
  if (value.kind !== 'object') throw new GoJsonError(`JSON object expected, got ${goToken(value)}`)
  const seen = new Set<string>()
  for (const [key, member] of value.members) {
    if (seen.has(key)) throw new GoJsonError(`Duplicate key ${q(key)}`)
    seen.add(key)
    const decode = resolve(key)
    if (decode === undefined) throw new GoJsonError(`Unknown key ${q(key)}`)
    decode(member)
  }
}

/** ParanoidUnmarshalJSONObjectExactFields: exactly these keys. */
export function exactFields(value: GoJson, fields: Record<string, (value: GoJson) => void>): void {
  const seen = new Set<string>()
  paranoid(value, (key) => {
    if (!Object.hasOwn(fields, key)) return undefined
    seen.add(key)
    return fields[key]
  })
  const missing = Object.keys(fields).find((key) => !seen.has(key))
  if (missing !== undefined) throw new GoJsonError(`Key ${q(missing)} missing in a JSON object`)
}

/** A decoder for a "type" member that must equal `type` (null leaves Go's field empty). */
export function expectType(type: string, problem: string): (value: GoJson) => void {
  return (v) => {
    const got = decodeString(v, 'string') ?? ''
    if (got !== type) throw new GoJsonError(`${problem} ${q(got)}`)
  }
}

/** json.Unmarshal into prCommon/prmCommon: "type" matched case-insensitively, the last one winning. */
export function typeField(value: GoJson, goType: string, fieldType: string): string {
  if (value.kind === 'null') return ''
  if (value.kind !== 'object') throw typeError(value, goType)
  let type = ''
  for (const [key, member] of value.members) {
    if (key.toLowerCase() !== 'type') continue
    if (member.kind === 'string') type = member.value
    else if (member.kind !== 'null') {
      throw new GoJsonError(
        `json: cannot unmarshal ${kindName(member)} into Go struct field ${goType.split('.')[1]}.type of type ${fieldType}`,
      )
    }
  }
  return type
}

/** A Go string field: null leaves it unset (undefined). */
export function decodeString(value: GoJson, goType: string): string | undefined {
  if (value.kind === 'null') return undefined
  if (value.kind !== 'string') throw typeError(value, goType)
  return value.value
}

/** A Go float64 field; undefined for null. */
export function decodeFloat(value: GoJson): number | undefined {
  if (value.kind === 'null') return undefined
  if (value.kind !== 'number') throw typeError(value, 'float64')
  const n = Number(value.text)
  if (!Number.isFinite(n)) {
    throw new GoJsonError(`json: cannot unmarshal number ${value.text} into Go value of type float64`)
  }
  return n
}

/** A Go []byte field: a base64 string; null is nil. */
export function decodeBytes(value: GoJson): Buffer | null {
  const s = decodeString(value, '[]uint8')
  if (s === undefined) return null
  const decoded = goBase64(s)
  if (!Buffer.isBuffer(decoded)) throw new GoJsonError(decoded.problem)
  return decoded
}

export function decodeStrings(value: GoJson): string[] | null {
  if (value.kind === 'null') return null
  if (value.kind !== 'array') throw typeError(value, '[]string')
  return value.items.map((item) => decodeString(item, 'string') ?? '')
}

export function decodeBytesList(value: GoJson): Array<Buffer | null> | null {
  if (value.kind === 'null') return null
  if (value.kind !== 'array') throw typeError(value, '[][]uint8')
  return value.items.map(decodeBytes)
}

function kindName(value: GoJson): string {
  return value.kind === 'bool' ? 'bool' : value.kind
}

export function typeError(value: GoJson, goType: string): GoJsonError {
  return new GoJsonError(`json: cannot unmarshal ${kindName(value)} into Go value of type ${goType}`)
}

/** fmt's %#v of the json.Decoder token that opens `value`. */
function goToken(value: GoJson): string {
  switch (value.kind) {
    case 'null':
      return '<nil>'
    case 'bool':
      return String(value.value)
    case 'number':
      return String(Number(value.text))
    case 'string':
      return q(value.value)
    case 'array':
      return '91' // json.Delim('[')
    case 'object':
      return '123'
  }
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** base64.StdEncoding.DecodeString: padding required, "\r" and "\n" ignored. */
export function goBase64(text: string): Buffer | { problem: string } {
  const s = text.replace(/[\r\n]/g, '')
  if (STD_BASE64.test(s)) return Buffer.from(s, 'base64')
  const bad = s.search(/[^A-Za-z0-9+/=]/)
  return { problem: `illegal base64 data at input byte ${bad >= 0 ? bad : s.length - (s.length % 4)}` }
}
