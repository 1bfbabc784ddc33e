/**
 * The API server refuses Secrets whose data exceeds 1 MiB (core validation MaxSecretSize), so no
 * larger docker config can reach a kubelet; anything bigger comes from a file and is refused unread.
 */
export const MAX_DOCKER_CONFIG_LENGTH = 1024 * 1024

/** encoding/json's maxNestingDepth: deeper documents are a syntax error for the kubelet. */
const MAX_NESTING_DEPTH = 10_000

// --- reading JSON the way encoding/json sees it: members in order, duplicates kept -----------------

export type Members = ReadonlyArray<readonly [string, JsonValue]>
export type JsonValue =
  | { type: 'null' | 'boolean' | 'number' | 'array' }
  | { type: 'string'; value: string }
  /** `members` is undefined below the depth anything is read from. */
  | { type: 'object'; members: Members | undefined }

/** Objects are read member by member down to this depth (document → auths → entry); deeper ones are typed only. */
const READ_DEPTH = 3

export function members(value: { type: 'object'; members: Members | undefined }): Members {
  return value.members ?? []
}

export function describe(value: JsonValue): string {
  switch (value.type) {
    case 'null':
      return 'null'
    case 'boolean':
      return 'true or false'
    case 'number':
      return 'a number'
    case 'string':
      return 'a string'
    case 'array':
      return 'an array'
    case 'object':
      return 'an object'
  }
}

export function readDocument(text: string): JsonValue | { problem: string } {
  if (text.length > MAX_DOCKER_CONFIG_LENGTH) {
    return { problem: `it is ${text.length} characters long; a Secret holds at most ${MAX_DOCKER_CONFIG_LENGTH} bytes` }
  }
  try {
    JSON.parse(text) // the syntax check; its message may quote the text, so only the position is kept
  } catch (err) {
    const at = /position (\d+)/.exec(err instanceof Error ? err.message : '')
    return { problem: `it is not valid JSON${at === null ? '' : ` (at character ${at[1]})`}` }
  }
  if (nestingDepth(text) > MAX_NESTING_DEPTH)
    return { problem: `it is nested more than ${MAX_NESTING_DEPTH} levels deep` }
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
    if (this.text[this.pos] === '}') {
      this.pos++
      return out
    }
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
