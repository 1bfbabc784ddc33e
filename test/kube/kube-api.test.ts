// KubeApi against an HTTPS stand-in for the API server, reached through a real kubeconfig file so
// client-node does its real work (TLS against the kubeconfig's CA, bearer token, its HTTP stack).
import { readFile, writeFile } from 'node:fs/promises'
import { CoreV1Api } from '@kubernetes/client-node'
import t from 'tap'
import { KubeApi, loadKubeConfig } from '../../src/kube/kube-api.js'
import type { Lookup } from '../../src/kube/sources.js'
import { loadFixture, makeDockerConfigSecret, startFakeKubeApi, type FakeKubeApi } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())

async function fakeApi(): Promise<FakeKubeApi> {
  const fake = await startFakeKubeApi({ ca })
  t.teardown(() => fake.close())
  return fake
}
const api = (fake: FakeKubeApi, requestTimeoutMs?: number): KubeApi =>
  new KubeApi(loadKubeConfig(fake.kubeconfigPath), requestTimeoutMs === undefined ? {} : { requestTimeoutMs })

// Everything secret the tests serve, in base64 and in clear: none of it may reach a `detail`.
const SECRET_VALUES = ['s3cret-pass', 'hub-pass', 'hunter2', 'aHVudGVyMg==', 'leaky-value', 'bGVha3ktdmFsdWU']
function assertNoSecrets(
  t: { notOk(v: unknown, message: string): unknown },
  fake: FakeKubeApi,
  r: Lookup<unknown>,
): void {
  if (r.kind !== 'error' && r.kind !== 'forbidden') return
  t.notOk(r.detail.includes(fake.token), 'detail does not contain the bearer token')
  for (const v of SECRET_VALUES) t.notOk(r.detail.includes(v), `detail does not contain ${v}`)
}
async function timed<T>(p: Promise<T>): Promise<{ r: T; ms: number }> {
  const started = Date.now()
  const r = await p
  return { r, ms: Date.now() - started }
}

t.test('reads a secret of each fixture type and converts it', async (t) => {
  const fake = await fakeApi()
  for (const file of ['secret-dockerconfigjson.json', 'secret-dockercfg.json', 'secret-opaque.json']) {
    const raw = loadFixture(`api/${file}`)
    fake.secrets.set(`${raw.metadata.namespace}/${raw.metadata.name}`, raw)
    const r = await api(fake).getSecret(raw.metadata.namespace, raw.metadata.name)
    t.same(
      r,
      { kind: 'found', object: { name: raw.metadata.name, namespace: 'team-a', type: raw.type, data: raw.data } },
      file,
    )
  }
  t.same(
    fake.requests.map((r) => r.path),
    [
      '/api/v1/namespaces/team-a/secrets/regcred',
      '/api/v1/namespaces/team-a/secrets/legacy-hub',
      '/api/v1/namespaces/team-a/secrets/app-config',
    ],
  )
})

t.test(
  'reads share one kept-alive connection, not a handshake each (client-node makes an agent per request)',
  async (t) => {
    const fake = await fakeApi()
    const raw = loadFixture('api/secret-dockerconfigjson.json')
    fake.secrets.set(`${raw.metadata.namespace}/${raw.metadata.name}`, raw)
    const kube = api(fake)
    for (let i = 0; i < 5; i++) t.equal((await kube.getSecret('team-a', raw.metadata.name)).kind, 'found')
    t.equal(fake.totalConnections, 1, 'five reads one after another: one connection')
    await Promise.all(Array.from({ length: 3 }, () => kube.getServiceAccount('team-a', 'default')))
    t.equal(fake.requests.length, 8)
    t.ok(fake.totalConnections <= 3, `${fake.totalConnections} connection(s) for 8 reads, 3 of them at once`)
    t.equal(
      (await new KubeApi(loadKubeConfig(fake.kubeconfigPath)).getSecret('team-a', raw.metadata.name)).kind,
      'found',
    )
    t.ok(fake.totalConnections <= 3, 'another client of the same kubeconfig reuses them too')
  },
)

t.test('a secret without type or data reads as Opaque with no data', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set('ns/bare', { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'bare', namespace: 'ns' } })
  t.same(await api(fake).getSecret('ns', 'bare'), {
    kind: 'found',
    object: { name: 'bare', namespace: 'ns', type: 'Opaque', data: {} },
  })
})

t.test('a secret built by makeDockerConfigSecret round-trips', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set(
    'ns/built',
    makeDockerConfigSecret('ns', 'built', { 'r.example:5000': { username: 'u', password: 'leaky-value' } }),
  )
  const r = await api(fake).getSecret('ns', 'built')
  if (r.kind !== 'found') throw t.fail(`expected found, got ${r.kind}`)
  t.equal(r.object.type, 'kubernetes.io/dockerconfigjson')
  const json: unknown = JSON.parse(Buffer.from(r.object.data['.dockerconfigjson'] ?? '', 'base64').toString())
  t.same(json, { auths: { 'r.example:5000': { username: 'u', password: 'leaky-value' } } })
})

t.test('a secret that does not exist is missing', async (t) => {
  const fake = await fakeApi()
  t.same(await api(fake).getSecret('team-a', 'ghcr-pull'), { kind: 'missing' })
})

t.test('a 403 is forbidden with the Status message', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set('team-a/regcred', loadFixture('api/secret-dockerconfigjson.json'))
  fake.faults.push({ match: /\/secrets\/regcred$/, status: 403 })
  const r = await api(fake).getSecret('team-a', 'regcred')
  t.same(r, { kind: 'forbidden', detail: loadFixture('api/status-403-secret.json').message })
  assertNoSecrets(t, fake, r)
})

t.test('a 500 is an error naming the status', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set('team-a/regcred', loadFixture('api/secret-dockerconfigjson.json'))
  fake.faults.push({ match: /secrets/, status: 500 })
  const r = await api(fake).getSecret('team-a', 'regcred')
  t.match(r, { kind: 'error', detail: /HTTP 500/ })
  assertNoSecrets(t, fake, r)
})

t.test('a hanging API server is an error within the per-request timeout, and the socket is closed', async (t) => {
  const fake = await fakeApi()
  fake.faults.push({ match: /secrets/, hang: true })
  const { r, ms } = await timed(api(fake, 300).getSecret('team-a', 'regcred'))
  t.match(r, { kind: 'error', detail: /within 300 ms/ })
  t.ok(ms >= 250 && ms < 1500, `answered after ${ms} ms`)
  t.equal(fake.requests.length, 1, 'the request reached the server')
  // The abort must reach the HTTP request itself, not just stop us waiting for it.
  for (let i = 0; i < 50 && fake.openConnections > 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(fake.openConnections, 0, 'client-node closed the connection')
})

t.test('an already-aborted signal answers at once without a request', async (t) => {
  const fake = await fakeApi()
  const { r, ms } = await timed(api(fake).getSecret('team-a', 'regcred', AbortSignal.abort()))
  t.match(r, { kind: 'error', detail: /aborted/ })
  t.ok(ms < 100, `answered after ${ms} ms`)
  t.equal(fake.requests.length, 0)
})

t.test('a signal aborted mid-request answers promptly, long before the timeout', async (t) => {
  const fake = await fakeApi()
  fake.faults.push({ match: /secrets/, hang: true })
  const { r, ms } = await timed(api(fake, 10_000).getSecret('team-a', 'regcred', AbortSignal.timeout(150)))
  t.match(r, { kind: 'error', detail: /aborted by the caller/ })
  t.ok(ms < 1000, `answered after ${ms} ms`)
})

t.test('a slow answer inside the timeout is still found', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set('team-a/app-config', loadFixture('api/secret-opaque.json'))
  fake.faults.push({ match: /secrets/, delayMs: 100 })
  t.match(await api(fake, 1000).getSecret('team-a', 'app-config'), { kind: 'found' })
})

t.test('a wrong token is an error (401), and neither token reaches the detail', async (t) => {
  const fake = await fakeApi()
  fake.secrets.set('team-a/regcred', loadFixture('api/secret-dockerconfigjson.json'))
  const wrong = 'wrong-token-0123456789abcdef'
  const path = `${fake.kubeconfigPath}-wrong`
  await writeFile(path, (await readFile(fake.kubeconfigPath, 'utf8')).replace(fake.token, wrong))
  const r = await new KubeApi(loadKubeConfig(path)).getSecret('team-a', 'regcred')
  t.match(r, { kind: 'error', detail: /401/ })
  assertNoSecrets(t, fake, r)
  if (r.kind === 'error') t.notOk(r.detail.includes(wrong), 'detail does not contain the wrong token')
})

t.test('a server certificate the kubeconfig CA does not trust is an error', async (t) => {
  const otherCa = await createTestCA('another CA')
  t.teardown(() => otherCa.close())
  const fake = await startFakeKubeApi({ ca: otherCa })
  t.teardown(() => fake.close())
  const trusting = await fakeApi()
  const path = `${trusting.kubeconfigPath}-other-server`
  await writeFile(
    path,
    (await readFile(trusting.kubeconfigPath, 'utf8'))
      .replace(trusting.origin, fake.origin)
      .replace(trusting.token, fake.token),
  )
  fake.secrets.set('team-a/regcred', loadFixture('api/secret-dockerconfigjson.json'))
  t.match(await new KubeApi(loadKubeConfig(path)).getSecret('team-a', 'regcred'), {
    kind: 'error',
    detail: /cannot reach.*\(/,
  })
  t.equal(fake.requests.length, 0, 'no request was sent over the untrusted connection')
})

t.test('answers that are not the requested Secret are errors that quote nothing', async (t) => {
  const fake = await fakeApi()
  const cases: Array<[string, () => void]> = [
    [
      'broken JSON',
      () => fake.faults.push({ match: /secrets/, body: '{"kind":"Secret","data":{"password":"bGVha3ktdmFsdWU' }),
    ],
    [
      'a Status with 200',
      () => fake.faults.push({ match: /secrets/, body: JSON.stringify(loadFixture('api/status-404-secret.json')) }),
    ],
    ['a JSON array', () => fake.faults.push({ match: /secrets/, body: '[1,2]' })],
    [
      'another kind',
      () => fake.secrets.set('team-a/regcred', { ...loadFixture<object>('api/secret-opaque.json'), kind: 'ConfigMap' }),
    ],
    ['a secret of another name', () => fake.secrets.set('team-a/regcred', loadFixture('api/secret-opaque.json'))],
    [
      'a secret of another namespace',
      () => fake.secrets.set('team-a/regcred', makeDockerConfigSecret('team-b', 'regcred', {})),
    ],
    [
      'data values that are not strings',
      () =>
        fake.secrets.set('team-a/regcred', {
          kind: 'Secret',
          metadata: { name: 'regcred', namespace: 'team-a' },
          data: { a: 1 },
        }),
    ],
  ]
  for (const [label, setup] of cases) {
    fake.faults.length = 0
    fake.secrets.clear()
    setup()
    const r = await api(fake).getSecret('team-a', 'regcred')
    t.match(r, { kind: 'error' }, label)
    assertNoSecrets(t, fake, r)
  }
})

t.test('reads a service account and its imagePullSecrets, skipping entries without a name', async (t) => {
  const fake = await fakeApi()
  fake.serviceAccounts.set('team-b/reporter', loadFixture('api/serviceaccount.json'))
  fake.serviceAccounts.set('team-b/mixed', {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: {
      name: 'mixed',
      namespace: 'team-b',
      uid: 'u-2',
      annotations: {
        'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r',
        'kubectl.kubernetes.io/last-applied-configuration': '{"big":1}',
      },
    },
    imagePullSecrets: [{ name: 'a' }, {}, { name: '' }, { name: 'b' }],
  })
  fake.serviceAccounts.set('team-b/default', {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: { name: 'default', namespace: 'team-b' },
  })
  const k = api(fake)
  t.same(await k.getServiceAccount('team-b', 'reporter'), {
    kind: 'found',
    object: {
      name: 'reporter',
      namespace: 'team-b',
      imagePullSecrets: ['team-b-registry'],
      uid: '8d4e5f6a-7b8c-4d9e-9f0a-2b3c4d5e6f7a',
      annotations: {},
    },
  })
  t.same(
    await k.getServiceAccount('team-b', 'mixed'),
    {
      kind: 'found',
      object: {
        name: 'mixed',
        namespace: 'team-b',
        imagePullSecrets: ['a', 'b'],
        uid: 'u-2',
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r' },
      },
    },
    'annotations without the last-applied copy',
  )
  t.same(await k.getServiceAccount('team-b', 'default'), {
    kind: 'found',
    object: { name: 'default', namespace: 'team-b', imagePullSecrets: [], uid: '', annotations: {} },
  })
  t.same(await k.getServiceAccount('team-b', 'nobody'), { kind: 'missing' })
  t.equal(fake.requests[0]?.path, '/api/v1/namespaces/team-b/serviceaccounts/reporter')
})

t.test('a service account we may not read is forbidden', async (t) => {
  const fake = await fakeApi()
  fake.faults.push({ match: /serviceaccounts/, status: 403 })
  t.match(await api(fake).getServiceAccount('team-b', 'reporter'), {
    kind: 'forbidden',
    detail:
      'serviceaccounts "reporter" is forbidden: User "system:serviceaccount:pullguard:pullguard" cannot get resource "serviceaccounts" in API group "" in the namespace "team-b"',
  })
})

t.test('reads namespace labels; a namespace without labels has none', async (t) => {
  const fake = await fakeApi()
  fake.namespaces.set('team-a', loadFixture('api/namespace.json'))
  fake.namespaces.set('plain', { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'plain' } })
  const k = api(fake)
  t.same(await k.getNamespace('team-a'), {
    kind: 'found',
    object: { name: 'team-a', labels: { 'kubernetes.io/metadata.name': 'team-a', 'pullguard.io/mode': 'enforce' } },
  })
  t.same(await k.getNamespace('plain'), { kind: 'found', object: { name: 'plain', labels: {} } })
  t.same(await k.getNamespace('gone'), { kind: 'missing' })
  t.equal(fake.requests[0]?.path, '/api/v1/namespaces/team-a')
})

t.test('an API server that is down is an error', async (t) => {
  const fake = await startFakeKubeApi({ ca })
  const kc = loadKubeConfig(fake.kubeconfigPath)
  await fake.close()
  const { r, ms } = await timed(new KubeApi(kc).getSecret('team-a', 'regcred'))
  t.match(r, { kind: 'error', detail: /ECONNREFUSED/ })
  t.ok(ms < 1000, `answered after ${ms} ms`)
})

t.test('the constructor refuses a timeout that is not a positive number', async (t) => {
  const fake = await fakeApi()
  t.throws(() => api(fake, 0), RangeError)
  t.throws(() => api(fake, Number.NaN), RangeError)
})

// The stand-in is shared by the diagnosis tests: its list and pod paths must give client-node the
// fixture shapes back, through the same kubeconfig.
t.test('the stand-in serves pods, pod lists, nodes and events in the fixture shapes', async (t) => {
  const fake = await fakeApi()
  const pod = loadFixture('api/pod-imagepullbackoff.json')
  const events = loadFixture('api/eventlist-pod.json')
  fake.pods.set(`team-b/${pod.metadata.name}`, pod)
  fake.events.set(`team-b/${pod.metadata.name}`, events.items)
  fake.events.set('team-b/other', [{ ...events.items[0], involvedObject: { kind: 'Pod', name: 'other' } }])
  fake.nodes.push({ kind: 'Node', apiVersion: 'v1', metadata: { name: 'worker-2' } })
  const core = loadKubeConfig(fake.kubeconfigPath).makeApiClient(CoreV1Api)
  t.equal(
    (await core.readNamespacedPod({ namespace: 'team-b', name: pod.metadata.name })).status?.containerStatuses?.[0]
      ?.state?.waiting?.reason,
    'ImagePullBackOff',
  )
  t.same(
    (await core.listNamespacedPod({ namespace: 'team-b' })).items.map((p) => p.metadata?.name),
    [pod.metadata.name],
  )
  t.same(
    (await core.listNode()).items.map((n) => n.metadata?.name),
    ['worker-2'],
  )
  const forPod = await core.listNamespacedEvent({
    namespace: 'team-b',
    fieldSelector: `involvedObject.name=${pod.metadata.name}`,
  })
  t.equal(forPod.kind, 'EventList')
  t.equal(forPod.items.length, events.items.length)
  t.equal((await core.listNamespacedEvent({ namespace: 'team-b' })).items.length, events.items.length + 1)
  t.match(fake.requests.at(-2)?.path, /\/api\/v1\/namespaces\/team-b\/events\?fieldSelector=involvedObject\.name/)
  await t.rejects(core.readNamespacedPod({ namespace: 'team-b', name: 'nope' }), { code: 404 })
})

t.test('pods, events and a node for diagnose: the fixture pod keeps its spec through client-node', async (t) => {
  const { readPodSpec } = await import('../../src/admission/pod-spec.js')
  const fake = await fakeApi()
  const raw = loadFixture('api/pod-imagepullbackoff.json')
  const key = `team-b/${raw.metadata.name}`
  fake.pods.set(key, raw)
  const other = loadFixture('api/pod-imagepullbackoff.json')
  other.metadata = { ...other.metadata, name: 'other', namespace: 'team-c', uid: 'u2' }
  delete other.metadata.ownerReferences
  fake.pods.set('team-c/other', other)
  const events = loadFixture('api/eventlist-pod.json').items
  // An event left by an earlier pod of the same name (another uid) is not this pod's.
  fake.events.set(key, [
    ...events,
    { ...events[2], involvedObject: { ...events[2].involvedObject, uid: 'an-older-pod' }, message: 'stale' },
  ])
  fake.nodes.push({
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name: 'worker-2' },
    status: { nodeInfo: { operatingSystem: 'linux', architecture: 'arm64' } },
  })

  const r = await api(fake).getPod('team-b', raw.metadata.name)
  if (r.kind !== 'found') return t.fail(`got ${r.kind}`)
  t.same(
    readPodSpec(r.object.spec, 'spec'),
    readPodSpec(raw.spec, 'spec'),
    'the model object reads as the raw JSON does',
  )
  t.match(r.object, {
    name: raw.metadata.name,
    namespace: 'team-b',
    uid: raw.metadata.uid,
    nodeName: 'worker-2',
    controller: { kind: 'ReplicaSet', name: 'api-5d8f7c9b6d' },
    labels: { 'pod-template-hash': '5d8f7c9b6d' },
  })
  t.same(r.object.containers, [
    {
      name: 'api',
      list: 'containers',
      waitingReason: 'ImagePullBackOff',
      waitingMessage: `Back-off pulling image "registry.example.com:5000/team-b/api:2.4.l"`,
    },
    { name: 'proxy', list: 'containers', waitingReason: undefined, waitingMessage: undefined },
  ])

  const ev = await api(fake).listPodEvents('team-b', raw.metadata.name, raw.metadata.uid)
  if (ev.kind !== 'found') return t.fail(`got ${ev.kind}`)
  t.equal(ev.object.length, events.length, 'the stale event is dropped')
  t.same(ev.object[2], {
    type: 'Warning',
    reason: 'Failed',
    message: events[2].message,
    fieldPath: 'spec.containers{api}',
    count: 4,
    lastSeen: '2026-11-25T08:01:31Z',
  })
  t.equal(ev.object[0]?.lastSeen, '2026-11-25T08:00:00.101Z', 'eventTime when there is no lastTimestamp')
  t.ok(
    fake.requests.some((q) =>
      q.path.includes('fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3Dapi-5d8f7c9b6d-q7w2e'),
    ),
    "asks the API for this pod's events only",
  )

  const seen: string[] = []
  const stuck = await api(fake).listPods(undefined, (p) => {
    seen.push(`${p.namespace}/${p.name}`)
    return p.namespace === 'team-c'
  })
  t.same(seen.sort(), [key, 'team-c/other'], 'all namespaces are read')
  t.same(stuck.kind === 'found' ? stuck.object.map((p) => p.name) : stuck, ['other'], 'only what keep accepts is held')
  const inB = await api(fake).listPods('team-b', () => true)
  t.same(inB.kind === 'found' ? inB.object.map((p) => p.name) : inB, [raw.metadata.name])
  t.same(await api(fake).getNodePlatform('worker-2'), { kind: 'found', object: { os: 'linux', architecture: 'arm64' } })
  t.same(await api(fake).getNodePlatform('gone'), { kind: 'missing' })
  t.same(await api(fake).getPod('team-b', 'nope'), { kind: 'missing' })
  fake.faults.push({ match: /\/pods/, status: 403 })
  t.match(await api(fake).listPods('team-b', () => true), { kind: 'forbidden', detail: /cannot list resource "pods"/ })
})
