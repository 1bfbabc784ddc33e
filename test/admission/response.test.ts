import t from 'tap'
import { allowed, denied, malformedReview, MAX_WARNINGS } from '../../src/admission/response.js'
import { loadFixture } from '../helpers/fixtures.js'

t.test('denied has the shape of the denied fixture', async (t) => {
  const fixture = loadFixture<any>('admission/response-denied.json')
  const out = denied(fixture.response.uid, fixture.response.status.message)
  t.same(out, fixture)
})

t.test('allowed with warnings has the shape of the warn fixture', async (t) => {
  const fixture = loadFixture<any>('admission/response-warn.json')
  t.same(allowed(fixture.response.uid, fixture.response.warnings), fixture)
})

t.test('allowed without warnings carries no warnings field', async (t) => {
  t.same(allowed('u'), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'u', allowed: true },
  })
})

t.test('warnings are single lines, cut at 256 characters, and capped in number', async (t) => {
  const out = allowed('u', ['a\nb', 'x'.repeat(400), ...Array.from({ length: 30 }, (_, i) => `w${i}`)])
  const w = out.response.warnings!
  t.equal(w[0], 'a b')
  t.equal(w[1]!.length, 256)
  t.ok(w[1]!.endsWith('…'))
  t.equal(w.length, MAX_WARNINGS)
  t.match(w[MAX_WARNINGS - 1], /and 13 more warnings/)
})

t.test('a malformed review is answered with its reason, not a review', async (t) => {
  t.same(malformedReview('request is missing'), { error: 'MalformedReview', reason: 'request is missing' })
})
