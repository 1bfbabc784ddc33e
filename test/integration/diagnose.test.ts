// `pullguard diagnose` end to end: the real CLI as a child process, its kubeconfig pointing at the
// API stand-in (serving the fixture pod and its EventList with hosts rewritten to the test
// registries), checking images against the real registries (open and htpasswd/Basic).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli, type CliRun } from '../helpers/cli.js'
import { closedPort } from '../helpers/fake-server.js'
import { loadFixture, makeDockerConfigSecret, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { pushSchema1 } from '../helpers/schema1.js'
import { seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const CI_PASSWORD = 'Ci-Pull-Password'

const ca = await createTestCA()
t.teardown(() => ca.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const basic = await startRegistry({ ca, auth: { kind: 'htpasswd', users: { admin: ADMIN.password, ci: CI_PASSWORD } } })
t.teardown(() => open.close())
t.teardown(() => basic.close())
for (const tag of ['2.4.0', '2.4.1', '2.5.0']) await seedOciManifest(basic, 'team-b/api', tag, ADMIN)
for (const tag of ['1.25.0', '1.25.2']) await seedOciManifest(open, 'library/nginx', tag)
await seedOciIndex(open, 'tools/amd64-only', 'v1', [{ os: 'linux', architecture: 'amd64' }])
const secretName = `pull-${basic.host.replace(/[^a-z0-9]+/gi, '-')}`

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const node = (name: string, architecture: string): unknown => ({
  kind: 'Node',
  apiVersion: 'v1',
  metadata: { name },
  status: { nodeInfo: { operatingSystem: 'linux', architecture } },
})
kube.nodes.push(node('worker-2', 'amd64'), node('arm-1', 'arm64'))

/** The fixture text with the example hosts replaced by the test registries. */
function rewritten<T>(fixture: string): T {
  const text = JSON.stringify(loadFixture(fixture))
  return JSON.parse(
    text
      .replaceAll('registry.example.com:5000', basic.host)
      .replaceAll('envoyproxy/envoy', `${open.host}/envoyproxy/envoy`),
  ) as T
}
const fixturePod = rewritten<any>('api/pod-imagepullbackoff.json')
kube.pods.set(`team-b/${fixturePod.metadata.name}`, fixturePod)
kube.events.set(`team-b/${fixturePod.metadata.name}`, rewritten<any>('api/eventlist-pod.json').items)
kube.secrets.set(
  'team-b/team-b-registry',
  makeDockerConfigSecret('team-b', 'team-b-registry', { [basic.host]: { username: 'ci', password: CI_PASSWORD } }),
)

interface PodOptions {
  containers: Record<string, string>
  waiting?: Record<string, [reason: string, message?: string]>
  secrets?: string[]
  serviceAccount?: string
  owner?: { kind: string; name: string }
  labels?: Record<string, string>
  node?: string
}

/** A pod as the API returns it, with the kubelet's container statuses. */
function pod(namespace: string, name: string, o: PodOptions): unknown {
  const uid = `uid-${namespace}-${name}`
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace,
      uid,
      labels: o.labels ?? {},
      ...(o.owner === undefined
        ? {}
        : {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: o.owner.kind, name: o.owner.name, uid: 'owner-uid', controller: true },
            ],
          }),
    },
    spec: {
      containers: Object.entries(o.containers).map(([c, image]) => ({
        name: c,
        image,
        imagePullPolicy: 'IfNotPresent',
      })),
      serviceAccountName: o.serviceAccount ?? 'default',
      nodeName: o.node ?? 'worker-2',
      ...(o.secrets === undefined ? {} : { imagePullSecrets: o.secrets.map((s) => ({ name: s })) }),
    },
    status: {
      phase: 'Pending',
      containerStatuses: Object.entries(o.containers).map(([c, image]) => {
        const w = o.waiting?.[c]
        return {
          name: c,
          image,
          imageID: '',
          ready: w === undefined,
          restartCount: 0,
          state:
            w === undefined
              ? { running: { startedAt: '2026-11-25T08:00:05Z' } }
              : { waiting: { reason: w[0], ...(w[1] === undefined ? {} : { message: w[1] }) } },
        }
      }),
    },
  }
}

/** A kubelet event about one container, in the fixture's shape. */
function failedEvent(namespace: string, podName: string, container: string, message: string): unknown {
  const base = loadFixture<any>('api/eventlist-pod.json').items[2]
  return {
    ...base,
    metadata: { ...base.metadata, name: `${podName}.17`, namespace },
    involvedObject: {
      ...base.involvedObject,
      namespace,
      name: podName,
      uid: `uid-${namespace}-${podName}`,
      fieldPath: `spec.containers{${container}}`,
    },
    message,
  }
}

function diagnose(args: string[]): Promise<CliRun> {
  return runCli(
    ['diagnose', ...args, '--kubeconfig', kube.kubeconfigPath, '--registry-ca', ca.caPath, '--timeout', '3s'],
    { env: { HOME: '/nonexistent' } },
  )
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim())
}

t.test("the fixture pod: the kubelet's event, TagNotFound now, the nearest tags and the set image line", async (t) => {
  const r = await diagnose(['pod', fixturePod.metadata.name, '-n', 'team-b'])
  t.equal(r.code, 1, 'still broken: exit 1')
  t.equal(r.stderr, '')
  const out = lines(r.stdout)
  t.ok(
    out.includes(`pod team-b/${fixturePod.metadata.name} (deployment/api, node worker-2, service account default)`),
    'names the pod, its deployment (from the ReplicaSet and pod-template-hash) and its node',
  )
  t.ok(
    out.includes(`pull secrets: "team-b-registry" found (${basic.host})`),
    "the pod's secret: found, and which registry it holds",
  )
  t.ok(out.includes('container "api" (spec.containers[0]): ImagePullBackOff'))
  t.ok(out.includes(`image:    ${basic.host}/team-b/api:2.4.l`))
  t.ok(
    out.includes(
      `kubelet:  Failed to pull image "${basic.host}/team-b/api:2.4.l": rpc error: code = NotFound desc = failed to pull and unpack image "${basic.host}/team-b/api:2.4.l": failed to resolve reference "${basic.host}/team-b/api:2.4.l": ${basic.host}/team-b/api:2.4.l: not found (4 times, last 2026-11-25T08:01:31Z)`,
    ),
    'the kubelet\'s own error text, not the generic "Error: ImagePullBackOff"',
  )
  t.ok(
    out.includes(`now:      TagNotFound: tag "2.4.l" does not exist in ${basic.host}/team-b/api`),
    "checked with the pod's own secret (the registry needs it)",
  )
  t.ok(out.includes('fix:      existing tags nearest to "2.4.l": 2.4.1, 2.4.0, 2.5.0'), r.stdout)
  t.ok(
    out.includes(`use the nearest one: kubectl set image deployment/api -n team-b api=${basic.host}/team-b/api:2.4.1`),
  )
  t.notOk(r.stdout.includes('proxy'), 'the running container is not diagnosed')
  t.ok(
    out.includes(
      `pod team-b/${fixturePod.metadata.name}: 1 container stuck on image pulls: 1 still broken, 0 pull now, 0 not verified`,
    ),
  )
  t.notOk(r.stdout.includes(CI_PASSWORD), 'no credential in the output')
})

t.test('--output json: stable fields for the fixture pod', async (t) => {
  const r = await diagnose(['pod', fixturePod.metadata.name, '-n', 'team-b', '--output', 'json'])
  t.equal(r.code, 1)
  const report = JSON.parse(r.stdout)
  t.same(report.scope, { kind: 'pod', namespace: 'team-b', name: fixturePod.metadata.name })
  t.same(report.summary, {
    podsExamined: 1,
    podsStuck: 1,
    containers: 1,
    stillBroken: 1,
    pullsNow: 0,
    unknown: 0,
    exitCode: 1,
  })
  const p = report.pods[0]
  t.match(p, {
    namespace: 'team-b',
    name: fixturePod.metadata.name,
    node: 'worker-2',
    workload: 'deployment/api',
    serviceAccount: 'default',
    warnings: [],
  })
  t.same(p.pullSecrets, [{ name: 'team-b-registry', state: 'found', registries: [basic.host] }])
  t.same(Object.keys(p.containers[0]).sort(), [
    'container',
    'field',
    'fixes',
    'image',
    'kubelet',
    'now',
    'reason',
    'verdict',
    'waiting',
    'waitingMessage',
  ])
  t.match(p.containers[0], {
    container: 'api',
    field: 'spec.containers[0]',
    image: `${basic.host}/team-b/api:2.4.l`,
    waiting: 'ImagePullBackOff',
    verdict: 'still-broken',
    reason: 'TagNotFound',
    kubelet: { reason: 'Failed', count: 4, lastSeen: '2026-11-25T08:01:31Z', cause: 'not-found' },
  })
})

t.test('a pod whose pull secret is missing: create that very secret', async (t) => {
  kube.pods.set(
    'team-c/web-1',
    pod('team-c', 'web-1', {
      containers: { web: `${basic.host}/team-b/api:2.4.1` },
      waiting: { web: ['ErrImagePull', 'pull access denied'] },
      secrets: ['regcred'],
      owner: { kind: 'ReplicaSet', name: 'web-7c9d' },
      labels: { 'pod-template-hash': '7c9d' },
    }),
  )
  kube.events.set('team-c/web-1', [
    failedEvent(
      'team-c',
      'web-1',
      'web',
      `Failed to pull image "${basic.host}/team-b/api:2.4.1": failed to authorize: failed to fetch anonymous token: unexpected status from GET request: 401 Unauthorized`,
    ),
  ])
  const r = await diagnose(['pod', 'web-1', '-n', 'team-c'])
  t.equal(r.code, 1)
  const out = lines(r.stdout)
  t.ok(out.includes('pull secrets: "regcred" does not exist'), r.stdout)
  t.ok(
    out.includes(
      `now:      AccessDenied: ${basic.host} requires credentials, and no pull secret of this pod holds any for it`,
    ),
  )
  t.ok(
    out.includes(
      `fix:      create secret "regcred", which the pods already list: kubectl create secret docker-registry regcred --docker-server=${basic.host} --docker-username=USER --docker-password=PASSWORD -n team-c`,
    ),
    r.stdout,
  )
})

t.test('a pod that pulls now: says so, and how to retry at once', async (t) => {
  kube.secrets.set(
    'team-d/regcred',
    makeDockerConfigSecret('team-d', 'regcred', { [basic.host]: { username: 'ci', password: CI_PASSWORD } }),
  )
  kube.pods.set(
    'team-d/api-0',
    pod('team-d', 'api-0', {
      containers: { api: `${basic.host}/team-b/api:2.4.1` },
      waiting: { api: ['ImagePullBackOff', 'Back-off pulling image'] },
      secrets: ['regcred'],
      owner: { kind: 'StatefulSet', name: 'api' },
    }),
  )
  kube.events.set('team-d/api-0', [
    failedEvent(
      'team-d',
      'api-0',
      'api',
      `Failed to pull image "${basic.host}/team-b/api:2.4.1": pull access denied, repository does not exist or may require authorization`,
    ),
  ])
  kube.pods.set(
    'team-d/bare',
    pod('team-d', 'bare', {
      containers: { main: `${open.host}/library/nginx:1.25.2` },
      waiting: { main: ['ImagePullBackOff'] },
    }),
  )
  kube.pods.set(
    'team-d/tls',
    pod('team-d', 'tls', {
      containers: { main: `${open.host}/library/nginx:1.25.0` },
      waiting: { main: ['ErrImagePull'] },
    }),
  )
  kube.events.set('team-d/tls', [
    failedEvent(
      'team-d',
      'tls',
      'main',
      `Failed to pull image "${open.host}/library/nginx:1.25.0": failed to do request: Head "https://${open.host}/v2/library/nginx/manifests/1.25.0": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
    ),
  ])

  const one = await diagnose(['pod', 'api-0', '-n', 'team-d'])
  t.equal(one.code, 0, 'nothing is still broken: exit 0')
  const out = lines(one.stdout)
  t.ok(
    out.some(
      (l) =>
        l.startsWith('now:      Exists: the registry serves it (sha256:') &&
        l.endsWith(`tried secret team-d/regcred (key "${basic.host}")`),
    ),
    one.stdout,
  )
  t.ok(
    out.includes(
      'fix:      the registry answers now; the kubelet retries with back-off (up to 5 minutes between tries). To retry at once: kubectl delete pod api-0 -n team-d',
    ),
  )

  const ns = await diagnose(['namespace', 'team-d'])
  t.equal(ns.code, 0)
  const all = lines(ns.stdout)
  t.ok(
    all.includes('bare is a bare pod: nothing re-creates it after a delete, so apply its manifest again'),
    'a bare pod is not deleted lightly',
  )
  t.ok(all.includes('kubelet:  no message (no event left: the API keeps events about an hour)'), 'no event: said so')
  t.ok(
    all.some(
      (l) =>
        l.startsWith('fix:      the node reported a TLS error, but') &&
        l.includes(`/etc/containerd/certs.d/${open.host}/ca.crt`),
    ),
    'the node\'s TLS error is not "retry": it is the node\'s trust',
  )
  t.ok(
    all.includes(
      '3 pods in namespace team-d stuck on image pulls, 3 containers: 0 still broken, 3 pull now, 0 not verified',
    ),
    ns.stdout,
  )
})

t.test('a namespace with several broken pods, and --all-namespaces', async (t) => {
  kube.serviceAccounts.set('team-e/builder', {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: { name: 'builder', namespace: 'team-e' },
    imagePullSecrets: [{ name: 'legacy' }],
  })
  kube.pods.set(
    'team-e/typo',
    pod('team-e', 'typo', {
      containers: { nginx: `${open.host}/library/nginx:1.25.9` },
      waiting: { nginx: ['ImagePullBackOff'] },
      owner: { kind: 'DaemonSet', name: 'edge' },
    }),
  )
  kube.pods.set(
    'team-e/db-0',
    pod('team-e', 'db-0', {
      containers: { db: `${basic.host}/team-b/api:2.4.0` },
      waiting: { db: ['ErrImagePull'] },
      serviceAccount: 'builder',
      owner: { kind: 'StatefulSet', name: 'db' },
    }),
  )
  kube.pods.set(
    'team-e/invalid',
    pod('team-e', 'invalid', {
      containers: { app: 'Bad:Image' },
      waiting: {
        app: [
          'InvalidImageName',
          'Failed to apply default image tag "Bad:Image": couldn\'t parse image name "Bad:Image": invalid reference format',
        ],
      },
      owner: { kind: 'Job', name: 'migrate-28861' },
    }),
  )
  kube.pods.set(
    'team-e/arm',
    pod('team-e', 'arm', {
      containers: { tool: `${open.host}/tools/amd64-only:v1` },
      waiting: { tool: ['ImagePullBackOff'] },
      node: 'arm-1',
      owner: { kind: 'ReplicaSet', name: 'tool-5f6' },
      labels: { 'pod-template-hash': '5f6' },
    }),
  )
  kube.pods.set(
    'team-e/healthy',
    pod('team-e', 'healthy', { containers: { web: `${open.host}/library/nginx:1.25.0` } }),
  )

  const r = await diagnose(['namespace', 'team-e'])
  t.equal(r.code, 1)
  const out = lines(r.stdout)
  t.notOk(r.stdout.includes('team-e/healthy'), 'a running pod is not listed')
  t.ok(out.includes('fix:      existing tags nearest to "1.25.9": 1.25.2, 1.25.0'), r.stdout)
  t.ok(
    out.includes(
      `use the nearest one: kubectl set image daemonset/edge -n team-e nginx=${open.host}/library/nginx:1.25.2`,
    ),
  )
  // db-0 lists no secrets; its service account has one for another registry.
  t.ok(out.includes('pull secrets: none listed'))
  t.ok(
    out.includes(
      `fix:      create a pull secret for ${basic.host}: kubectl create secret docker-registry ${secretName} --docker-server=${basic.host} --docker-username=USER --docker-password=PASSWORD -n team-e`,
    ),
    r.stdout,
  )
  t.ok(
    out.includes(
      `give it to the pods of service account "builder", keeping the account's list: kubectl patch serviceaccount builder -n team-e -p '{"imagePullSecrets":[{"name":"legacy"},{"name":"${secretName}"}]}'`,
    ),
    "the patch keeps the account's current secret",
  )
  t.ok(out.includes('then have the pod made again with it: kubectl delete pod db-0 -n team-e'))
  t.ok(
    out.includes(
      `or, instead of the service account, list it in the pod template of statefulset/db (a new rollout follows): kubectl patch statefulset/db -n team-e -p '{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"${secretName}"}]}}}}'`,
    ),
  )
  t.ok(
    out.includes('now:      InvalidReference: invalid image reference "Bad:Image": repository name must be lowercase'),
    r.stdout,
  )
  t.ok(
    out.includes(
      'fix:      correct the image reference, then change container "app" in what creates job/migrate-28861 (its pod template cannot be changed in place)',
    ),
    'no placeholder',
  )
  t.ok(
    out.some((l) =>
      l.startsWith(
        `now:      PlatformMismatch: ${open.host}/tools/amd64-only exists, but its image index has no entry for node arm-1's platform linux/arm64 (it has linux/amd64)`,
      ),
    ),
    r.stdout,
  )
  t.ok(
    out.includes(
      `or schedule the pod onto linux/amd64 nodes, which the image supports: kubectl patch deployment/tool -n team-e -p '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"}}}}}'`,
    ),
  )
  t.ok(
    out.includes(
      '4 pods in namespace team-e stuck on image pulls, 4 containers: 4 still broken, 0 pull now, 0 not verified',
    ),
    r.stdout,
  )

  const every = await diagnose(['namespace', '--all-namespaces', '-o', 'json'])
  t.equal(every.code, 1)
  const report = JSON.parse(every.stdout)
  t.same(report.scope, { kind: 'all-namespaces' })
  t.same(
    report.pods.map((p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`),
    [
      `team-b/${fixturePod.metadata.name}`,
      'team-c/web-1',
      'team-d/api-0',
      'team-d/bare',
      'team-d/tls',
      'team-e/arm',
      'team-e/db-0',
      'team-e/invalid',
      'team-e/typo',
    ],
    'every stuck pod, sorted',
  )
  t.match(report.summary, { podsExamined: 10, podsStuck: 9, stillBroken: 6, pullsNow: 3, unknown: 0, exitCode: 1 })
})

t.test('secrets the user may not read: not verified, exit 3', async (t) => {
  kube.pods.set(
    'team-f/web',
    pod('team-f', 'web', {
      containers: { web: `${basic.host}/team-b/api:2.4.0` },
      waiting: { web: ['ImagePullBackOff'] },
      secrets: ['regcred'],
    }),
  )
  kube.faults.push({ match: /^\/api\/v1\/namespaces\/team-f\/secrets\//, status: 403 })
  t.teardown(() => void kube.faults.splice(0))
  const r = await diagnose(['pod', 'web', '-n', 'team-f'])
  t.equal(r.code, 3, 'only undetermined: exit 3')
  const out = lines(r.stdout)
  t.ok(out.includes('pull secrets: "regcred" not readable with your credentials'))
  t.ok(
    out.includes(
      'fix:      run diagnose as someone who may get secrets in team-f to see whether those secrets hold working credentials for ' +
        basic.host,
    ),
    r.stdout,
  )
})

t.test('usage and unreadable targets exit 2 with one line; a healthy pod exits 0', async (t) => {
  const missing = await diagnose(['pod', 'nope', '-n', 'team-b'])
  t.equal(missing.code, 2)
  t.equal(missing.stderr, 'pullguard: pod team-b/nope not found\n')
  const usage = await diagnose(['deployment', 'x'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /^pullguard: diagnose: unknown target "deployment"/)
  const healthy = await diagnose(['pod', 'healthy', '-n', 'team-e'])
  t.equal(healthy.code, 0)
  t.equal(healthy.stdout, 'pod team-e/healthy is not waiting on an image pull\n')
  const empty = await diagnose(['namespace', 'nobody-here'])
  t.equal(empty.code, 0)
  t.equal(empty.stdout, 'no pod in namespace nobody-here is waiting on an image pull (0 examined)\n')
})

t.test('a pod on a node of a pool: judged with that pool’s runtime, and the pool named', async (t) => {
  const legacy = await startRegistry({ ca, auth: { kind: 'none' }, schema1: true })
  t.teardown(() => legacy.close())
  await pushSchema1(legacy, 'legacy/old', '2015')
  const image = `${legacy.host}/legacy/old:2015`
  kube.pods.set(
    'team-p/old-0',
    pod('team-p', 'old-0', {
      containers: { main: image },
      waiting: { main: ['ErrImagePull', 'schema 1 image manifests are no longer supported: invalid argument'] },
    }),
  )
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-diagnose-pools-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pools.yaml')
  await writeFile(file, 'pools:\n- name: new\n  runtime: containerd://2.1.4\n')
  const r = await diagnose(['pod', 'old-0', '-n', 'team-p', '--node-pools', file])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, `pod team-p/old-0 (pod/old-0, node worker-2 in pool new, service account default)`)
  t.match(r.stdout, /Docker schema 1 manifest, which containerd 2\.1\.4 refuses/)
  t.match(r.stdout, `skopeo copy --format oci docker://${image} docker://${image}`)
  const without = await diagnose(['pod', 'old-0', '-n', 'team-p'])
  t.equal(without.code, 0, 'without the pools file the runtime is unknown: it pulls, as far as pullguard can tell')
})

t.test(
  '--context picks a context of the kubeconfig, as kubectl does; an unknown one names those there are',
  async (t) => {
    // The current context points at nothing; the one asked for is the API stand-in.
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-contexts-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const text = await readFile(kube.kubeconfigPath, 'utf8')
    const file = join(dir, 'kubeconfig')
    await writeFile(
      file,
      text
        .replace('contexts:\n', 'contexts:\n- name: elsewhere\n  context:\n    cluster: nowhere\n    user: pullguard\n')
        .replace(
          'clusters:\n',
          `clusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:${await closedPort()}\n`,
        )
        .replace('current-context: fake', 'current-context: elsewhere'),
    )
    const run = (args: string[]): Promise<CliRun> =>
      runCli(
        [
          'diagnose',
          'namespace',
          'team-b',
          '--kubeconfig',
          file,
          '--registry-ca',
          ca.caPath,
          '--timeout',
          '3s',
          ...args,
        ],
        {
          env: { HOME: '/nonexistent' },
        },
      )
    const current = await run([])
    t.equal(current.code, 2, 'the current context reaches nothing')
    const chosen = await run(['--context', 'fake'])
    t.not(chosen.code, 2, chosen.stderr)
    t.match(chosen.stdout, `pod team-b/${fixturePod.metadata.name}`)
    const unknown = await run(['--context', 'prod'])
    t.equal(unknown.code, 2)
    t.match(unknown.stderr, 'pullguard: --context: the kubeconfig has no context "prod" (it has elsewhere, fake)')
  },
)
