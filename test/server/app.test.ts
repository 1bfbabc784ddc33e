// The Fastify app as buildServer makes it: through its real routing (inject), /validate only
// decodes and encodes, and says which review it refused; listening on 127.0.0.1:0, close() lets
// reviews in flight finish for the grace period, cuts what is left, then runs the onClose hooks.
import { Writable } from 'node:stream'
import t, { type Test as Tap } from 'tap'
import { Agent, request } from 'undici'
import { buildServer, type App } from '../../src/server/app.js'
import { createLogger } from '../../src/log/logger.js'
import type { Judge } from '../../src/policy/subject.js'
import { createTestCA } from '../helpers/pki.js'
import { loadFixture } from '../helpers/fixtures.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const cert = await ca.issue('127.0.0.1', { ips: ['127.0.0.1'] })

/** A logger whose lines land in `logs`, parsed. */
function capture(): { logger: ReturnType<typeof createLogger>; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { logger: createLogger('info', sink), logs }
}

const allowAll: Judge = async () => ({ allowed: true, message: undefined, warnings: [] })

t.test('a body that is not JSON: 400 with the reason, and a log line without a uid', async (t) => {
  const { logger, logs } = capture()
  const app = await buildServer({ certPem: cert.certPem, keyPem: cert.keyPem, logger, judge: allowAll })
  t.teardown(() => app.close())
  const res = await app.inject({
    method: 'POST',
    url: '/validate',
    headers: { 'content-type': 'application/json' },
    payload: '{"apiVersion": ',
  })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { error: 'MalformedReview', reason: 'body is not valid JSON (it ends too early)' })
  const line = logs.find((l) => l.msg === 'malformed AdmissionReview')
  t.match(line, { level: 40, reason: 'body is not valid JSON (it ends too early)' })
  t.notOk(line !== undefined && 'uid' in line, 'no uid to name')
})

t.test('a review refused for its fields: 400 with the reason, and a log line naming its uid', async (t) => {
  const { logger, logs } = capture()
  const app = await buildServer({ certPem: cert.certPem, keyPem: cert.keyPem, logger, judge: allowAll })
  t.teardown(() => app.close())
  const body = loadFixture<any>('admission/pod-create.json')
  body.kind = 'Pod'
  const res = await app.inject({ method: 'POST', url: '/validate', payload: body })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { error: 'MalformedReview', reason: 'kind must be "AdmissionReview", got "Pod"' })
  t.match(
    logs.find((l) => l.msg === 'malformed AdmissionReview'),
    { level: 40, uid: body.request.uid, reason: 'kind must be "AdmissionReview", got "Pod"' },
  )
})

t.test('a well-formed review is answered with the whole review', async (t) => {
  const { logger } = capture()
  const app = await buildServer({ certPem: cert.certPem, keyPem: cert.keyPem, logger, judge: allowAll })
  t.teardown(() => app.close())
  const body = loadFixture<any>('admission/pod-create.json')
  const res = await app.inject({ method: 'POST', url: '/validate', payload: body })
  t.equal(res.statusCode, 200)
  t.same(res.json(), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: body.request.uid, allowed: true },
  })
})

/** A judge that waits for `open` before allowing, and says when it was asked. */
function heldJudge(): { judge: Judge; asked: Promise<void>; open: () => void } {
  let asked!: () => void
  let open!: () => void
  const askedP = new Promise<void>((resolve) => (asked = resolve))
  const gate = new Promise<void>((resolve) => (open = resolve))
  return {
    judge: async () => {
      asked()
      await gate
      return { allowed: true, message: undefined, warnings: [] }
    },
    asked: askedP,
    open,
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** buildServer listening on 127.0.0.1:0 (with the caller's hooks, added before it starts), and a client that trusts it. */
async function listening(
  t: Tap,
  options: { judge: Judge; closeGraceMs: number },
  hooks: (app: App, events: string[]) => void = () => undefined,
) {
  const { logger, logs } = capture()
  const app = buildServer({ certPem: cert.certPem, keyPem: cert.keyPem, logger, ...options })
  const events: string[] = []
  hooks(app, events)
  app.addHook('onClose', async () => {
    events.push('onClose')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const origin = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const agent = new Agent({ connect: { ca: ca.caPem } })
  t.teardown(() => (agent.closed ? undefined : agent.close()))
  t.teardown(() => (app.server.listening ? app.close() : undefined))
  const post = async (body: unknown) => {
    const res = await request(`${origin}/validate`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.statusCode, body: (await res.body.json()) as unknown }
  }
  return { app, logs, events, post, agent }
}

const review = loadFixture<any>('admission/pod-create.json')
const allowedReview = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: review.request.uid, allowed: true },
}
const graceWarning = 'in-flight reviews did not finish within the grace period'

t.test('a review still running past the grace period is cut; close() ends and the onClose hooks run', async (t) => {
  const held = heldJudge()
  t.teardown(held.open)
  const { app, logs, events, post } = await listening(t, { judge: held.judge, closeGraceMs: 300 })
  const pending = post(review)
  await held.asked
  const started = Date.now()
  await app.close()
  const took = Date.now() - started
  t.ok(took >= 290, `close() waited for the grace period (${took} ms)`)
  await t.rejects(pending, 'the hanging review lost its connection')
  t.same(events, ['onClose'])
  t.match(
    logs.find((l) => l.msg === graceWarning),
    { level: 40, graceMs: 300 },
  )
})

t.test(
  'a review in flight when close starts is answered; close() ends with the last connection, nothing is cut',
  async (t) => {
    const held = heldJudge()
    t.teardown(held.open)
    const { app, logs, events, post, agent } = await listening(t, { judge: held.judge, closeGraceMs: 10_000 })
    const pending = post(review)
    await held.asked
    const started = Date.now()
    const closed = app.close()
    await sleep(100)
    t.same(events, [], 'onClose waits for the review')
    held.open()
    t.same(await pending, { status: 200, body: allowedReview })
    // The connection stays open after its answer (keep-alive) until the client closes it.
    await agent.close()
    await closed
    t.ok(Date.now() - started < 10_000, 'close() did not wait out the grace period')
    t.same(events, ['onClose'])
    t.notOk(logs.some((l) => l.msg === graceWarning))
  },
)

t.test(
  'preClose hooks added to the app run before the grace period starts, and reviews still arriving are answered',
  async (t) => {
    const held = heldJudge()
    t.teardown(held.open)
    const { app, logs, events, post, agent } = await listening(
      t,
      { judge: held.judge, closeGraceMs: 1000 },
      (app, events) => {
        // pullguard serve's: the audit's Lease is released before the reviews drain.
        app.addHook('preClose', async () => {
          events.push('preClose')
          await sleep(1000)
        })
      },
    )
    const pending = post(review)
    await held.asked
    const closed = app.close()
    await sleep(300)
    t.same(events, ['preClose'])
    t.same(
      await post({ ...review, request: { ...review.request, operation: 'DELETE' } }),
      { status: 200, body: allowedReview },
      'not a 503',
    )
    // Past the grace period if it had started with close(), within it counted from the end of preClose.
    await sleep(1000)
    held.open()
    t.same(await pending, { status: 200, body: allowedReview })
    await agent.close()
    await closed
    t.same(events, ['preClose', 'onClose'])
    t.notOk(logs.some((l) => l.msg === graceWarning))
  },
)
