// Node pools through pullguard serve, with real registries and the nodes in the API: a GPU pool
// whose containerd pulls through its own mirror beside a general pool that pulls directly. A pod
// is judged on every pool its scheduling allows: denied only when it fails on all of them, allowed
// with a warning naming the pools where it would not start when it fails on some.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startFakeKubeApi, loadFixture, makeNamespace } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { pushSchema1 } from '../helpers/schema1.js'
import { seedOciManifest } from '../helpers/seed.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const upstream = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => upstream.close())
await seedOciManifest(upstream, 'team/app', 'v1')
// The GPU pool's mirror: it holds an image the upstream does not (a driver build pushed only there).
const gpuMirror = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => gpuMirror.close())
await seedOciManifest(gpuMirror, 'team/cuda-app', 'v1')

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.namespaces.set('team-a', makeNamespace('team-a'))
const GPU_TAINT = { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }
function node(name: string, labels: Record<string, string>, runtime: string, taints: unknown[] = []): unknown {
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...labels } },
    spec: { taints },
    status: { nodeInfo: { operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: runtime } },
  }
}
kube.nodes.push(
  node('gpu-1', { pool: 'gpu' }, 'containerd://2.1.4', [GPU_TAINT]),
  node('cpu-1', { pool: 'general' }, 'containerd://2.1.4'),
  node('cpu-2', { pool: 'general-b' }, 'containerd://2.1.4'),
)
const counter = countRequests()
t.teardown(() => counter.stop())

const scratch = await mkdtemp(join(tmpdir(), 'pullguard-pools-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
const certsD = join(scratch, 'gpu', 'certs.d', upstream.host.replace(/:(\d+)$/, '_$1_'))
await mkdir(certsD, { recursive: true })
await writeFile(
  join(certsD, 'hosts.toml'),
  `server = "https://${upstream.host}"\nca = ${JSON.stringify(ca.caPath)}\n[host."https://${gpuMirror.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(ca.caPath)}\n`,
)
const poolsFile = join(scratch, 'pools.yaml')
await writeFile(
  poolsFile,
  `pools:
- name: gpu
  nodeLabels: {pool: gpu}
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  containerdHostsDir: gpu/certs.d
- name: general
  nodeLabels: {pool: general}
- name: general-b
  nodeLabels: {pool: general-b}
- name: spare
  nodeLabels: {pool: spare}
  taints: [{key: spare, effect: NoSchedule}]
`,
)

const w: RunningWebhook = await startWebhook({ ca, kube, args: ['--node-pools', poolsFile] })
t.teardown(() => w.close())

let uids = 0
interface Spec {
  nodeSelector?: Record<string, string>
  tolerations?: unknown[]
  nodeName?: string
}
async function review(image: string, spec: Spec = {}, hook: RunningWebhook = w): Promise<{ response: any; line: any }> {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `pools-${++uids}`
  r.request.namespace = 'team-a'
  r.request.object.metadata.namespace = 'team-a'
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = [{ name: 'app', image }]
  r.request.object.spec.imagePullSecrets = []
  Object.assign(r.request.object.spec, spec)
  const res = await hook.post(r)
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text}`)
  const line = hook.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
  return { response: res.body.response, line }
}
const onGpu = { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }
const cuda = (): string => `${upstream.host}/team/cuda-app:v1`

t.test('a pod for the GPU pool whose image only that pool’s mirror serves is allowed', async (t) => {
  const { response, line } = await review(cuda(), { ...onGpu, nodeSelector: { pool: 'gpu' } })
  t.equal(response.allowed, true)
  t.same(response.warnings ?? [], [])
  t.match(line.pools, { how: 'scheduled', judged: [{ pool: 'gpu', starts: 'pulls', reasons: ['Exists'] }] })
})

t.test('the same pod without a nodeSelector is allowed with a warning naming the pools where it fails', async (t) => {
  const { response, line } = await review(cuda(), onGpu)
  t.equal(response.allowed, true)
  t.equal(response.warnings.length, 1)
  t.match(response.warnings[0], /on node pools general, general-b; it pulls on node pool gpu/)
  t.match(response.warnings[0], /does not exist|not found/)
  t.match(line.pools.judged, [
    { pool: 'gpu', starts: 'pulls' },
    { pool: 'general', starts: 'fails' },
    { pool: 'general-b', starts: 'fails' },
  ])
})

t.test('without the GPU toleration it can land only where the image is missing: denied', async (t) => {
  const { response, line } = await review(cuda())
  t.equal(response.allowed, false)
  t.match(response.status.message, /team\/cuda-app/)
  t.match(response.status.message, /The same on every node pool it can land on: general, general-b\./)
  t.same(
    line.pools.judged.map((j: any) => j.pool),
    ['general', 'general-b'],
    'the tainted pools are not judged: a pod that does not tolerate them never lands there',
  )
})

t.test('a pod that fails on every pool it can land on is denied, naming each', async (t) => {
  const { response } = await review(`${upstream.host}/team/nowhere:v1`, {
    tolerations: [{ operator: 'Exists' }],
  })
  t.equal(response.allowed, false)
  t.match(response.status.message, /it cannot start on any node pool it can land on \(gpu, general, general-b, spare\)/)
  t.match(response.status.message, /On node pool gpu:\n- container "app" .*asked 127\.0\.0\.1:\d+, then/)
  t.match(response.status.message, /On node pools general, general-b, spare:\n- container "app" /)
})

t.test('a pool scaled to zero still counts, by its file', async (t) => {
  const { line } = await review(`${upstream.host}/team/app:v1`, { tolerations: [{ key: 'spare', operator: 'Exists' }] })
  t.same(
    line.pools.judged.map((j: any) => j.pool),
    ['general', 'general-b', 'spare'],
  )
})

t.test('pools whose files are equal share their answers: one registry request for three pools', async (t) => {
  counter.reset()
  const { response, line } = await review(`${upstream.host}/team/app:v1`, { tolerations: [{ operator: 'Exists' }] })
  t.equal(response.allowed, true)
  t.equal(line.pools.judged.length, 4)
  t.equal(
    counter.paths(upstream.origin).filter((p) => p.includes('/manifests/')).length,
    1,
    'general, general-b and spare share one question; gpu asked its mirror first, which lacks it, then the upstream from the cache',
  )
})

t.test('a pod bound to a node is judged on that node’s pool only', async (t) => {
  const { response, line } = await review(cuda(), { nodeName: 'cpu-1', ...onGpu })
  t.equal(response.allowed, false)
  t.match(line.pools, { how: 'bound', judged: [{ pool: 'general' }] })
})

// Runtime versions: containerd 2.1 and later refuse a Docker schema 1 manifest, 2.0 refuses it
// unless told otherwise, 1.x pulls it; each pool's runtime is read from its nodes' status.
t.test('a schema 1 image is denied on containerd 2.1 nodes, allowed on 1.7 nodes, unverified on 2.0', async (t) => {
  const legacy = await startRegistry({ ca, auth: { kind: 'none' }, schema1: true })
  t.teardown(() => legacy.close())
  const { digest } = await pushSchema1(legacy, 'legacy/old', '2015')
  const api = await startFakeKubeApi({ ca })
  t.teardown(() => api.close())
  api.namespaces.set('team-a', makeNamespace('team-a'))
  api.nodes.push(
    node('old-1', { pool: 'old' }, 'containerd://1.7.27'),
    node('new-1', { pool: 'new' }, 'containerd://2.1.4'),
    node('mid-1', { pool: 'mid' }, 'containerd://2.0.5', [{ key: 'mid', effect: 'NoSchedule' }]),
  )
  const file = join(scratch, 'runtimes.yaml')
  await writeFile(
    file,
    `pools:
- {name: old, nodeLabels: {pool: old}}
- {name: new, nodeLabels: {pool: new}}
- {name: mid, nodeLabels: {pool: mid}, taints: [{key: mid, effect: NoSchedule}]}
`,
  )
  const hook = await startWebhook({ ca, kube: api, args: ['--node-pools', file] })
  t.teardown(() => hook.close())
  const image = `${legacy.host}/legacy/old:2015`
  const ask = async (spec: Spec): Promise<{ response: any; line: any }> => review(image, spec, hook)
  const onNew = await ask({ nodeSelector: { pool: 'new' } })
  t.equal(onNew.response.allowed, false)
  t.match(onNew.response.status.message, `is a Docker schema 1 manifest, which containerd 2.1.4 refuses`)
  t.match(onNew.response.status.message, `skopeo copy --format oci docker://${image} docker://${image}`)
  t.match(onNew.line.images, [{ reason: 'Schema1Unsupported' }])
  t.match(onNew.line.images[0], { image, container: 'app' })
  t.equal((await ask({ nodeSelector: { pool: 'old' } })).response.allowed, true, 'containerd 1.7 pulls it')
  const either = await ask({})
  t.equal(either.response.allowed, true, 'it may land on the 1.7 pool')
  t.match(either.response.warnings, [
    /Docker schema 1 manifest, which containerd 2\.1\.4 refuses on node pool new; it pulls on node pool old/,
  ])
  const mid = await ask({ nodeSelector: { pool: 'mid' }, tolerations: [{ key: 'mid', operator: 'Exists' }] })
  t.equal(mid.response.allowed, true, 'containerd 2.0 may be set to pull it: allowed, with a warning')
  t.match(mid.line.images, [{ reason: 'Schema1Unverified' }])
  t.match(mid.response.warnings, [
    /a Docker schema 1 manifest, which containerd 2\.0\.5 on node pool mid pulls only if started with CONTAINERD_ENABLE_DEPRECATED_PULL_SCHEMA_1_IMAGE=1/,
  ])
  t.ok(digest.startsWith('sha256:'))
})
