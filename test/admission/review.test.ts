import t from 'tap'
import { decodeReview, ReviewDecodeError } from '../../src/admission/review.js'
import { loadFixture } from '../helpers/fixtures.js'

for (const name of [
  'pod-create.json',
  'pod-ephemeralcontainers-update.json',
  'deployment-create-dryrun.json',
  'cronjob-create.json',
]) {
  t.test(`decodes the ${name} fixture`, async (t) => {
    const body = loadFixture<any>(`admission/${name}`)
    const req = decodeReview(body)
    t.equal(req.uid, body.request.uid)
    t.same(req.kind, body.request.kind)
    t.equal(req.namespace, body.request.namespace)
    t.equal(req.operation, body.request.operation)
    t.equal(req.dryRun, body.request.dryRun)
    t.equal(req.subResource, body.request.subResource)
    t.same(req.object, body.request.object)
  })
}

/** The error decodeReview throws for this body. */
function refusal(body: unknown): ReviewDecodeError {
  try {
    decodeReview(body)
  } catch (err) {
    if (err instanceof ReviewDecodeError) return err
    throw err
  }
  throw new Error('the body decoded')
}

t.test('refuses a uid longer than 128 characters, and does not name it', async (t) => {
  const body = loadFixture<any>('admission/pod-create.json')
  body.request.uid = 'x'.repeat(129)
  t.throws(() => decodeReview(body), ReviewDecodeError)
  t.equal(refusal(body).uid, undefined)
})

t.test('a refused body names its uid, whatever check it fails', async (t) => {
  t.equal(refusal({ request: { uid: 'abc' } }).uid, 'abc', 'refused for its apiVersion, before the uid is checked')
  const body = loadFixture<any>('admission/pod-create.json')
  body.request.operation = 'PATCH'
  t.equal(refusal(body).uid, body.request.uid, 'refused after the uid is checked')
  t.equal(refusal({ ...body, request: { ...body.request, uid: '' } }).reason, 'request.uid must be a non-empty string')
  t.equal(refusal({ ...body, request: { ...body.request, uid: '' } }).uid, '', 'an empty uid is named as it is')
  t.equal(refusal(null).uid, undefined)
  t.equal(refusal('x').uid, undefined)
  t.equal(refusal({ request: { uid: 42 } }).uid, undefined)
})
