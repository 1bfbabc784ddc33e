// ClusterCache against the API stand-in's list + watch: warm lookups make no request, changes and
// deletes arrive through the watch, a dropped or expired watch recovers, and without list
// permission every lookup still reaches the API.
import t, { type Test } from 'tap'
import { ClusterCache } from '../../src/kube/cluster-cache.js'
import { KubeApi, loadKubeConfig } from '../../src/kube/kube-api.js'
import { createLogger } from '../../src/log/logger.js'
import { loadFixture, makeDockerConfigSecret, startFakeKubeApi, type FakeKubeApi } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())

async function setup(
  t: Test,
  prepare: (fake: FakeKubeApi) => void = () => undefined,
): Promise<{ fake: FakeKubeApi; cache: ClusterCache; gets: () => string[] }> {
  const fake = await startFakeKubeApi({ ca })
  t.teardown(() => fake.close())
  fake.put(
    'secrets',
    makeDockerConfigSecret('team-a', 'regcred', { 'reg.example.com': { username: 'u', password: 'first-password' } }),
  )
  fake.put(
    'secrets',
    makeDockerConfigSecret(
      'team-a',
      'legacy',
      { 'reg.example.com': { username: 'u', password: 'p' } },
      'kubernetes.io/dockercfg',
    ),
  )
  fake.put('secrets', loadFixture('api/secret-opaque.json'))
  fake.put('serviceaccounts', loadFixture('api/serviceaccount.json'))
  fake.put('namespaces', loadFixture('api/namespace.json'))
  prepare(fake)
  const kc = loadKubeConfig(fake.kubeconfigPath)
  const cache = new ClusterCache(kc, new KubeApi(kc), createLogger('silent'))
  t.teardown(() => cache.stop())
  cache.start()
  const gets = (): string[] =>
    fake.requests
      .filter((r) => !r.path.includes('watch=') && !/^\/api\/v1\/(secrets|serviceaccounts|namespaces)\?/.test(r.path))
      .map((r) => r.path)
  return { fake, cache, gets }
}

async function until(t: Test, what: string, check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  t.fail(`timed out waiting for ${what}`)
}

const password = async (cache: ClusterCache, ns: string, name: string): Promise<string | undefined> => {
  const r = await cache.getSecret(ns, name)
  if (r.kind !== 'found') return r.kind
  const data = r.object.data['.dockerconfigjson'] ?? r.object.data['.dockercfg']
  return data === undefined
    ? 'no data'
    : JSON.stringify(JSON.parse(Buffer.from(data, 'base64').toString())).match(/"password":"([^"]*)"/)?.[1]
}

t.test('warm: secrets of both docker types, service accounts and namespaces answer without a request', async (t) => {
  const { fake, cache, gets } = await setup(t)
  t.equal(await cache.waitForSync(5000), true)
  t.match(
    cache.stats(),
    { pullSecrets: 2, serviceAccounts: 1, namespaces: 1, synced: true },
    'the Opaque secret is not copied',
  )
  const sa = loadFixture('api/serviceaccount.json')
  const ns = loadFixture('api/namespace.json')
  for (let i = 0; i < 20; i++) {
    t.equal(await password(cache, 'team-a', 'regcred'), 'first-password')
    t.equal((await cache.getSecret('team-a', 'legacy')).kind, 'found')
    t.match(await cache.getServiceAccount(sa.metadata.namespace, sa.metadata.name), {
      kind: 'found',
      object: { imagePullSecrets: sa.imagePullSecrets.map((r: { name: string }) => r.name) },
    })
    t.match(await cache.getNamespace(ns.metadata.name), { kind: 'found', object: { labels: ns.metadata.labels } })
  }
  t.same(gets(), [], 'no GET at all')
  t.ok(
    fake.requests.some((r) => r.path.includes('fieldSelector=type%3Dkubernetes.io%2Fdockerconfigjson')),
    'secrets are listed by type',
  )
  const found = await cache.getSecret('team-a', 'regcred')
  t.same(
    found.kind === 'found' ? Object.keys(found.object.data) : found,
    ['.dockerconfigjson'],
    'only the key the kubelet reads is kept',
  )
})

t.test('a changed secret is used at once; a deleted one is gone, and its absence is remembered briefly', async (t) => {
  const { fake, cache, gets } = await setup(t)
  await cache.waitForSync(5000)
  fake.put(
    'secrets',
    makeDockerConfigSecret('team-a', 'regcred', { 'reg.example.com': { username: 'u', password: 'second-password' } }),
  )
  await until(t, 'the update', async () => (await password(cache, 'team-a', 'regcred')) === 'second-password')
  fake.remove('secrets', 'team-a/regcred')
  await until(t, 'the delete', () => cache.stats().pullSecrets === 1)
  t.equal(await password(cache, 'team-a', 'regcred'), 'missing')
  t.equal(await password(cache, 'team-a', 'regcred'), 'missing')
  t.same(gets(), ['/api/v1/namespaces/team-a/secrets/regcred'], 'one GET for the missing name, then remembered')
  fake.put(
    'secrets',
    makeDockerConfigSecret('team-a', 'regcred', { 'reg.example.com': { username: 'u', password: 'third-password' } }),
  )
  await until(t, 'the re-creation', async () => (await password(cache, 'team-a', 'regcred')) === 'third-password')
  t.equal(gets().length, 1, 'a re-created docker secret comes from the watch, not from the remembered absence')
})

t.test('copies of one pull secret share one data object; a copy that changes gets its own', async (t) => {
  const same = { 'reg.example.com': { username: 'u', password: 'copied-everywhere' } }
  const { fake, cache } = await setup(t, (fake) => {
    for (const ns of ['team-b', 'team-c', 'team-d']) fake.put('secrets', makeDockerConfigSecret(ns, 'copied', same))
  })
  await cache.waitForSync(5000)
  const data = async (ns: string): Promise<unknown> => {
    const r = await cache.getSecret(ns, 'copied')
    return r.kind === 'found' ? r.object.data : r.kind
  }
  const b = await data('team-b')
  t.equal(await data('team-c'), b, 'the same object, not an equal copy')
  t.equal(await data('team-d'), b)
  t.ok(Object.isFrozen(b))
  fake.put(
    'secrets',
    makeDockerConfigSecret('team-c', 'copied', { 'reg.example.com': { username: 'u', password: 'rotated' } }),
  )
  await until(t, 'the update', async () => (await password(cache, 'team-c', 'copied')) === 'rotated')
  t.not(await data('team-c'), b, 'the changed copy has its own')
  t.equal(await data('team-b'), b, 'the others still share theirs')
  t.equal(await password(cache, 'team-b', 'copied'), 'copied-everywhere')
})

t.test('a secret of another type is read from the API once and remembered without its data', async (t) => {
  const { cache, gets } = await setup(t)
  await cache.waitForSync(5000)
  const opaque = loadFixture('api/secret-opaque.json')
  const first = await cache.getSecret(opaque.metadata.namespace, opaque.metadata.name)
  const second = await cache.getSecret(opaque.metadata.namespace, opaque.metadata.name)
  t.match(first, { kind: 'found', object: { type: 'Opaque' } })
  t.match(second, { kind: 'found', object: { type: 'Opaque', data: {} } })
  t.same(second.kind === 'found' ? second.object.data : undefined, {}, 'the remembered copy holds no data')
  t.equal(gets().length, 1)
})

t.test('a dropped watch resumes, an expired one lists again: changes keep arriving', async (t) => {
  const { fake, cache } = await setup(t)
  await cache.waitForSync(5000)
  await until(t, 'the watches', () => fake.watches === 4)
  const lists = (): number => fake.requests.filter((r) => !r.path.includes('watch=')).length
  const listedBefore = lists()
  fake.dropWatches()
  fake.put(
    'secrets',
    makeDockerConfigSecret('team-a', 'regcred', { 'reg.example.com': { username: 'u', password: 'after-drop' } }),
  )
  await until(
    t,
    'the change after a dropped watch',
    async () => (await password(cache, 'team-a', 'regcred')) === 'after-drop',
    8000,
  )
  await until(t, 'the watches again', () => fake.watches === 4, 8000)
  t.equal(lists(), listedBefore, 'a dropped watch resumes from its resourceVersion: nothing is listed again')
  const changed: string[] = []
  cache.onNamespaceChange((name) => changed.push(name))
  fake.expireWatches()
  fake.put('namespaces', {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: { name: 'team-new', labels: { 'pullguard.io/mode': 'warn' } },
  })
  // From the copy, not the API fallback: the re-list has happened.
  await until(
    t,
    'the change after an expired watch',
    () => changed.includes('team-new') && cache.stats().namespaces === 2,
    8000,
  )
  const listed = fake.requests.filter(
    (r) => r.path.startsWith('/api/v1/namespaces?') && !r.path.includes('watch='),
  ).length
  t.ok(listed >= 2, 'the namespaces were listed again after 410 Gone')
  changed.splice(0)
  fake.put('namespaces', {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: { name: 'team-new', labels: { 'pullguard.io/mode': 'off' } },
  })
  await until(t, 'the relabel announced (the modes forget their cached label)', () => changed.includes('team-new'))
  t.match(await cache.getNamespace('team-new'), { kind: 'found', object: { labels: { 'pullguard.io/mode': 'off' } } })
})

t.test('without permission to list, every lookup goes to the API and still works', async (t) => {
  const { cache, gets } = await setup(t, (fake) =>
    fake.faults.push({ match: /^\/api\/v1\/(secrets|serviceaccounts|namespaces)\?/, status: 403 }),
  )
  t.equal(await cache.waitForSync(300), false)
  t.equal(await password(cache, 'team-a', 'regcred'), 'first-password')
  t.equal(await password(cache, 'team-a', 'regcred'), 'first-password')
  t.equal((await cache.getSecret('team-a', 'nope')).kind, 'missing')
  t.equal((await cache.getSecret('team-a', 'nope')).kind, 'missing')
  t.equal(gets().length, 4, 'nothing is remembered from an incomplete copy')
  t.equal(cache.revision('team-a'), undefined, 'no revision: nothing derived from these answers may be kept')
})

t.test(
  "a namespace's revision moves with its pull secrets, service accounts and Namespace object, and only those",
  async (t) => {
    const { fake, cache } = await setup(t)
    t.equal(cache.revision('team-a'), undefined, 'none before the copies are listed')
    await cache.waitForSync(5000)
    const sa = loadFixture<any>('api/serviceaccount.json')
    const ns = loadFixture<any>('api/namespace.json')
    const other = 'team-other'
    const moved = async (what: string, change: () => void, namespace: string): Promise<void> => {
      const before = cache.revision(namespace)
      const elsewhere = cache.revision(namespace === other ? 'team-a' : other)
      t.type(before, 'number')
      change()
      await until(t, what, () => cache.revision(namespace) !== before)
      t.equal(
        cache.revision(namespace === other ? 'team-a' : other),
        elsewhere,
        `${what}: other namespaces keep theirs`,
      )
    }
    await moved(
      'a changed pull secret',
      () =>
        fake.put(
          'secrets',
          makeDockerConfigSecret('team-a', 'regcred', { 'reg.example.com': { username: 'u', password: 'next' } }),
        ),
      'team-a',
    )
    await moved('a deleted pull secret', () => fake.remove('secrets', 'team-a/legacy'), 'team-a')
    await moved(
      'a new pull secret in another namespace',
      () =>
        fake.put(
          'secrets',
          makeDockerConfigSecret(other, 'regcred', { 'reg.example.com': { username: 'u', password: 'p' } }),
        ),
      other,
    )
    await moved(
      'a changed service account',
      () => fake.put('serviceaccounts', { ...sa, imagePullSecrets: [{ name: 'added' }] }),
      sa.metadata.namespace,
    )
    await moved(
      'a relabelled namespace',
      () => fake.put('namespaces', { ...ns, metadata: { ...ns.metadata, labels: { 'pullguard.io/mode': 'warn' } } }),
      ns.metadata.name,
    )
    // An Opaque secret is not watched: it can never be a pull secret, and it leaves the revision alone.
    const before = cache.revision('team-a')
    fake.put('secrets', { ...loadFixture<object>('api/secret-opaque.json'), data: { other: 'Y2hhbmdlZA==' } })
    await new Promise((r) => setTimeout(r, 200))
    t.equal(cache.revision('team-a'), before, 'a change the kubelet cannot see moves nothing')
  },
)

t.test('a watch answered HTTP 410 lists again (its version expired), after a back-off', async (t) => {
  const fake = await startFakeKubeApi({ ca })
  t.teardown(() => fake.close())
  fake.faults.push({ match: /\/api\/v1\/namespaces\?.*watch=true/, status: 410 })
  const kc = loadKubeConfig(fake.kubeconfigPath)
  const cache = new ClusterCache(kc, new KubeApi(kc), createLogger('silent'))
  t.teardown(() => cache.stop())
  cache.start()
  await new Promise((r) => setTimeout(r, 3_500))
  const lists = fake.requests.filter(
    (r) => /^\/api\/v1\/namespaces\?/.test(r.path) && !r.path.includes('watch='),
  ).length
  t.ok(lists >= 2 && lists <= 3, `${lists} lists of namespaces in 3.5 s: listed again after 410, with a back-off`)
})

t.test(
  'list allowed but watch forbidden: said once per copy, not "usable again" and a new list every second',
  async (t) => {
    const { Writable } = await import('node:stream')
    const fake = await startFakeKubeApi({ ca })
    t.teardown(() => fake.close())
    fake.faults.push({ match: /watch=true/, status: 403 })
    const lines: Array<{ level: number; msg: string }> = []
    const sink = new Writable({
      write(c: Buffer, _e, done) {
        for (const l of c.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l))
        done()
      },
    })
    const kc = loadKubeConfig(fake.kubeconfigPath)
    const cache = new ClusterCache(kc, new KubeApi(kc), createLogger('info', sink))
    t.teardown(() => cache.stop())
    cache.start()
    await new Promise((r) => setTimeout(r, 3_500))
    const warnings = lines.filter((l) => l.level === 40)
    t.equal(new Set(warnings.map((w) => w.msg)).size, warnings.length, 'no warning repeated')
    t.ok(
      warnings.length >= 1 &&
        warnings.every((w) =>
          /^Kubernetes API cannot be used: pullguard may not watch (secrets|serviceaccounts|namespaces) \(403 Forbidden\)/.test(
            w.msg,
          ),
        ),
      warnings.map((w) => w.msg).join('\n'),
    )
    t.notOk(
      lines.some((l) => l.msg === 'Kubernetes API usable again'),
      'never "usable again" while the watch is refused',
    )
    const lists = fake.requests.filter(
      (r) => /^\/api\/v1\/namespaces\?/.test(r.path) && !r.path.includes('watch='),
    ).length
    t.ok(lists <= 3, `${lists} lists of namespaces in 3.5 s (back-off 1 s, 2 s, …)`)
  },
)
