/**
 * WWW-Authenticate parsing (RFC 7235 §2.1, §4.1). A header may carry several challenges,
 * parameters are token or quoted-string (which may contain commas and escaped quotes), and
 * a server may send the header more than once. Registries in the wild rely on all of it:
 * Docker Hub's scope value contains commas (`repository:x:pull,push`), so splitting on ','
 * is wrong.
 */
export interface Challenge {
  /** Lower-cased auth scheme, e.g. `bearer`, `basic`. */
  scheme: string
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>
  token68?: string
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/

class Scanner {
  pos = 0
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length
  }
  peek(): string {
    return this.s[this.pos] ?? ''
  }
  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++
  }
  skipSpaceAndCommas(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.pos++
  }
  token(): string {
    const start = this.pos
    while (!this.done && TCHAR.test(this.peek())) this.pos++
    return this.s.slice(start, this.pos)
  }
  quoted(): string {
    // Caller saw the opening quote.
    this.pos++
    let out = ''
    while (!this.done) {
      const c = this.peek()
      this.pos++
      if (c === '"') return out
      if (c === '\\' && !this.done) {
        out += this.peek()
        this.pos++
      } else {
        out += c
      }
    }
    return out // unterminated: take what is there rather than fail the whole header
  }
  /** True when the text at the cursor is `token BWS "="` but not `token "=="` (token68). */
  atParam(): boolean {
    const save = this.pos
    const name = this.token()
    this.skipSpace()
    const ok = name !== '' && this.peek() === '=' && this.s[this.pos + 1] !== '='
    this.pos = save
    return ok
  }
}

export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const values = typeof header === 'string' ? [header] : header
  return values.flatMap(parseOne)
}

function parseOne(value: string): Challenge[] {
  const s = new Scanner(value)
  const out: Challenge[] = []
  s.skipSpaceAndCommas()
  while (!s.done) {
    const scheme = s.token()
    if (scheme === '') {
      s.pos++ // not a token character: skip it rather than loop forever
      s.skipSpaceAndCommas()
      continue
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} }
    out.push(challenge)
    s.skipSpace()
    const rest = value.slice(s.pos).split(',')[0]?.trim() ?? ''
    if (rest !== '' && !s.atParam() && TOKEN68.test(rest)) {
      challenge.token68 = rest
      s.pos += value.slice(s.pos).indexOf(rest) + rest.length
      s.skipSpaceAndCommas()
      continue
    }
    // auth-params until the next thing that is not `name=`: that starts a new challenge.
    while (!s.done && s.atParam()) {
      const name = s.token().toLowerCase()
      s.skipSpace()
      s.pos++ // '='
      s.skipSpace()
      const v = s.peek() === '"' ? s.quoted() : s.token()
      if (!(name in challenge.params)) challenge.params[name] = v
      s.skipSpaceAndCommas()
    }
    s.skipSpaceAndCommas()
  }
  return out
}
