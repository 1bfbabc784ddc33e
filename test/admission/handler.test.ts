// POST /validate's contract without HTTP: a parsed body in, a status and a body out; a refused
// body's result names the uid for the log line.
import t from 'tap'
import { handleReview, unreadableReview } from '../../src/admission/handler.js'
import type { Judge } from '../../src/policy/subject.js'
import { loadFixture } from '../helpers/fixtures.js'

const denyAll: Judge = async () => ({ allowed: false, message: 'denied by the test judge', warnings: [] })

t.test('a pod review is judged and answered with a review carrying its uid', async (t) => {
  const body = loadFixture<any>('admission/pod-create.json')
  t.same(await handleReview(body, denyAll), {
    status: 200,
    body: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: body.request.uid,
        allowed: false,
        status: { code: 403, reason: 'Forbidden', message: 'denied by the test judge' },
      },
    },
  })
})

t.test('a review refused while decoding is a 400 naming the uid it held', async (t) => {
  const body = loadFixture<any>('admission/pod-create.json')
  body.apiVersion = 'admission.k8s.io/v1beta1'
  t.same(await handleReview(body, denyAll), {
    status: 400,
    body: {
      error: 'MalformedReview',
      reason: 'apiVersion must be "admission.k8s.io/v1", got "admission.k8s.io/v1beta1"',
    },
    uid: body.request.uid,
  })
})

t.test('a review refused for its pod spec is a 400 naming the decoded uid', async (t) => {
  const body = loadFixture<any>('admission/pod-create.json')
  body.request.object.spec.containers = 'nginx'
  const result = await handleReview(body, denyAll)
  t.match(result, {
    status: 400,
    body: { error: 'MalformedReview', reason: /spec.containers must be an array/ },
    uid: body.request.uid,
  })
})

t.test('a body without a usable uid is a 400 naming none', async (t) => {
  t.same(await handleReview([1, 2, 3], denyAll), {
    status: 400,
    body: { error: 'MalformedReview', reason: 'body must be a JSON object' },
    uid: undefined,
  })
})

t.test('a body that is not JSON gets the same 400 body', async (t) => {
  t.same(unreadableReview('body is empty'), {
    status: 400,
    body: { error: 'MalformedReview', reason: 'body is empty' },
    uid: undefined,
  })
})
