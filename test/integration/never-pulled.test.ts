// `imagePullPolicy: Never` and the kubelet's credential verification for images already on a node
// (KEP-2535, kubelet v1.37 pullmanager): what each imagePullCredentialsVerificationPolicy makes of
// a private image whose registry refuses the pod's own credentials, through pullguard serve with a
// real Basic-auth registry. A pod bound to a node is also held against the node's status.images.
import t from 'tap'
import { makeDockerConfigSecret, makeNamespace, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { loadFixture } from '../helpers/fixtures.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const PASSWORD = 'never-pulled-secret'
const registry = await startRegistry({ ca, auth: { kind: 'htpasswd', users: { ci: PASSWORD } } })
t.teardown(() => registry.close())
const pushed = await seedOciManifest(registry, 'team/private', 'v1', { username: 'ci', password: PASSWORD })
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.namespaces.set('team-a', makeNamespace('team-a'))
kube.secrets.set(
  'team-a/regcred',
  makeDockerConfigSecret('team-a', 'regcred', { [registry.host]: { username: 'ci', password: PASSWORD } }),
)
const image = `${registry.host}/team/private:v1`
kube.nodes.push({
  kind: 'Node',
  apiVersion: 'v1',
  metadata: { name: 'node-1', labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
  spec: {},
  status: {
    nodeInfo: { operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'containerd://2.4.2' },
    images: [{ names: [`${registry.host}/team/private@${pushed.digest}`, image], sizeBytes: 1000 }],
  },
})

const hooks = new Map<string, RunningWebhook>()
async function webhook(args: string[]): Promise<RunningWebhook> {
  const key = args.join(' ')
  let w = hooks.get(key)
  if (w === undefined) {
    w = await startWebhook({ ca, kube, args })
    hooks.set(key, w)
    t.teardown(() => w!.close())
  }
  return w
}
const policy = (p: string, ...more: string[]): string[] => ['--image-pull-credentials-verification-policy', p, ...more]

let uids = 0
async function review(
  w: RunningWebhook,
  spec: { image?: string; pullPolicy?: string; secrets?: string[]; nodeName?: string },
): Promise<{ response: any; line: any }> {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `never-${++uids}`
  r.request.namespace = 'team-a'
  r.request.object.metadata.namespace = 'team-a'
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = [
    { name: 'app', image: spec.image ?? image, imagePullPolicy: spec.pullPolicy ?? 'Never' },
  ]
  r.request.object.spec.imagePullSecrets = (spec.secrets ?? []).map((name) => ({ name }))
  if (spec.nodeName !== undefined) r.request.object.spec.nodeName = spec.nodeName
  const res = await w.post(r)
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text}`)
  const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
  return { response: res.body.response, line }
}

t.test('the default policy: a Never image the registry refuses the pod is allowed, with a warning', async (t) => {
  const { response } = await review(await webhook([]), {})
  t.equal(response.allowed, true, 'a preloaded copy is given to every pod (NeverVerifyPreloadedImages)')
  t.match(response.warnings, [
    /\(imagePullPolicy Never, NeverVerifyPreloadedImages\): the kubelet gives this pod only a preloaded copy \(not one the kubelet pulled\), else ErrImageNeverPull$/,
  ])
})

t.test('AlwaysVerify: denied, since the kubelet gives no copy to a pod its registry refuses', async (t) => {
  const { response, line } = await review(await webhook(policy('AlwaysVerify')), {})
  t.equal(response.allowed, false)
  t.match(response.status.message, /imagePullCredentialsVerificationPolicy AlwaysVerify/)
  t.match(
    response.status.message,
    /every node reports ErrImageNeverPull \("Container image ".*" is not present with pull policy of Never"\)/,
  )
  t.match(line.images, [{ reason: 'NeverPullRefused' }])
})

t.test('AlwaysVerify: a Never image its registry does not have can only be preloaded: refused', async (t) => {
  const { response, line } = await review(await webhook(policy('AlwaysVerify')), {
    image: `${registry.host}/team/local-build:dev`,
    secrets: ['regcred'],
  })
  t.equal(response.allowed, false)
  t.match(response.status.message, /gives a pod only a copy it pulled itself, which it cannot have pulled from there/)
  t.match(response.status.message, /preloadedImagesVerificationAllowlist/)
  t.match(line.images, [{ reason: 'NeverPullRefused' }])
  const byDefault = await review(await webhook([]), {
    image: `${registry.host}/team/local-build:dev`,
    secrets: ['regcred'],
  })
  t.equal(byDefault.response.allowed, true, 'a local build preloaded on the nodes runs under the default policy')
})

t.test(
  'AlwaysVerify with the pod’s own secret: allowed, with a warning that only a copy the kubelet pulled counts',
  async (t) => {
    const { response } = await review(await webhook(policy('AlwaysVerify')), { secrets: ['regcred'] })
    t.equal(response.allowed, true)
    t.match(response.warnings, [
      /the kubelet gives this pod only a copy the kubelet pulled with this pod's secret, node credentials or anonymously, never a preloaded one, else ErrImageNeverPull$/,
    ])
  },
)

t.test('NeverVerifyAllowlistedImages: allowlisted runs for anyone; off the list it is denied', async (t) => {
  const listed = await webhook(
    policy('NeverVerifyAllowlistedImages', '--preloaded-images-verification-allowlist', `${registry.host}/team/*`),
  )
  const on = await review(listed, {})
  t.equal(on.response.allowed, true)
  t.same(on.response.warnings ?? [], [])
  const other = await webhook(
    policy('NeverVerifyAllowlistedImages', '--preloaded-images-verification-allowlist', `${registry.host}/base/*`),
  )
  t.equal((await review(other, {})).response.allowed, false)
})

t.test('NeverVerify: no verification, nothing to say', async (t) => {
  const { response } = await review(await webhook(policy('NeverVerify')), {})
  t.equal(response.allowed, true)
  t.same(response.warnings ?? [], [])
})

t.test('IfNotPresent is judged as a pull with the pod’s credentials, whatever the policy', async (t) => {
  for (const p of ['NeverVerify', 'AlwaysVerify']) {
    const { response, line } = await review(await webhook(policy(p)), { pullPolicy: 'IfNotPresent' })
    t.equal(response.allowed, false, p)
    t.match(line.images, [{ reason: 'AccessDenied' }], p)
  }
})

t.test('a pod bound to a node: a Never image the node does not list is a warning naming the node', async (t) => {
  const w = await webhook(policy('NeverVerify'))
  const listed = await review(w, { nodeName: 'node-1' })
  t.same(listed.response.warnings ?? [], [], 'the node lists it')
  const missing = await review(w, { nodeName: 'node-1', image: `${registry.host}/team/private:v2` })
  t.equal(missing.response.allowed, true, 'status.images holds at most 50 images: a warning, never a denial')
  t.match(missing.response.warnings, [
    /imagePullPolicy Never\): node node-1 does not list it in status.images .* the kubelet reports ErrImageNeverPull/,
  ])
})
