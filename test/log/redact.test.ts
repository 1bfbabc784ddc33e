// The logger's redaction: credentials under the known keys are replaced at any depth, nothing is
// mutated, objects without credentials come back as they are, and a real log line shows it.
import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/log/logger.js'
import { CENSOR, TOO_DEEP, redactSecrets } from '../../src/log/redact.js'

const cases: Array<[string, unknown, unknown]> = [
  ['top level', { password: 'p', user: 'u' }, { password: CENSOR, user: 'u' }],
  ['nested, any case', { registry: { Auth: 'dXNlcjpw', host: 'h' } }, { registry: { Auth: CENSOR, host: 'h' } }],
  [
    'request headers',
    { req: { headers: { authorization: 'Bearer x', cookie: 'c', accept: '*/*' } } },
    { req: { headers: { authorization: CENSOR, cookie: CENSOR, accept: '*/*' } } },
  ],
  ['in arrays', { attempts: [{ token: 't1' }, { step: 'HEAD' }] }, { attempts: [{ token: CENSOR }, { step: 'HEAD' }] }],
  [
    'token endpoint fields',
    { body: { access_token: 'a', refresh_token: 'r', identitytoken: 'i', registrytoken: 'g' } },
    { body: { access_token: CENSOR, refresh_token: CENSOR, identitytoken: CENSOR, registrytoken: CENSOR } },
  ],
  ['objects as values of a secret key too', { auth: { user: 'u', pass: 'p' } }, { auth: CENSOR }],
  [
    'null and undefined stay (nothing to hide)',
    { token: null, password: undefined },
    { token: null, password: undefined },
  ],
  [
    'secret names are not secrets',
    { secret: 'regcred', pullSecrets: { names: ['regcred'] } },
    { secret: 'regcred', pullSecrets: { names: ['regcred'] } },
  ],
  ['scalars', 'text', 'text'],
]
for (const [name, input, expected] of cases) {
  t.test(name, async (t) => {
    const before = JSON.stringify(input)
    t.same(redactSecrets(input), expected)
    t.equal(JSON.stringify(input), before, 'the argument is not changed')
  })
}

t.test('an object with nothing to hide is returned as it is (no copy on the hot path)', async (t) => {
  const line = { uid: 'u', images: [{ image: 'a', reason: 'Pullable' }], pullSecrets: { names: ['x'] } }
  t.equal(redactSecrets(line), line)
})

t.test('errors: fields under secret keys are replaced, message and stack kept', async (t) => {
  const err = Object.assign(new TypeError('boom'), { config: { headers: { Authorization: 'Basic abc' } } })
  const out = redactSecrets({ err }) as unknown as { err: Record<string, unknown> }
  t.match(out.err, {
    type: 'TypeError',
    message: 'boom',
    stack: /boom/,
    config: { headers: { Authorization: CENSOR } },
  })
  t.equal(
    (err as unknown as { config: { headers: { Authorization: string } } }).config.headers.Authorization,
    'Basic abc',
    'the error itself is untouched',
  )
  const plain = new Error('nothing secret')
  t.equal(
    (redactSecrets({ err: plain }) as { err: unknown }).err,
    plain,
    'an error without secrets is passed as is to the serializer',
  )
})

t.test('cycles and very deep objects are cut, not walked forever', async (t) => {
  const a: Record<string, unknown> = { name: 'a' }
  a.self = a
  let deep: Record<string, unknown> = { token: 'deep-secret' }
  for (let i = 0; i < 20; i++) deep = { next: deep }
  const out = JSON.stringify(redactSecrets({ a, deep }))
  t.match(out, TOO_DEEP)
  t.notMatch(out, 'deep-secret')
})

t.test('through the logger: the line carries the censor, never the value', async (t) => {
  let text = ''
  const sink = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      text += chunk.toString()
      done()
    },
  })
  const log = createLogger('info', sink)
  log.info({ registry: { password: 'Sup3r-Secret-Value' }, headers: { authorization: 'Bearer eyJhbGciOi' } }, 'example')
  log.info({ err: Object.assign(new Error('refused'), { token: 'tok-Value-123' }) }, 'failed')
  t.notMatch(text, /Sup3r-Secret-Value|eyJhbGciOi|tok-Value-123/)
  t.match(text, /"password":"\[redacted\]"/)
  t.match(text, /"message":"refused"/)
})
