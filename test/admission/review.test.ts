import t from 'tap'
import { decodeReview, peekUid, ReviewDecodeError } from '../../src/admission/review.js'
import { loadFixture } from '../helpers/fixtures.js'

for (const name of ['pod-create.json', 'pod-ephemeralcontainers-update.json', 'deployment-create-dryrun.json', 'cronjob-create.json']) {
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

t.test('refuses a uid longer than 128 characters', async (t) => {
  const body = loadFixture<any>('admission/pod-create.json')
  body.request.uid = 'x'.repeat(129)
  t.throws(() => decodeReview(body), ReviewDecodeError)
  t.equal(peekUid(body), undefined)
})

t.test('peekUid finds the uid of a body that fails later checks', async (t) => {
  t.equal(peekUid({ request: { uid: 'abc' } }), 'abc')
  t.equal(peekUid(null), undefined)
  t.equal(peekUid('x'), undefined)
})
