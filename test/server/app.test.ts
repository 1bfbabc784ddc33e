// The Fastify app as buildServer makes it, through its real routing (inject): /validate only decodes
// and encodes, and says which review it refused.
import { Writable } from 'node:stream'
import t from 'tap'
import { buildServer } from '../../src/server/app.js'
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
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
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
  const res = await app.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/json' }, payload: '{"apiVersion": ' })
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
  t.match(logs.find((l) => l.msg === 'malformed AdmissionReview'), { level: 40, uid: body.request.uid, reason: 'kind must be "AdmissionReview", got "Pod"' })
})

t.test('a well-formed review is answered with the whole review', async (t) => {
  const { logger } = capture()
  const app = await buildServer({ certPem: cert.certPem, keyPem: cert.keyPem, logger, judge: allowAll })
  t.teardown(() => app.close())
  const body = loadFixture<any>('admission/pod-create.json')
  const res = await app.inject({ method: 'POST', url: '/validate', payload: body })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: body.request.uid, allowed: true } })
})
