/**
 * The request body parser for application/json. Fastify's own turns a body it cannot parse into
 * an error reply and closes the connection; a body that was read in full leaves nothing on the
 * connection, so here it becomes a value the route answers with 400 and a reason, and the client
 * keeps its connection (and its TLS session) for the next request.
 *
 * Strict where it matters: JSON is UTF-8 (RFC 8259 §8.1), so bytes that are not are refused rather
 * than turned into replacement characters. The reason never echoes the body (it may hold anything).
 * A `__proto__` key is refused, as Fastify's parser does: JSON.parse keeps it a plain own property,
 * but code that later copies the object with assignment would set a prototype.
 */
import { isUtf8 } from 'node:buffer'
import type { Server as HttpsServer } from 'node:https'
import type { FastifyInstance } from 'fastify'

/** Makes this the server's only body parser (no text/plain): the route sees a value or a MalformedBody. */
export function useJsonBodyParser(app: FastifyInstance<HttpsServer>): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, parseJsonBody(body as Buffer)),
  )
}

export class MalformedBody {
  constructor(readonly reason: string) {}
}

export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return new MalformedBody('body is empty')
  if (!isUtf8(body)) return new MalformedBody('body is not valid UTF-8')
  // A byte-order mark is not JSON, but parsers may ignore it (RFC 8259 §8.1).
  const text =
    body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.toString('utf8', 3) : body.toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return new MalformedBody(`body is not valid JSON (${where(err)})`)
  }
  // The scan only runs for the rare body whose text could hold such a key.
  if (PROTO_KEY.test(text) && hasProtoKey(value)) return new MalformedBody('body has a "__proto__" key')
  return value
}

/** `"__proto__":` with any of its letters written as \u escapes (secure-json-parse's test). */
const PROTO_KEY =
  /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/

function hasProtoKey(root: unknown): boolean {
  // Iterative: the body may be nested as deep as JSON.parse allows.
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v !== 'object' || v === null) continue
    if (Object.hasOwn(v, '__proto__')) return true
    for (const child of Object.values(v)) if (typeof child === 'object' && child !== null) stack.push(child)
  }
  return false
}

function where(err: unknown): string {
  const message = err instanceof Error ? err.message : ''
  if (/end of (JSON )?input/i.test(message)) return 'it ends too early'
  const position = /position (\d+)/.exec(message)
  return position === null ? 'syntax error' : `syntax error at byte ${position[1]}`
}
