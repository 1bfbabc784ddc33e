// Index platforms end to end: the real distribution registry holding OCI indexes and Docker manifest
// lists (with a BuildKit-style attestation entry), faults only a stand-in can produce, and the node
// platforms read through KubeApi from the API stand-in.
import { createHash } from 'node:crypto'
import t from 'tap'
import { KubeApi, loadKubeConfig } from '../../src/kube/kube-api.js'
import { NodePlatforms } from '../../src/policy/node-platforms.js'
import { formatPlatform, judgePlatforms, type Platform } from '../../src/policy/platforms.js'
import { parseReference } from '../../src/reference/index.js'
import { parseIndexPlatforms, RegistryClient, type CheckResult, type Credential } from '../../src/registry/index.js'
import { createLogger } from '../../src/log/logger.js'
import { startFakeKubeApi, type FakeKubeApi } from '../helpers/fake-kube-api.js'
import { startFakeServer, type FakeServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { MT, seedDockerManifestList, seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const alice: Credential = { label: 'secret team/alice key "registry"', username: 'alice', password: 'alice-pw' }
const AMD64: Platform = { os: 'linux', architecture: 'amd64' }
const ARM64: Platform = { os: 'linux', architecture: 'arm64' }
const ARMV7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' }
// What `docker buildx build --attest` adds: a manifest per image whose platform is unknown/unknown.
const ATTESTATION: Platform = { os: 'unknown', architecture: 'unknown' }

const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, alice: alice.password },
  grant: (user, repo, actions) =>
    user === 'admin'
      ? actions
      : user === 'alice' && repo.startsWith('private/')
        ? actions.filter((a) => a === 'pull')
        : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const token = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
for (const r of [open, token]) t.teardown(() => r.close())

const seeded = {
  oci: await seedOciIndex(open, 'multi', 'v1', [AMD64, ARM64, ATTESTATION]),
  list: await seedDockerManifestList(open, 'legacy/multi', 'v1', [AMD64, ARMV7]),
  single: await seedOciManifest(open, 'single', 'v1'),
  private: await seedOciIndex(token, 'private/multi', 'v1', [AMD64, ARM64], ADMIN),
}

const counter = countRequests()
t.teardown(() => counter.stop())
t.beforeEach(() => {
  counter.reset()
  tokenServer.requests.splice(0)
})

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ trust: { extraCaPem: ca.caPem }, ...options })
  t.teardown(() => c.close())
  return c
}
const ref = (host: string, rest: string) => parseReference(`${host}/${rest}`)
const platformsOf = (r: CheckResult): string[] | undefined =>
  r.code === 'Exists' ? r.platforms?.map(formatPlatform) : undefined

t.test('an OCI index: Exists carries its platforms, attestation included, for HEAD + one GET by digest', async (t) => {
  const r = await client().checkManifest(ref(open.host, 'multi:v1'), [])
  t.match(r, { code: 'Exists', digest: seeded.oci.digest, mediaType: MT.ociIndex })
  t.same(platformsOf(r), ['linux/amd64', 'linux/arm64', 'unknown/unknown'])
  t.same(counter.paths(open.origin), ['HEAD /v2/multi/manifests/v1', `GET /v2/multi/manifests/${seeded.oci.digest}`])
  t.match(r.attempts, [{ code: 'Exists', detail: /the index lists 3 platform/ }])
  t.notOk('platforms' in (r.attempts[0] ?? {}), 'platforms live on the result, not on the attempt')
})

t.test('a Docker manifest list carries its platforms the same way', async (t) => {
  const r = await client().checkManifest(ref(open.host, 'legacy/multi:v1'), [])
  t.match(r, { code: 'Exists', digest: seeded.list.digest, mediaType: MT.dockerList })
  t.same(platformsOf(r), ['linux/amd64', 'linux/arm/v7'])
  t.same(counter.paths(open.origin), [
    'HEAD /v2/legacy/multi/manifests/v1',
    `GET /v2/legacy/multi/manifests/${seeded.list.digest}`,
  ])
})

t.test('an index named by digest', async (t) => {
  const r = await client().checkManifest(ref(open.host, `multi@${seeded.oci.digest}`), [])
  t.same(platformsOf(r), ['linux/amd64', 'linux/arm64', 'unknown/unknown'])
  t.equal(counter.count(open.origin), 2)
})

t.test('an image manifest has no platforms and costs no GET', async (t) => {
  const r = await client().checkManifest(ref(open.host, 'single:v1'), [])
  t.match(r, { code: 'Exists', mediaType: MT.ociManifest })
  t.notOk('platforms' in r)
  t.same(counter.paths(open.origin), ['HEAD /v2/single/manifests/v1'])
})

t.test('resolveIndexPlatforms: false keeps the check to one HEAD', async (t) => {
  const r = await client({ resolveIndexPlatforms: false }).checkManifest(ref(open.host, 'multi:v1'), [])
  t.match(r, { code: 'Exists', digest: seeded.oci.digest })
  t.notOk('platforms' in r)
  t.same(counter.paths(open.origin), ['HEAD /v2/multi/manifests/v1'])
})

t.test('token auth: the GET reuses the token the HEAD earned', async (t) => {
  const r = await client().checkManifest(ref(token.host, 'private/multi:v1'), [alice])
  t.match(r, { code: 'Exists', digest: seeded.private.digest, decidedBy: alice.label })
  t.same(platformsOf(r), ['linux/amd64', 'linux/arm64'])
  t.same(counter.paths(token.origin), [
    'HEAD /v2/private/multi/manifests/v1',
    'HEAD /v2/private/multi/manifests/v1',
    `GET /v2/private/multi/manifests/${seeded.private.digest}`,
  ])
  t.equal(tokenServer.requests.length, 1)
})

t.test('the platforms read from the registry decide the verdict; attestations never count', async (t) => {
  const r = await client().checkManifest(ref(open.host, 'multi:v1'), [])
  if (r.code !== 'Exists' || r.platforms === undefined) throw t.fail('expected Exists with platforms')
  t.equal(judgePlatforms(r.platforms, [ARM64]).verdict, 'ok')
  t.equal(judgePlatforms(r.platforms, [AMD64, { os: 'linux', architecture: 's390x' }]).verdict, 'some')
  t.match(judgePlatforms(r.platforms, [{ os: 'linux', architecture: 's390x' }]), {
    verdict: 'none',
    available: [AMD64, ARM64],
  })
})

// --- what only a stand-in registry can do ---------------------------------------------------

const INDEX = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [
      {
        mediaType: MT.ociManifest,
        digest: 'sha256:' + 'a'.repeat(64),
        size: 100,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: MT.ociManifest,
        digest: 'sha256:' + 'b'.repeat(64),
        size: 100,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
    ],
  }),
)
const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex')

/** HEAD answers like a registry; `get` decides the GET. */
function indexServer(get: Handler, head: 'ok' | 'refuse' = 'ok', body = INDEX): Handler {
  return (req, res, seen) => {
    if (req.method === 'HEAD' && head === 'refuse') {
      res.writeHead(405)
      return res.end()
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, {
        'content-type': MT.ociIndex,
        'docker-content-digest': sha(body),
        'content-length': body.length,
      })
      return res.end()
    }
    get(req, res, seen)
  }
}
const serveIndex =
  (body: Buffer, digest = sha(body)): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': MT.ociIndex, 'docker-content-digest': digest, 'content-length': body.length })
    res.end(body)
  }
async function stand(handler: Handler): Promise<FakeServer> {
  const s = await startFakeServer(handler, ca)
  t.teardown(() => s.close())
  return s
}
const lines = (s: FakeServer): string[] => s.seen.map((r) => `${r.method} ${r.url}`)

t.test('when HEAD is refused, the GET that found the index is parsed: no second GET', async (t) => {
  const s = await stand(indexServer(serveIndex(INDEX), 'refuse'))
  const r = await client().checkManifest(ref(s.host, 'app:v1'), [])
  t.same(platformsOf(r), ['linux/amd64', 'linux/arm64/v8'])
  t.same(lines(s), ['HEAD /v2/app/manifests/v1', 'GET /v2/app/manifests/v1'])
})

const unreadable: Array<[string, Handler, RegExp]> = [
  [
    'the GET fails',
    (_req, res) => {
      res.writeHead(500)
      res.end()
    },
    /platforms are unknown: GET of the index answered HTTP 500/,
  ],
  [
    'the body is not the index the digest names',
    serveIndex(Buffer.from(INDEX.toString().replace('arm64', 'arm')), sha(INDEX)),
    /does not match digest/,
  ],
  ['the connection drops', (req) => req.socket.destroy(), /platforms are unknown: /],
]
for (const [name, get, detail] of unreadable) {
  t.test(`${name}: still Exists, without platforms, saying why`, async (t) => {
    const s = await stand(indexServer(get))
    const r = await client().checkManifest(ref(s.host, 'app:v1'), [])
    t.match(r, { code: 'Exists', digest: sha(INDEX), attempts: [{ code: 'Exists', detail }] })
    t.notOk('platforms' in r)
  })
}

t.test('an index whose bytes are not JSON: still Exists, without platforms', async (t) => {
  const body = Buffer.from('<html>')
  const s = await stand(indexServer(serveIndex(body), 'ok', body))
  const r = await client().checkManifest(ref(s.host, 'app:v1'), [])
  t.match(r, { code: 'Exists', attempts: [{ detail: /platforms are unknown: the index is not valid JSON/ }] })
  t.notOk('platforms' in r)
})

t.test('a GET that hangs past the request timeout: still Exists', async (t) => {
  const s = await stand(indexServer(() => undefined))
  const r = await client({ requestTimeoutMs: 300 }).checkManifest(ref(s.host, 'app:v1'), [])
  t.match(r, { code: 'Exists', attempts: [{ detail: /platforms are unknown: .*300 ms/ }] })
  t.notOk('platforms' in r)
})

t.test('an index entry without a platform (every node takes it) leaves the platforms unknown', async (t) => {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [{ mediaType: MT.ociManifest, digest: 'sha256:' + 'c'.repeat(64), size: 1 }],
    }),
  )
  const s = await stand(indexServer(serveIndex(body), 'ok', body))
  const r = await client().checkManifest(ref(s.host, 'app:v1'), [])
  t.match(r, { code: 'Exists', attempts: [{ detail: /entry 0 has no platform/ }] })
  t.notOk('platforms' in r)
})

// parseIndexPlatforms on its own: [name, manifests, platforms or the reason they are unknown]
const parsing: Array<[string, unknown, string[] | RegExp]> = [
  [
    'platforms as written, distinct',
    [
      { platform: { os: 'linux', architecture: 'amd64' } },
      { platform: { os: 'linux', architecture: 'amd64' } },
      { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    ],
    ['linux/amd64', 'linux/arm/v7'],
  ],
  [
    'an empty variant is no variant',
    [{ platform: { os: 'linux', architecture: 'amd64', variant: '' } }],
    ['linux/amd64'],
  ],
  [
    'attestations are kept (policy ignores them)',
    [{ platform: { os: 'unknown', architecture: 'unknown' } }],
    ['unknown/unknown'],
  ],
  [
    'fields no node could match are left out',
    [
      { platform: { os: 'linux', architecture: 'amd64' } },
      { platform: { os: 'linux\n', architecture: 'x'.repeat(65) } },
      { platform: { os: 'linux', architecture: 7 } },
    ],
    ['linux/amd64'],
  ],
  ['an empty index', [], []],
  [
    'an entry without a platform',
    [{ platform: { os: 'linux', architecture: 'amd64' } }, {}],
    /entry 1 has no platform/,
  ],
  ['an empty os (the node would read its own)', [{ platform: { os: '', architecture: 'amd64' } }], /empty os/],
  [
    'too many platforms',
    Array.from({ length: 129 }, (_, i) => ({ platform: { os: 'linux', architecture: `a${i}` } })),
    /more than 128 platforms/,
  ],
  ['no manifests list', undefined, /no manifests list/],
]
for (const [name, manifests, expected] of parsing) {
  t.test(`parseIndexPlatforms: ${name}`, async (t) => {
    const r = parseIndexPlatforms(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests })))
    if (Array.isArray(expected)) t.same(r.ok ? r.platforms.map(formatPlatform) : r.reason, expected)
    else t.match(r, { ok: false, reason: expected })
  })
}

// --- the nodes, through KubeApi ---------------------------------------------------------------

const node = (name: string, os: string, architecture: string): unknown => ({
  kind: 'Node',
  apiVersion: 'v1',
  metadata: { name, labels: { 'kubernetes.io/os': os, 'kubernetes.io/arch': architecture } },
  status: {
    nodeInfo: {
      operatingSystem: os,
      architecture,
      kubeletVersion: 'v1.31.2',
      containerRuntimeVersion: 'containerd://1.7.22',
    },
  },
})
async function kube(): Promise<FakeKubeApi> {
  const fake = await startFakeKubeApi({ ca })
  t.teardown(() => fake.close())
  return fake
}
const api = (fake: FakeKubeApi, requestTimeoutMs = 3000): KubeApi =>
  new KubeApi(loadKubeConfig(fake.kubeconfigPath), { requestTimeoutMs })

t.test('KubeApi.listNodePlatforms: distinct os/arch pairs; nodes not yet reporting are skipped', async (t) => {
  const fake = await kube()
  fake.nodes.push(
    node('a1', 'linux', 'amd64'),
    node('a2', 'linux', 'amd64'),
    node('g1', 'linux', 'arm64'),
    node('w1', 'windows', 'amd64'),
  )
  fake.nodes.push({ kind: 'Node', apiVersion: 'v1', metadata: { name: 'joining' } })
  t.same(await api(fake).listNodePlatforms(), {
    kind: 'found',
    object: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
      { os: 'windows', architecture: 'amd64' },
    ],
  })
  t.same(
    fake.requests.map((r) => r.path),
    ['/api/v1/nodes?limit=500'],
  )
})

t.test('KubeApi.listNodePlatforms follows continue tokens', async (t) => {
  const fake = await kube()
  const page = (items: unknown[], next?: string): string =>
    JSON.stringify({
      kind: 'NodeList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '9', ...(next === undefined ? {} : { continue: next }) },
      items,
    })
  fake.faults.push({ match: /continue=tok-2/, body: page([node('c', 'linux', 's390x')]) })
  fake.faults.push({ match: /continue=tok-1/, body: page([node('b', 'linux', 'arm64')], 'tok-2') })
  fake.faults.push({ match: /^\/api\/v1\/nodes/, body: page([node('a', 'linux', 'amd64')], 'tok-1') })
  const r = await api(fake).listNodePlatforms()
  t.same(r, {
    kind: 'found',
    object: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 's390x' },
    ],
  })
  t.equal(fake.requests.length, 3)
})

t.test(
  'KubeApi.listNodePlatforms: no RBAC is forbidden, a hang is an error within the timeout, a non-list is an error',
  async (t) => {
    const fake = await kube()
    fake.faults.push({ match: /^\/api\/v1\/nodes/, status: 403 })
    t.match(await api(fake).listNodePlatforms(), { kind: 'forbidden', detail: /cannot list resource "nodes"/ })
    fake.faults.splice(0, 1, { match: /^\/api\/v1\/nodes/, hang: true })
    t.same(await api(fake, 200).listNodePlatforms(), {
      kind: 'error',
      detail: 'no answer from the Kubernetes API within 200 ms',
    })
    fake.faults.splice(0, 1, {
      match: /^\/api\/v1\/nodes/,
      body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Success' }),
    })
    t.match(await api(fake).listNodePlatforms(), { kind: 'error' })
  },
)

t.test('NodePlatforms over KubeApi: the platforms the nodes report', async (t) => {
  const fake = await kube()
  fake.nodes.push(node('a1', 'linux', 'amd64'), node('g1', 'linux', 'arm64'))
  const np = new NodePlatforms(api(fake), [], createLogger('silent'))
  t.same((await np.platforms()).map(formatPlatform), ['linux/amd64', 'linux/arm64'])
})

t.test('KubeApi.listNodes: name, labels, taints, platform and runtime of every node, in pages', async (t) => {
  const fake = await kube()
  const gpu = node('g1', 'linux', 'amd64') as any
  gpu.spec = {
    taints: [
      { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' },
      { key: 'odd', effect: 'Sometimes' },
    ],
  }
  fake.nodes.push(gpu, { kind: 'Node', apiVersion: 'v1', metadata: { name: 'joining' } })
  t.same(await api(fake).listNodes(), {
    kind: 'found',
    object: [
      {
        name: 'g1',
        labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
        taints: [
          { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' },
          { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' },
        ],
        os: 'linux',
        architecture: 'amd64',
        runtime: 'containerd://1.7.22',
      },
      { name: 'joining', labels: {}, taints: [], os: '', architecture: '', runtime: '' },
    ],
  })
  fake.token = 'other'
  t.match(await api(fake).listNodes(), { kind: 'error' }, 'an answer that is not the list is an error, never a throw')
})

t.test('KubeApi.getNodeImages: every name in status.images; a missing node is missing', async (t) => {
  const fake = await kube()
  const n = node('n1', 'linux', 'amd64') as any
  n.status.images = [
    { names: ['reg.io/team/app@sha256:aaa', 'reg.io/team/app:v1'], sizeBytes: 10 },
    { names: ['reg.io/base:1'], sizeBytes: 5 },
    { sizeBytes: 1 },
  ]
  fake.nodes.push(n)
  t.same(await api(fake).getNodeImages('n1'), {
    kind: 'found',
    object: ['reg.io/team/app@sha256:aaa', 'reg.io/team/app:v1', 'reg.io/base:1'],
  })
  t.same(await api(fake).getNodeImages('gone'), { kind: 'missing' })
  t.same(await api(fake).getNodeImages('Not_A_Name'), { kind: 'missing' })
})
