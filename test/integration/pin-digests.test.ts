// POST /mutate (serve --pin-digests) through the real HTTPS server, against real registries: a
// Pod's verified images become JSONPatch replaces to their digests, with the pinned-from
// annotation; kubectl debug's ephemeral containers too (without the annotation, which that
// subresource drops); templates never; and the validating review that follows is answered from
// the same cache, without another registry request.
import t from 'tap'
import { makeNamespace, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { loadFixture } from '../helpers/fixtures.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { AMD64_AND_ARM64, seedOciIndex, seedOciManifest } from '../helpers/seed.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
const host = registry.host
const app = await seedOciIndex(registry, 'shop/app', '1.0', AMD64_AND_ARM64)
const side = await seedOciManifest(registry, 'shop/side', '2.0')
const busybox = await seedOciManifest(registry, 'library/busybox', '1.36')
const fresh = await seedOciManifest(registry, 'shop/fresh', '1')

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.namespaces.set('shop', makeNamespace('shop', { 'pullguard.io/pin': 'digest' }))
const counter = countRequests()
t.teardown(() => counter.stop())
const origin = `https://${host}`

async function webhook(args: string[]): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args })
  t.teardown(() => w.close())
  return w
}
const hook = await webhook(['--pin-digests'])

let uids = 0
function podCreate(containers: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `pin-${++uids}`
  r.request.namespace = 'shop'
  r.request.object.metadata.namespace = 'shop'
  r.request.object.spec.initContainers = []
  r.request.object.spec.imagePullSecrets = []
  r.request.object.spec.containers = containers
  Object.assign(r.request.object.spec, extra)
  return r
}

function patchOf(res: { body: any }): any[] {
  const response = res.body.response
  if (response.patch === undefined) return []
  t.equal(response.patchType, 'JSONPatch')
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'))
}

t.test('a Pod CREATE: each verified image replaced by its digest, the origins in the annotation', async (t) => {
  const r = podCreate(
    [
      { name: 'app', image: `${host}/shop/app:1.0` },
      { name: 'side', image: `${host}/shop/side:2.0`, imagePullPolicy: 'IfNotPresent' },
      { name: 'gone', image: `${host}/shop/app:9.9` },
      { name: 'local', image: `${host}/shop/local:dev`, imagePullPolicy: 'Never' },
      { name: 'fixed', image: `${host}/shop/side@${side.digest}` },
    ],
    { volumes: [{ name: 'data', image: { reference: `${host}/shop/side:2.0` } }] },
  )
  const res = await hook.post(r, {}, '/mutate')
  t.equal(res.status, 200, res.text)
  t.match(res.body.response, { uid: r.request.uid, allowed: true })
  const patch = patchOf(res)
  t.same(patch.slice(0, -1), [
    { op: 'test', path: '/spec/containers/0/image', value: `${host}/shop/app:1.0` },
    { op: 'replace', path: '/spec/containers/0/image', value: `${host}/shop/app@${app.digest}` },
    { op: 'test', path: '/spec/containers/1/image', value: `${host}/shop/side:2.0` },
    { op: 'replace', path: '/spec/containers/1/image', value: `${host}/shop/side@${side.digest}` },
    { op: 'test', path: '/spec/volumes/0/image/reference', value: `${host}/shop/side:2.0` },
    { op: 'replace', path: '/spec/volumes/0/image/reference', value: `${host}/shop/side@${side.digest}` },
  ])
  const annotation = patch.at(-1)
  t.equal(annotation.op, 'add')
  t.same(JSON.parse(annotation.value[`pullguard.io/pinned-from`] ?? annotation.value), {
    'spec.containers[0].image': `${host}/shop/app:1.0`,
    'spec.containers[1].image': `${host}/shop/side:2.0`,
    'spec.volumes[0].image.reference': `${host}/shop/side:2.0`,
  })
  const line = hook.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'pin' && l.uid === r.request.uid)
  t.match(line, {
    pinned: [{ field: 'spec.containers[0]' }, { field: 'spec.containers[1]' }, { field: 'spec.volumes[0].image' }],
    left: [
      { field: 'spec.containers[2]', why: 'unverified' },
      { field: 'spec.containers[3]', why: 'never-pulled' },
      { field: 'spec.containers[4]', why: 'digest' },
    ],
  })
})

t.test('the validating review of the pinned pod asks the registry nothing', async (t) => {
  const r = podCreate([{ name: 'app', image: `${host}/shop/fresh:1` }])
  counter.reset()
  const mutated = await hook.post(r, {}, '/mutate')
  const asked = counter.count(origin)
  t.ok(asked > 0, 'the tag was asked about')
  t.equal(patchOf(mutated)[1].value, `${host}/shop/fresh@${fresh.digest}`)
  const pinned = podCreate([{ name: 'app', image: `${host}/shop/fresh@${fresh.digest}` }])
  const validated = await hook.post(pinned)
  t.match(validated.body.response, { allowed: true })
  t.equal(counter.count(origin), asked, 'the digest answered from the cache')
})

t.test('kubectl debug: the ephemeral container pinned, without the annotation its subresource drops', async (t) => {
  const text = JSON.stringify(loadFixture('admission/pod-ephemeralcontainers-update.json')).replaceAll(
    '"busybox:1.36"',
    JSON.stringify(`${host}/library/busybox:1.36`),
  )
  const r = JSON.parse(text)
  const res = await hook.post(r, {}, '/mutate')
  t.equal(res.status, 200, res.text)
  const patch = patchOf(res)
  t.same(patch, [
    { op: 'test', path: '/spec/ephemeralContainers/0/image', value: `${host}/library/busybox:1.36` },
    { op: 'replace', path: '/spec/ephemeralContainers/0/image', value: `${host}/library/busybox@${busybox.digest}` },
  ])
})

t.test('templates are never changed; other requests pass untouched', async (t) => {
  const deployment = loadFixture<any>('admission/deployment-create-dryrun.json')
  const res = await hook.post(deployment, {}, '/mutate')
  t.equal(res.status, 200)
  t.same(res.body.response, { uid: deployment.request.uid, allowed: true }, 'no patch for a Deployment')
  const bad = await hook.post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, {}, '/mutate')
  t.equal(bad.status, 400, 'a malformed review is a 400 with a reason')
  t.match(bad.body, { reason: /request/ })
})

t.test('without --pin-digests there is no /mutate', async (t) => {
  const plain = await webhook([])
  const res = await plain.post(podCreate([{ name: 'app', image: `${host}/shop/app:1.0` }]), {}, '/mutate')
  t.equal(res.status, 404)
})
