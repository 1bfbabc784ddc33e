// Step 3 end to end: workload kinds, service accounts, exemptions, node credentials, platforms
// and tag suggestions, through the real HTTPS server, real registries and the API stand-in.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startFakeKubeApi, loadFixture, makeDockerConfigSecret, makeNamespace } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const TEAM_B_PASSWORD = 'TeamB-Pull-Secret'
const NODE_PASSWORD = 'Node-Pull-Secret'
const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, 'team-b': TEAM_B_PASSWORD, node: NODE_PASSWORD },
  grant: (user, _repo, actions) =>
    user === 'admin' ? actions : user === 'team-b' || user === 'node' ? actions.filter((a) => a === 'pull') : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const priv = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
t.teardown(() => open.close())
t.teardown(() => priv.close())
for (const tag of ['1.25.0', '1.25.2', '1.25', 'latest', 'stable']) await seedOciManifest(open, 'library/nginx', tag)
await seedOciIndex(open, 'multi/app', 'v1', [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
])
await seedOciManifest(open, 'registry/debug', '1.0')
await seedOciManifest(priv, 'team-b/api', '2.4.1', ADMIN)
await seedOciManifest(priv, 'team-b/report', 'latest', ADMIN)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const counter = countRequests()
t.teardown(() => counter.stop())
for (const name of ['team-a', 'team-b', 'platform-tools']) kube.namespaces.set(name, makeNamespace(name))
kube.secrets.set(
  'team-b/team-b-registry',
  makeDockerConfigSecret('team-b', 'team-b-registry', {
    [priv.host]: { username: 'team-b', password: TEAM_B_PASSWORD },
  }),
)
const reporter = loadFixture<any>('api/serviceaccount.json') // reporter → [team-b-registry]
kube.serviceAccounts.set('team-b/reporter', reporter)
for (const ns of ['team-a', 'team-b'])
  kube.serviceAccounts.set(`${ns}/default`, {
    ...loadFixture<any>('api/serviceaccount.json'),
    metadata: { name: 'default', namespace: ns },
    imagePullSecrets: [],
  })

async function webhook(args: string[] = []): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args })
  t.teardown(() => w.close())
  return w
}
const hook = await webhook()

const IMAGES: Record<string, string> = {
  'registry.example.com:5000/team-b/api:2.4.1': `${priv.host}/team-b/api:2.4.1`,
  'registry.example.com:5000/team-b/report:latest': `${priv.host}/team-b/report:latest`,
}
function fixture(name: string): any {
  let text = JSON.stringify(loadFixture(`admission/${name}`))
  for (const [from, to] of Object.entries(IMAGES)) text = text.split(JSON.stringify(from)).join(JSON.stringify(to))
  return JSON.parse(text)
}

/** A review of `kind` whose pod template holds `spec`, in the shape of the Deployment fixture. */
function workload(group: string, kind: string, resource: string, spec: object, namespace = 'team-a'): any {
  const r = fixture('deployment-create-dryrun.json')
  const template = { metadata: { labels: { app: 'x' } }, spec }
  r.request.uid = `${kind}-${Math.random().toString(16).slice(2)}`
  r.request.kind = { group, version: 'v1', kind }
  r.request.resource = { group, version: 'v1', resource }
  r.request.namespace = namespace
  r.request.name = 'x'
  r.request.dryRun = false
  const object: any = { kind, apiVersion: group === '' ? 'v1' : `${group}/v1`, metadata: { name: 'x', namespace } }
  if (kind === 'PodTemplate') object.template = template
  else if (kind === 'CronJob') object.spec = { schedule: '* * * * *', jobTemplate: { spec: { template } } }
  else object.spec = { selector: { matchLabels: { app: 'x' } }, template }
  r.request.object = object
  return r
}

const KINDS: Array<[string, string, string, string]> = [
  ['apps', 'Deployment', 'deployments', 'spec.template.spec'],
  ['apps', 'ReplicaSet', 'replicasets', 'spec.template.spec'],
  ['apps', 'StatefulSet', 'statefulsets', 'spec.template.spec'],
  ['apps', 'DaemonSet', 'daemonsets', 'spec.template.spec'],
  ['batch', 'Job', 'jobs', 'spec.template.spec'],
  ['batch', 'CronJob', 'cronjobs', 'spec.jobTemplate.spec.template.spec'],
  ['', 'ReplicationController', 'replicationcontrollers', 'spec.template.spec'],
  ['', 'PodTemplate', 'podtemplates', 'template.spec'],
]
for (const [group, kind, resource, path] of KINDS) {
  t.test(`denies a ${kind} whose template names a missing tag, naming the workload and the path`, async (t) => {
    const r = workload(group, kind, resource, {
      containers: [
        { name: 'ok', image: `${open.host}/library/nginx:1.25.2` },
        { name: 'web', image: `${open.host}/library/nginx:1.25.3` },
      ],
    })
    const res = await hook.post(r)
    t.match(res.body.response, { uid: r.request.uid, allowed: false, status: { code: 403 } })
    t.match(
      res.body.response.status.message,
      `pullguard refused ${kind.toLowerCase()} team-a/x: 1 of 2 images cannot be pulled`,
    )
    t.match(res.body.response.status.message, `container "web" (${path}.containers[1])`)
  })
}

t.test('the Deployment fixture with its image present is allowed', async (t) => {
  const r = fixture('deployment-create-dryrun.json')
  r.request.object.spec.template.spec.imagePullSecrets = [{ name: 'team-b-registry' }]
  t.same((await hook.post(r)).body.response, { uid: r.request.uid, allowed: true })
})

t.test("a template without imagePullSecrets uses its service account's (CronJob fixture, SA reporter)", async (t) => {
  const r = fixture('cronjob-create.json')
  t.same((await hook.post(r)).body.response, { uid: r.request.uid, allowed: true })
  const bare = fixture('cronjob-create.json')
  bare.request.object.spec.jobTemplate.spec.template.spec.serviceAccountName = 'default'
  const res = await hook.post(bare)
  t.equal(res.body.response.allowed, false, 'the default service account has no secret for that registry')
})

t.test('a Pod with no imagePullSecrets does not read its service account', async (t) => {
  const before = kube.requests.filter((q) => q.path.includes('/serviceaccounts/')).length
  const r = fixture('deployment-create-dryrun.json')
  r.request.kind = { group: '', version: 'v1', kind: 'Pod' }
  r.request.object = {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name: 'p', namespace: 'team-b' },
    spec: { serviceAccountName: 'reporter', containers: [{ name: 'c', image: `${priv.host}/team-b/api:2.4.1` }] },
  }
  const res = await hook.post(r)
  t.equal(res.body.response.allowed, false, 'admission already gave the pod its final secret list: none')
  t.equal(kube.requests.filter((q) => q.path.includes('/serviceaccounts/')).length, before)
})

t.test('a missing service account is a warning, not a crash', async (t) => {
  const r = workload(
    'apps',
    'Deployment',
    'deployments',
    { serviceAccountName: 'ghost', containers: [{ name: 'c', image: `${open.host}/library/nginx:1.25` }] },
    'team-b',
  )
  const res = await hook.post(r)
  t.equal(res.body.response.allowed, true)
  t.match(res.body.response.warnings, [/service account "ghost" does not exist in team-b/])
})

t.test('UPDATE of a workload checks only changed images; a scale-only update asks nobody', async (t) => {
  const w = await webhook()
  const r = workload('apps', 'Deployment', 'deployments', {
    containers: [
      { name: 'web', image: `${open.host}/library/nginx:1.25` },
      { name: 'side', image: `${open.host}/library/nginx:stable` },
    ],
  })
  r.request.operation = 'UPDATE'
  r.request.oldObject = structuredClone(r.request.object)
  r.request.oldObject.spec.template.spec.containers[0].image = `${open.host}/library/nginx:1.25.0`
  counter.reset()
  t.equal((await w.post(r)).body.response.allowed, true)
  t.same(counter.paths(open.origin), ['HEAD /v2/library/nginx/manifests/1.25'])
  const scale = structuredClone(r)
  scale.request.oldObject = structuredClone(scale.request.object)
  scale.request.object.spec.replicas = 10
  counter.reset()
  t.same((await w.post(scale)).body.response, { uid: scale.request.uid, allowed: true })
  t.equal(counter.count(open.origin), 0)
})

t.test(
  'imagePullPolicy Never with an image no registry has (a local build) is not refused; image volumes are checked',
  async (t) => {
    const r = workload('apps', 'Deployment', 'deployments', {
      containers: [{ name: 'local', image: `${open.host}/local/only:dev`, imagePullPolicy: 'Never' }],
      volumes: [{ name: 'models', image: { reference: `${open.host}/models/none:v1` } }],
    })
    const res = await hook.post(r)
    t.equal(res.body.response.allowed, false)
    t.match(res.body.response.status.message, 'image volume "models" (spec.template.spec.volumes[0].image)')
    t.notMatch(res.body.response.status.message, 'local/only')
  },
)

t.test('exempt namespaces are answered without any registry or API request', async (t) => {
  const w = await webhook(['--exempt-namespace', 'platform-tools'])
  counter.reset()
  // The webhook's own cache lists and watches in the background; a review must add no read of its own.
  const reads = (): number =>
    kube.requests.filter((q) => !/^\/api\/v1\/(secrets|serviceaccounts|namespaces)\?/.test(q.path)).length
  const apiBefore = reads()
  const r = workload(
    'apps',
    'Deployment',
    'deployments',
    { containers: [{ name: 'c', image: `${open.host}/nothing/here:v1` }] },
    'platform-tools',
  )
  const res = await w.post(r)
  t.equal(res.body.response.allowed, true)
  t.match(res.body.response.warnings, [/namespace platform-tools is exempt by --exempt-namespace/])
  t.equal(counter.count(open.origin), 0)
  t.equal(reads(), apiBefore)
  const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
  t.match(line, { exempt: '--exempt-namespace' })
})

t.test('exempt images cause no registry request and say why', async (t) => {
  const w = await webhook(['--exempt-image', '*/debug:*'])
  counter.reset()
  const r = workload('apps', 'Deployment', 'deployments', {
    containers: [{ name: 'dbg', image: `${open.host}/registry/debug:9.9` }],
  })
  const res = await w.post(r)
  t.equal(res.body.response.allowed, true)
  t.match(res.body.response.warnings, [
    /container "dbg" image ".*registry\/debug:9.9": exempt by --exempt-image \*\/debug:\*/,
  ])
  t.equal(counter.count(open.origin), 0)
})

t.test(
  "node credentials from --node-docker-config come after the pod's and make private images pullable",
  async (t) => {
    const path = join(ca.dir, 'node-config.json')
    writeFileSync(
      path,
      JSON.stringify({ auths: { [priv.host]: { auth: Buffer.from(`node:${NODE_PASSWORD}`).toString('base64') } } }),
    )
    const w = await webhook(['--node-docker-config', path])
    const r = workload('apps', 'Deployment', 'deployments', {
      containers: [{ name: 'api', image: `${priv.host}/team-b/api:2.4.1` }],
    })
    const res = await w.post(r)
    t.same(res.body.response, { uid: r.request.uid, allowed: true })
    const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
    t.match(line.images, [{ decidedBy: `node docker config (key "${priv.host}")` }])
    t.notOk(w.logs.join('\n').includes(NODE_PASSWORD))
  },
)

t.test('platforms: an index without the only platform the pod can run on is denied, listing what it has', async (t) => {
  const w = await webhook(['--platform', 'linux/amd64', '--platform', 'linux/s390x'])
  const pinned = workload('apps', 'Deployment', 'deployments', {
    nodeSelector: { 'kubernetes.io/arch': 's390x' },
    containers: [{ name: 'app', image: `${open.host}/multi/app:v1` }],
  })
  const res = await w.post(pinned)
  t.equal(res.body.response.allowed, false)
  t.match(
    res.body.response.status.message,
    /no entry for linux\/s390x in the image index \(it has linux\/amd64, linux\/arm64\)/,
  )
  const amd = workload('apps', 'Deployment', 'deployments', {
    nodeSelector: { 'kubernetes.io/arch': 'amd64' },
    containers: [{ name: 'app', image: `${open.host}/multi/app:v1` }],
  })
  t.same((await w.post(amd)).body.response, { uid: amd.request.uid, allowed: true })
  const anywhere = workload('apps', 'Deployment', 'deployments', {
    containers: [{ name: 'app', image: `${open.host}/multi/app:v1` }],
  })
  const some = await w.post(anywhere)
  t.equal(some.body.response.allowed, true, 'some nodes can pull it: a warning, not a denial')
  t.match(some.body.response.warnings, [
    /no linux\/s390x entry in the image index; pods scheduled on such nodes will fail to pull/,
  ])
})

t.test('platforms from the Node objects when --platform is not given', async (t) => {
  kube.nodes.push({
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name: 'n1' },
    status: { nodeInfo: { operatingSystem: 'linux', architecture: 'ppc64le' } },
  })
  t.teardown(() => void kube.nodes.splice(0))
  const w = await webhook()
  const r = workload('apps', 'Deployment', 'deployments', {
    containers: [{ name: 'app', image: `${open.host}/multi/app:v1` }],
  })
  const res = await w.post(r)
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /no entry for linux\/ppc64le/)
})

const NEAR: Array<[string, RegExp]> = [
  ['1.25.3', /existing tags nearest to "1\.25\.3": 1\.25\.2, 1\.25/],
  ['lates', /existing tags nearest to "lates": latest/],
  ['stabel', /existing tags nearest to "stabel": stable/],
]
for (const [tag, expected] of NEAR) {
  t.test(`suggests existing tags for the near miss ${tag}`, async (t) => {
    const res = await hook.post(
      workload('apps', 'Deployment', 'deployments', {
        containers: [{ name: 'web', image: `${open.host}/library/nginx:${tag}` }],
      }),
    )
    t.match(res.body.response.status.message, expected)
  })
}

t.test('no suggestion rather than a wrong one', async (t) => {
  const res = await hook.post(
    workload('apps', 'Deployment', 'deployments', {
      containers: [{ name: 'web', image: `${open.host}/library/nginx:v9-experimental` }],
    }),
  )
  t.match(
    res.body.response.status.message,
    /Fix: no existing tag of \S+\/library\/nginx is near "v9-experimental": push that tag, or pick one that exists\./,
  )
})

t.test(
  'a template UPDATE that changes pull secrets, service account or scheduling judges every image again',
  async (t) => {
    const w = await webhook()
    const r = workload(
      'apps',
      'Deployment',
      'deployments',
      {
        imagePullSecrets: [{ name: 'team-b-registry' }],
        containers: [{ name: 'api', image: `${priv.host}/team-b/api:2.4.1` }],
      },
      'team-b',
    )
    r.request.operation = 'UPDATE'
    r.request.oldObject = structuredClone(r.request.object)
    r.request.object.spec.template.spec.imagePullSecrets = []
    r.request.object.spec.template.spec.serviceAccountName = 'default'
    const res = await w.post(r)
    t.equal(res.body.response.allowed, false, 'the new pods would have no credentials for the private image')
    t.match(res.body.response.status.message, 'container "api"')
  },
)

t.test('a template that lists its own secrets does not read its service account', async (t) => {
  const before = kube.requests.filter((q) => q.path.includes('/serviceaccounts/')).length
  const r = workload(
    'apps',
    'Deployment',
    'deployments',
    {
      serviceAccountName: 'reporter',
      imagePullSecrets: [{ name: 'team-b-registry' }],
      containers: [{ name: 'api', image: `${priv.host}/team-b/api:2.4.1` }],
    },
    'team-b',
  )
  t.same((await hook.post(r)).body.response, { uid: r.request.uid, allowed: true })
  t.equal(kube.requests.filter((q) => q.path.includes('/serviceaccounts/')).length, before)
})

t.test('an invalid reference is never exempt, and patterns do not match the image as written', async (t) => {
  const w = await webhook(['--exempt-image', `${open.host}/*`, '--exempt-image', 'busybox:*'])
  counter.reset()
  const res = await w.post(
    workload('apps', 'Deployment', 'deployments', {
      containers: [
        { name: 'bad', image: `${open.host}/Upper/app:v1` },
        { name: 'short', image: `${open.host}/library/busybox:none` },
      ],
    }),
  )
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /container "bad".*repository name must be lowercase/)
  t.notMatch(
    res.body.response.warnings?.join('\n') ?? '',
    'exempt by --exempt-image busybox:*',
    '"busybox:*" is not the normalized form',
  )
  t.match(
    res.body.response.warnings?.join('\n') ?? '',
    /library\/busybox:none.*exempt by --exempt-image/,
    `exempt by the ${open.host}/* pattern instead`,
  )
})
