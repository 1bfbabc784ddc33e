// `pullguard serve` end to end: real HTTPS, real registries (distribution), the Kubernetes API
// stand-in reached through a kubeconfig file, the AdmissionReview fixtures in test/fixtures.
import t from 'tap'
import { startFakeKubeApi, loadFixture, makeDockerConfigSecret, makeNamespace } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'
import { closedPort, startFakeServer } from '../helpers/fake-server.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const PULLER_PASSWORD = 'Pu11er-S3cret-Value'
const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, puller: PULLER_PASSWORD, other: 'other-pw' },
  grant: (user, repo, actions) =>
    user === 'admin'
      ? actions
      : user === 'puller' && repo.startsWith('example/')
        ? actions.filter((a) => a === 'pull')
        : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const priv = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
t.teardown(() => open.close())
t.teardown(() => priv.close())
await seedOciManifest(open, 'team-a/migrate', 'v3')
await seedOciIndex(open, 'library/nginx', '1.25', [{ os: 'linux', architecture: 'amd64' }])
await seedOciManifest(open, 'library/busybox', '1.36')
const sidecar = await seedOciManifest(priv, 'example/sidecar', 'v1', ADMIN)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const counter = countRequests()
t.teardown(() => counter.stop())

const IMAGES: Record<string, string> = {
  'registry.example.com:5000/team-a/migrate:v3': `${open.host}/team-a/migrate:v3`,
  'nginx:1.25': `${open.host}/library/nginx:1.25`,
  'ghcr.io/example/sidecar@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b': `${priv.host}/example/sidecar@${sidecar.digest}`,
  'busybox:1.36': `${open.host}/library/busybox:1.36`,
}
/** A fixture with its example hosts pointed at the test registries. */
function review(name: string, images: Record<string, string> = IMAGES): any {
  let text = JSON.stringify(loadFixture(`admission/${name}`))
  for (const [from, to] of Object.entries(images)) text = text.split(JSON.stringify(from)).join(JSON.stringify(to))
  return JSON.parse(text)
}
function podWith(images: string[], opts: { namespace?: string; secrets?: string[]; uid?: string } = {}): any {
  const r = review('pod-create.json')
  r.request.uid = opts.uid ?? `uid-${Math.random().toString(16).slice(2)}`
  r.request.namespace = opts.namespace ?? 'team-a'
  r.request.object.metadata.namespace = r.request.namespace
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }))
  r.request.object.spec.imagePullSecrets = (opts.secrets ?? []).map((name) => ({ name }))
  return r
}
function namespace(name: string, mode?: string): void {
  kube.namespaces.set(name, makeNamespace(name, mode === undefined ? {} : { 'pullguard.io/mode': mode }))
}
for (const ns of ['team-a', 'team-b', 'team-c']) namespace(ns)
kube.secrets.set(
  'team-a/regcred',
  makeDockerConfigSecret('team-a', 'regcred', { [priv.host]: { username: 'puller', password: PULLER_PASSWORD } }),
)
kube.secrets.set(
  'team-a/ghcr-pull',
  makeDockerConfigSecret('team-a', 'ghcr-pull', { 'ghcr.io': { username: 'x', password: 'GhcrValue123' } }),
)

async function webhook(args: string[] = []): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args })
  t.teardown(() => w.close())
  return w
}
const hook = await webhook()

t.test('allows the pod-create fixture when every image exists and the pull secret reads the private one', async (t) => {
  const r = review('pod-create.json')
  const res = await hook.post(r)
  t.equal(res.status, 200)
  t.same(res.body, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: r.request.uid, allowed: true },
  })
})

t.test('denies a pod whose tag does not exist, saying which container, which image and the fix', async (t) => {
  const image = `${open.host}/library/nginx:1.255`
  const r = podWith([`${open.host}/library/nginx:1.25`, image], { uid: 'deny-tag' })
  const res = await hook.post(r)
  t.equal(res.status, 200)
  t.match(res.body, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'deny-tag', allowed: false, status: { code: 403, reason: 'Forbidden' } },
  })
  const message: string = res.body.response.status.message
  t.match(message, `container "c1" (spec.containers[1]) image "${image}"`)
  t.match(message, 'tag "1.255" does not exist')
  t.match(message, '1 of 2 images cannot be pulled')
  t.notMatch(message, 'c0', 'the pullable container is not blamed')
})

t.test('denies a private image when no pull secret matches, with the kubectl command to fix it', async (t) => {
  const res = await hook.post(podWith([`${priv.host}/example/sidecar:v1`], { uid: 'deny-private' }))
  t.equal(res.body.response.allowed, false)
  const message: string = res.body.response.status.message
  t.match(message, 'does not exist or requires authorization')
  t.match(message, 'no pull secret matches this registry')
  t.match(message, `kubectl create secret docker-registry`)
  t.match(message, `--docker-server=${priv.host}`)
  t.match(message, '-n team-a')
})

t.test('a missing pull secret is skipped and named in a warning', async (t) => {
  const res = await hook.post(podWith([`${open.host}/library/busybox:1.36`], { secrets: ['does-not-exist'] }))
  t.equal(res.body.response.allowed, true)
  t.same(res.body.response.warnings, ['pull secrets skipped: "does-not-exist" (not found)'])
})

t.test('a pull secret that does not parse denies the pod, naming the secret', async (t) => {
  kube.secrets.set('team-a/broken', {
    ...(makeDockerConfigSecret('team-a', 'broken', {}) as object),
    data: { '.dockerconfigjson': Buffer.from('{not json').toString('base64') },
  })
  const res = await hook.post(podWith([`${open.host}/library/busybox:1.36`], { secrets: ['broken'] }))
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, 'pull secret "broken" cannot be parsed')
})

t.test('a secret pullguard may not read does not turn into a denial', async (t) => {
  kube.faults.push({ match: /secrets\/forbidden-one/, status: 403 })
  t.teardown(() => void kube.faults.splice(0))
  const res = await hook.post(podWith([`${priv.host}/example/sidecar:v1`], { secrets: ['forbidden-one'] }))
  t.equal(res.body.response.allowed, true, 'the kubelet may be able to read it')
  t.match(res.body.response.warnings.join('\n'), /forbidden-one/)
})

t.test('a namespace labelled warn allows with one warning per image', async (t) => {
  namespace('team-b', 'warn')
  t.teardown(() => namespace('team-b'))
  const w = await webhook()
  const res = await w.post(
    podWith([`${open.host}/library/nginx:nope`, `${open.host}/nothing/here:v1`, `${open.host}/library/busybox:1.36`], {
      namespace: 'team-b',
    }),
  )
  t.equal(res.body.response.allowed, true)
  t.equal(res.body.response.warnings.length, 2)
  t.match(res.body.response.warnings, [/tag "nope" not found.*warn mode/, /repository does not exist.*warn mode/])
  for (const w of res.body.response.warnings as string[]) {
    t.ok(w.length <= 200, `fits a terminal line or two: ${w.length}`)
    t.notOk(w.endsWith('…'), 'not cut short')
  }
})

t.test('--mode warn applies where no label says otherwise, and a label enforce overrides it', async (t) => {
  namespace('team-c', 'enforce')
  t.teardown(() => namespace('team-c'))
  const w = await webhook(['--mode', 'warn'])
  t.equal(
    (await w.post(podWith([`${open.host}/library/nginx:nope`], { namespace: 'team-b' }))).body.response.allowed,
    true,
  )
  t.equal(
    (await w.post(podWith([`${open.host}/library/nginx:nope`], { namespace: 'team-c' }))).body.response.allowed,
    false,
  )
})

t.test('a namespace labelled off is allowed without asking any registry', async (t) => {
  namespace('team-b', 'off')
  t.teardown(() => namespace('team-b'))
  const w = await webhook()
  counter.reset()
  const res = await w.post(podWith([`${open.host}/library/nginx:nope`], { namespace: 'team-b' }))
  t.same(res.body.response, { uid: res.body.response.uid, allowed: true })
  t.equal(counter.count(open.origin), 0)
})

t.test(
  'an unreachable registry is allowed with a warning by default, denied with --on-registry-error deny',
  async (t) => {
    const image = `127.0.0.1:${await closedPort()}/app:v1`
    const allow = await hook.post(podWith([image]))
    t.equal(allow.body.response.allowed, true)
    t.match(allow.body.response.warnings, [/not verified.*unreachable \(refused.*allowed by --on-registry-error=allow/])
    const strict = await webhook(['--on-registry-error', 'deny'])
    const deny = await strict.post(podWith([image]))
    t.equal(deny.body.response.allowed, false)
    t.match(deny.body.response.status.message, /could not be verified.*Denied by --on-registry-error=deny/s)
  },
)

t.test('a hanging registry is answered within --timeout, as a registry error', async (t) => {
  const hang = await startFakeServer(() => undefined, ca)
  t.teardown(() => hang.close())
  const w = await webhook(['--timeout', '1s'])
  const started = Date.now()
  const res = await w.post(podWith([`${hang.host}/app:v1`]))
  const ms = Date.now() - started
  t.ok(ms < 1000, `answered after ${ms} ms, inside the 1s budget`)
  t.equal(res.body.response.allowed, true)
  t.match(res.body.response.warnings, [/not verified/])
})

t.test('UPDATE via the ephemeralcontainers subresource checks only the new image', async (t) => {
  const w = await webhook() // a fresh result cache
  counter.reset()
  const r = review('pod-ephemeralcontainers-update.json')
  const res = await w.post(r)
  t.same(res.body.response, { uid: r.request.uid, allowed: true })
  t.same(
    counter.paths(open.origin).filter((p) => p.includes('/manifests/')),
    ['HEAD /v2/library/busybox/manifests/1.36'],
  )
})

t.test('UPDATE that changes no image asks no registry', async (t) => {
  const r = review('pod-ephemeralcontainers-update.json')
  r.request.object.spec.ephemeralContainers = []
  counter.reset()
  t.same((await hook.post(r)).body.response, { uid: r.request.uid, allowed: true })
  t.equal(counter.count(open.origin), 0)
})

t.test('DELETE, other subresources and other kinds are allowed untouched', async (t) => {
  const del = review('pod-create.json')
  del.request.operation = 'DELETE'
  del.request.object.spec.containers[0].image = 'Invalid'
  t.same((await hook.post(del)).body.response, { uid: del.request.uid, allowed: true })
  const status = review('pod-create.json')
  status.request.subResource = 'status'
  status.request.object.spec.containers[0].image = 'Invalid'
  t.same((await hook.post(status)).body.response, { uid: status.request.uid, allowed: true })
  const cm = review('pod-create.json')
  cm.request.kind = { group: '', version: 'v1', kind: 'ConfigMap' }
  t.same((await hook.post(cm)).body.response, { uid: cm.request.uid, allowed: true })
})

t.test('an invalid image reference is denied with the reason', async (t) => {
  const res = await hook.post(podWith(['Nginx:latest']))
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /repository name must be lowercase.*InvalidImageName/)
})

t.test('dryRun requests are judged the same way', async (t) => {
  const r = podWith([`${open.host}/library/nginx:1.255`])
  r.request.dryRun = true
  t.equal((await hook.post(r)).body.response.allowed, false)
})

t.test('50 concurrent reviews of one new image make one registry request', async (t) => {
  const seeded = await seedOciManifest(open, 'burst/app', 'v1')
  counter.reset()
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => hook.post(podWith([`${open.host}/burst/app:v1`], { uid: `burst-${i}` }))),
  )
  t.ok(results.every((r, i) => r.body.response.allowed === true && r.body.response.uid === `burst-${i}`))
  t.same(counter.paths(open.origin), ['HEAD /v2/burst/app/manifests/v1'])
  t.ok(seeded.digest.startsWith('sha256:'))
})

t.test("namespace B cannot get an allowed produced by namespace A's secret of the same name", async (t) => {
  kube.secrets.set(
    'team-b/regcred',
    makeDockerConfigSecret('team-b', 'regcred', { [priv.host]: { username: 'puller', password: 'wrong-password' } }),
  )
  const image = `${priv.host}/example/sidecar:v1`
  t.equal(
    (await hook.post(podWith([image], { namespace: 'team-a', secrets: ['regcred'] }))).body.response.allowed,
    true,
  )
  const b = await hook.post(podWith([image], { namespace: 'team-b', secrets: ['regcred'] }))
  t.equal(b.body.response.allowed, false)
  t.match(b.body.response.status.message, /refused the credentials.*secret team-b\/regcred/)
  // Namespace C names a regcred it does not have: nothing of A's answer (result cache, single
  // flight, reused assessment) reaches it either.
  const c = await hook.post(podWith([image], { namespace: 'team-c', secrets: ['regcred'] }))
  t.equal(c.body.response.allowed, false)
  t.match(c.body.response.warnings, [/"regcred" \(not found\)/])
  t.equal(
    (await hook.post(podWith([image], { namespace: 'team-a', secrets: ['regcred'] }))).body.response.allowed,
    true,
    'and A still gets its own answer',
  )
})

t.test('one decision log line per review, and no secret value in any log line or response', async (t) => {
  const r = podWith([`${priv.host}/example/sidecar:v1`], { uid: 'log-check', secrets: ['regcred'] })
  const res = await hook.post(r)
  const decision = hook.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'decision' && l.uid === 'log-check')
  t.equal(decision.length, 1)
  t.match(decision[0], {
    namespace: 'team-a',
    kind: 'Pod',
    verdict: 'allowed',
    images: [{ image: `${priv.host}/example/sidecar:v1`, reason: 'Exists' }],
  })
  t.type(decision[0].durationMs, 'number')
  const everything = [...hook.logs, res.text].join('\n')
  for (const secret of [PULLER_PASSWORD, 'GhcrValue123', 'wrong-password']) {
    t.notOk(everything.includes(secret), `no ${secret}`)
    t.notOk(everything.includes(Buffer.from(secret).toString('base64')), `no base64 of ${secret}`)
    t.notOk(everything.includes(Buffer.from(`puller:${secret}`).toString('base64')), `no base64 user:${secret}`)
  }
  t.notMatch(everything, /eyJ[A-Za-z0-9_-]{20,}\./, 'no token')
})

t.test('a secret name that names nothing (..) cannot turn a denial into "undetermined"', async (t) => {
  const res = await hook.post(podWith([`${priv.host}/example/sidecar:v1`], { secrets: ['..', '.', 'a/b'] }))
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.warnings, [
    /pull secrets skipped: "\.\." \(not found\), "\." \(not found\), "a\/b" \(not found\)/,
  ])
})

t.test("namespace B's identical password under another secret name is judged with B's own secret", async (t) => {
  kube.secrets.set(
    'team-c/other-name',
    makeDockerConfigSecret('team-c', 'other-name', { [priv.host]: { username: 'puller', password: PULLER_PASSWORD } }),
  )
  const image = `${priv.host}/example/sidecar:v1`
  t.equal(
    (await hook.post(podWith([image], { namespace: 'team-a', secrets: ['regcred'] }))).body.response.allowed,
    true,
  )
  const b = podWith([image], { namespace: 'team-c', secrets: ['other-name'], uid: 'team-c-same-password' })
  t.equal((await hook.post(b)).body.response.allowed, true)
  const line = hook.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === 'team-c-same-password')
  t.match(line.images, [{ decidedBy: `secret team-c/other-name (key "${priv.host}")` }])
})

t.test('a legacy kubernetes.io/dockercfg secret is used', async (t) => {
  kube.secrets.set(
    'team-a/legacy',
    makeDockerConfigSecret(
      'team-a',
      'legacy',
      { [priv.host]: { username: 'puller', password: PULLER_PASSWORD } },
      'kubernetes.io/dockercfg',
    ),
  )
  t.equal(
    (await hook.post(podWith([`${priv.host}/example/sidecar:v1`], { secrets: ['legacy'] }))).body.response.allowed,
    true,
  )
})

t.test('a wrong password fails even for a public image: the kubelet does not fall back to anonymous', async (t) => {
  kube.secrets.set(
    'team-a/stale',
    makeDockerConfigSecret('team-a', 'stale', { [priv.host]: { username: 'puller', password: 'old-password' } }),
  )
  const res = await hook.post(podWith([`${priv.host}/example/sidecar:v1`], { secrets: ['stale'] }))
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /refused the credentials \(tried secret team-a\/stale/)
})

t.test('a hanging Kubernetes API is answered within --timeout', async (t) => {
  kube.faults.push({ match: /secrets\/slow-secret/, hang: true })
  t.teardown(() => void kube.faults.splice(0))
  const w = await webhook(['--timeout', '1s'])
  const started = Date.now()
  const res = await w.post(podWith([`${open.host}/library/busybox:1.36`], { secrets: ['slow-secret'] }))
  t.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`)
  t.equal(res.body.response.allowed, true)
  t.match(res.body.response.warnings, [/"slow-secret" \(could not be read\)/])
})

t.test('the deadline with --on-registry-error deny denies, still within the budget', async (t) => {
  const hang = await startFakeServer(() => undefined, ca)
  t.teardown(() => hang.close())
  const w = await webhook(['--timeout', '1s', '--on-registry-error', 'deny'])
  const started = Date.now()
  const res = await w.post(podWith([`${hang.host}/app:v1`]))
  t.ok(Date.now() - started < 1000)
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /could not be verified.*timeout.*Denied by --on-registry-error=deny/s)
})

t.test('a forbidden secret is explained as such, not as "no secret matched"', async (t) => {
  kube.faults.push({ match: /secrets\/hidden/, status: 403 })
  t.teardown(() => void kube.faults.splice(0))
  const w = await webhook(['--on-registry-error', 'deny'])
  const res = await w.post(podWith([`${priv.host}/example/sidecar:v1`], { secrets: ['hidden'] }))
  t.equal(res.body.response.allowed, false)
  t.match(res.body.response.status.message, /could not be read by pullguard; the kubelet may still pull with them/)
  t.notMatch(res.body.response.status.message, /kubectl create secret/)
})

t.test('hundreds of images: a bounded message, every image in the log', async (t) => {
  const images = Array.from({ length: 40 }, (_, i) => `${open.host}/many/missing${i}:v1`)
  const r = podWith(images, { uid: 'many-images' })
  const res = await hook.post(r)
  t.equal(res.body.response.allowed, false)
  const lines = (res.body.response.status.message as string).split('\n')
  t.equal(lines.length, 12, 'summary, 10 images, and the rest counted')
  t.match(lines.at(-1), /and 30 more/)
  const line = hook.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === 'many-images')
  t.equal(line.images.length, 40)
})

t.test(
  'the watched copy: a relabelled namespace and a changed secret apply from the next review, without API reads',
  async (t) => {
    const labelled = (mode: string): unknown => ({
      ...loadFixture<any>('api/namespace.json'),
      metadata: { name: 'team-live', labels: { 'pullguard.io/mode': mode } },
    })
    kube.put('namespaces', labelled('warn'))
    kube.put(
      'secrets',
      makeDockerConfigSecret('team-live', 'regcred', {
        [priv.host]: { username: 'puller', password: 'an-old-password' },
      }),
    )
    const watchesBefore = kube.watches
    const w = await webhook()
    const post = async (images: string[], secrets: string[] = []): Promise<any> =>
      (await w.post(podWith(images, { namespace: 'team-live', secrets }))).body.response
    const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
        if (await check()) return
      t.fail(`timed out waiting for ${what}`)
    }
    const missing = `${open.host}/library/nginx:9.99`
    await until('the watches of the new webhook', async () => kube.watches === watchesBefore + 4)
    t.match(await post([missing]), { allowed: true, warnings: [/tag "9.99" not found/] }, 'warn from the label')
    const reads = (): number =>
      kube.requests.filter((q) => /^\/api\/v1\/namespaces\/team-live(\/|$)/.test(q.path)).length
    const readsBefore = reads()

    kube.put('namespaces', labelled('enforce'))
    await until('enforce from the new label', async () => (await post([missing])).allowed === false)

    const privateImage = `${priv.host}/example/sidecar:v1`
    t.match(
      await post([privateImage], ['regcred']),
      { allowed: false, status: { message: /refused the credentials/ } },
      'the old password is refused',
    )
    kube.put(
      'secrets',
      makeDockerConfigSecret('team-live', 'regcred', {
        [priv.host]: { username: 'puller', password: PULLER_PASSWORD },
      }),
    )
    await until('the new password', async () => (await post([privateImage], ['regcred'])).allowed === true)
    kube.remove('secrets', 'team-live/regcred')
    await until('the delete', async () => (await post([privateImage], ['regcred'])).allowed === false)
    t.equal(reads() - readsBefore, 1, "one GET in all: the deleted secret's name, then its absence is remembered")
  },
)

t.test('a repeated spec reuses its assessment until its service account or a registry answer changes', async (t) => {
  kube.put('namespaces', { ...loadFixture<any>('api/namespace.json'), metadata: { name: 'team-memo', labels: {} } })
  kube.put('serviceaccounts', {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: { name: 'builder', namespace: 'team-memo' },
    imagePullSecrets: [],
  })
  kube.put(
    'secrets',
    makeDockerConfigSecret('team-memo', 'regcred', { [priv.host]: { username: 'puller', password: PULLER_PASSWORD } }),
  )
  const w = await webhook()
  const lookups = async (): Promise<number> => {
    const text = (await w.get('/metrics')).text
    return [...text.matchAll(/^pullguard_cache_lookups_total\{cache="result",result="[a-z]+"\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    )
  }
  // A Deployment whose pods get the service account's pull secrets (registry-semantics §4).
  const deployment = (uid: string): any => {
    const r = review('deployment-create-dryrun.json')
    r.request.uid = uid
    r.request.namespace = 'team-memo'
    r.request.object.metadata.namespace = 'team-memo'
    const spec = r.request.object.spec.template.spec
    spec.serviceAccountName = 'builder'
    spec.imagePullSecrets = []
    spec.initContainers = []
    spec.containers = [{ name: 'app', image: `${priv.host}/example/sidecar:v1` }]
    return r
  }
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
      if (await check()) return
    t.fail(`timed out waiting for ${what}`)
  }
  await until('the copies of the new webhook', async () =>
    /pullguard_cache_entries\{cache="service-accounts"\} [1-9]/.test((await w.get('/metrics')).text),
  )
  t.match(
    (await w.post(deployment('d1'))).body.response,
    { allowed: false, status: { message: /no pull secret matches this registry/ } },
    'no secret from the service account yet',
  )
  // The first review also started the read of the Nodes' platforms: an input that changed once.
  await w.post(deployment('d2'))
  const before = await lookups()
  for (let i = 0; i < 5; i++) t.equal((await w.post(deployment(`again-${i}`))).body.response.allowed, false)
  t.equal(await lookups(), before, 'the same spec again: the assessment is reused, not even the result cache is asked')
  t.match((await w.get('/metrics')).text, /pullguard_cache_entries\{cache="assessments"\} [1-9]/)

  kube.put('serviceaccounts', {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: { name: 'builder', namespace: 'team-memo' },
    imagePullSecrets: [{ name: 'regcred' }],
  })
  await until(
    'the service account that now lists regcred',
    async () => (await w.post(deployment('after-sa'))).body.response.allowed === true,
  )
  t.ok((await lookups()) > before, 'the changed service account made a new assessment')
})

t.test(
  'an image on a cloud metadata or link-local host is denied without any request, whatever the mode of other checks',
  async (t) => {
    const requests = async (): Promise<number> =>
      [
        ...(await hook.get('/metrics')).text.matchAll(
          /^pullguard_registry_request_duration_seconds_count\{[^}]*\} (\d+)/gm,
        ),
      ].reduce((n, m) => n + Number(m[1]), 0)
    const before = await requests()
    for (const image of [
      '169.254.169.254/latest/meta-data:v1',
      '[fd00:ec2::254]:80/x:1',
      'metadata.google.internal/computemetadata/v1:latest',
      '2852039166:80/x:1',
    ]) {
      const res = (await hook.post(podWith([image], { secrets: ['regcred'] }))).body.response
      t.equal(res.allowed, false, image)
      t.match(res.status.message, /registry host .*(link-local|metadata)/, `${image}: the reason`)
      t.match(res.status.message, /pullguard sends no request to it/)
    }
    t.equal(await requests(), before, 'no registry request, no token request')
  },
)
