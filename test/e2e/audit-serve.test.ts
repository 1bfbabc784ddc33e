// The background audit in `serve`, in a real kube-apiserver with real registries: pullguard runs
// with the manifests' RBAC (list/watch on workloads, the Lease Role), audits every workload each
// interval and reports what would no longer pull in its metrics, its decision log and, opted in,
// Events. Registry requests are counted in the open registry's own access log.
import t from 'tap'
import { freePort, startFakeServer } from '../helpers/fake-server.js'
import { request, Agent } from 'undici'
import { createManyUses, manifestHeads, PRIVATE_PATH } from '../cluster/audit-uses.js'
import { PULLER, startWorld } from '../cluster/e2e.js'
import { startPullguard } from '../cluster/pullguard.js'
import { seedOciManifest } from '../helpers/seed.js'

const INTERVAL = '3s'
const QPS = 5
const world = await startWorld(t, {
  images: ['open:team/api:1.0', 'open:team/api:1.1', 'private:shop/api:2.4.1'],
  accessLog: true,
  args: ['--audit-interval', INTERVAL, '--audit-registry-qps', String(QPS)],
})
const { cp, open } = world
const host = world.private.host
await world.namespace('live', { 'pullguard.io/mode': 'warn' })
const gone = await seedOciManifest(open, 'team/gone', '1')
const labels = { app: 'x' }
const deployment = (
  name: string,
  image: string,
  extra: { replicas?: number; pod?: Record<string, unknown> } = {},
): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'live' },
  spec: {
    ...(extra.replicas === undefined ? {} : { replicas: extra.replicas }),
    selector: { matchLabels: labels },
    template: { metadata: { labels }, spec: { containers: [{ name: 'c0', image }], ...extra.pod } },
  },
})
async function create(o: Record<string, unknown>): Promise<void> {
  const run = await world.apply(o, 'create')
  if (run.code !== 0) throw new Error(run.stderr)
}
const secret = (password: string): Promise<string> =>
  cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    'regcred',
    '-n',
    'live',
    `--docker-server=${host}`,
    `--docker-username=${PULLER.username}`,
    `--docker-password=${password}`,
  ])
await secret(PULLER.password)
await create(deployment('web', `${open.host}/team/gone:1`))
await create(deployment('idle', `${open.host}/team/api:1.2`, { replicas: 0 }))
await create(deployment('private', `${host}/shop/api:2.4.1`, { pod: { imagePullSecrets: [{ name: 'regcred' }] } }))

/** The value of a series in Prometheus text, or undefined. */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (want.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}
const NOT_PULLABLE = 'pullguard_workload_image_not_pullable'
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}
const metric = async (name: string, labels: Record<string, string>): Promise<number | undefined> =>
  value(await world.pullguard.metrics(), name, labels)

t.test('a workload scaled to zero with a missing tag is found, marked, and logged once with its fix', async (t) => {
  await until(
    'the idle series',
    async () =>
      (await metric(NOT_PULLABLE, {
        workload_namespace: 'live',
        kind: 'Deployment',
        name: 'idle',
        container: 'c0',
        reason: 'TagNotFound',
      })) === 1,
  )
  const lines = (await world.pullguard.settledLogs()).filter((l) => l['msg'] === 'audit' && l['name'] === 'idle')
  t.equal(lines.length, 1, 'one line for the change of state, not one per pass')
  t.match(lines[0], {
    namespace: 'live',
    kind: 'Deployment',
    container: 'c0',
    from: 'unaudited',
    to: 'not-pullable',
    reason: 'TagNotFound',
    scaledToZero: true,
    fix: [
      'existing tags nearest to "1.2": 1.1, 1.0',
      `use the nearest one: kubectl set image deployment/idle -n live c0=${open.host}/team/api:1.1`,
    ],
  })
  const text = await world.pullguard.metrics()
  t.ok(
    (value(text, 'pullguard_audit_last_pass_completed_timestamp_seconds', {}) ?? 0) > Date.now() / 1000 - 60,
    'a pass completed within the last minute',
  )
  // web and private: each pass is spread over the interval, so the idle finding may come before
  // both are counted.
  await until(
    'both pullable workloads counted',
    async () => (value(await world.pullguard.metrics(), 'pullguard_audit_images', { result: 'pullable' }) ?? 0) >= 2,
  )
  t.ok(
    (value(await world.pullguard.metrics(), 'pullguard_audit_images', { result: 'pullable' }) ?? 0) >= 2,
    'web and private counted as pullable',
  )
  t.equal(value(text, NOT_PULLABLE, { name: 'web' }), undefined, 'a pullable workload has no series')
})

t.test('a tag deleted from the registry shows up within one interval; pushed back, it clears', async (t) => {
  const agent = new Agent({ connect: { ca: world.registryCa.caPem } })
  t.teardown(() => agent.close())
  const res = await request(`${open.origin}/v2/team/gone/manifests/${gone.digest}`, {
    method: 'DELETE',
    dispatcher: agent,
  })
  await res.body.dump()
  t.equal(res.statusCode, 202)
  const took = await until(
    'the web series',
    async () => (await metric(NOT_PULLABLE, { name: 'web', reason: 'TagNotFound' })) === 1,
  )
  t.ok(took < 2 * 3000 + 2000, `seen ${took} ms after the delete`)
  await seedOciManifest(open, 'team/gone', '1')
  await until('the web series gone', async () => (await metric(NOT_PULLABLE, { name: 'web' })) === undefined)
  const changes = (await world.pullguard.settledLogs())
    .filter((l) => l['msg'] === 'audit' && l['name'] === 'web')
    .map((l) => `${l['from']}→${l['to']}`)
  t.same(changes, ['pullable→not-pullable', 'not-pullable→pullable'], 'each change of state logged once')
})

t.test('a pull secret rotated with a wrong password is found', async () => {
  await cp.kubectlOk(['delete', 'secret', 'regcred', '-n', 'live'])
  await secret('rotated-wrong')
  await until(
    'the private series',
    async () => (await metric(NOT_PULLABLE, { name: 'private', reason: 'AccessDenied' })) === 1,
  )
  await cp.kubectlOk(['delete', 'secret', 'regcred', '-n', 'live'])
  await secret(PULLER.password)
  await until('the private series gone', async () => (await metric(NOT_PULLABLE, { name: 'private' })) === undefined)
})

t.test('a registry that answers 429 with Retry-After is not asked again by the audit until then', async (t) => {
  const at: number[] = []
  const limited = await startFakeServer((_req, res) => {
    at.push(Date.now())
    res.writeHead(429, { 'Retry-After': '9', 'Content-Type': 'application/json' })
    res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
  }, world.registryCa)
  t.teardown(() => limited.close())
  await create(deployment('limited', `${limited.host}/team/app:1`))
  const base = Date.now()
  await until('the audit asks it', async () => at.some((x) => x > base), 10_000)
  const first = at.find((x) => x > base)!
  await new Promise((r) => setTimeout(r, Math.max(0, first + 13_000 - Date.now())))
  const later = at.filter((x) => x > first + 1000)
  t.ok(
    later.every((x) => x >= first + 8500),
    `nothing within the 9 s Retry-After (then ${later.map((x) => x - first).join(', ')} ms after the first)`,
  )
  t.ok(later.length > 0, 'asked again once it has passed')
  t.equal(await metric(NOT_PULLABLE, { name: 'limited' }), undefined, 'rate limited is unverified, not broken')
  await cp.kubectlOk(['delete', 'deployment', 'limited', '-n', 'live'])
})

t.test('Events: one ImageNotPullable Event per broken workload, updated each pass, not repeated', async (t) => {
  await cp.kubectlOk([
    'patch',
    'clusterrole',
    'pullguard',
    '--type=json',
    '-p',
    JSON.stringify([
      { op: 'add', path: '/rules/-', value: { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] } },
    ]),
  ])
  await world.restartPullguard([
    '--audit-interval',
    INTERVAL,
    '--audit-registry-qps',
    String(QPS),
    '--audit-events',
    'true',
  ])
  const events = async (): Promise<
    Array<{ count: number; message: string; involvedObject: { kind: string; name: string } }>
  > =>
    JSON.parse(
      await cp.kubectlOk([
        'get',
        'events',
        '-n',
        'live',
        '--field-selector',
        'reason=ImageNotPullable,involvedObject.name=idle',
        '-o',
        'json',
      ]),
    ).items
  await until('the Event', async () => (await events()).length === 1)
  await until('the Event updated by a later pass', async () => ((await events())[0]?.count ?? 0) >= 3, 30_000)
  const [event] = await events()
  t.equal((await events()).length, 1, 'still one Event')
  t.match(event, {
    involvedObject: { kind: 'Deployment', name: 'idle' },
    type: 'Warning',
    source: { component: 'pullguard' },
  })
  t.match(
    event?.message,
    `container "c0" image "${open.host}/team/api:1.2": tag "1.2" not found in ${open.host}/team/api; fix: try 1.1, 1.0`,
  )
  t.match(
    await cp.kubectlOk(['describe', 'deployment', 'idle', '-n', 'live']),
    /Warning\s+ImageNotPullable\s+.*pullguard\s+container "c0"/,
    'kubectl describe shows it',
  )
})

t.test('a deleted workload loses its series within one interval', async (t) => {
  t.equal(await metric(NOT_PULLABLE, { name: 'idle' }), 1)
  await cp.kubectlOk(['delete', 'deployment', 'idle', '-n', 'live'])
  const took = await until(
    'the idle series gone',
    async () => (await metric(NOT_PULLABLE, { name: 'idle' })) === undefined,
  )
  t.ok(took < 3000 + 2000, `gone ${took} ms after the delete`)
})

t.test(`pacing: at most ${QPS} requests a second to one registry, spread out`, async (t) => {
  // Twenty more questions on the open registry: a pass needs 4 s at 5 a second, more than the interval.
  for (let i = 0; i < 20; i++) await seedOciManifest(open, 'team/many', String(i))
  for (let i = 0; i < 20; i++) await create(deployment(`many-${i}`, `${open.host}/team/many:${i}`, { replicas: 0 }))
  const from = Date.now() + 4000
  await new Promise((r) => setTimeout(r, 4000 + 6000))
  const heads = open.requests().filter((r) => r.at >= from && r.at < from + 6000 && /\/manifests\//.test(r.path))
  t.ok(heads.length >= 20, `${heads.length} manifest requests in 6 s`)
  let busiest = 0
  for (const r of heads) busiest = Math.max(busiest, heads.filter((x) => x.at >= r.at && x.at < r.at + 1000).length)
  t.ok(busiest <= QPS + 1, `at most ${QPS} (+1 for log timing) in any second: ${busiest}`)
  t.ok(heads.length <= QPS * 6 + 2, `about ${QPS} a second on average: ${heads.length} in 6 s`)
  t.ok(
    heads.every((r) => r.method === 'HEAD'),
    'manifest HEADs only',
  )
  for (let i = 0; i < 20; i++) await cp.kubectlOk(['delete', 'deployment', `many-${i}`, '-n', 'live', '--wait=false'])
})

t.test('each pass asks each distinct question once: requests counted at the registries', async (t) => {
  await seedOciManifest(open, 'team/shared', '1')
  await createManyUses(world, 'q', `${open.host}/team/shared:1`)
  const created = Date.now()
  type Pass = { start: number; end: number; questions: number; requests: number }
  const passes = (): Pass[] =>
    world.pullguard
      .logs()
      .filter((l) => l['msg'] === 'audit pass completed')
      .map((l) => ({
        start: Number(l['time']) - Number(l['durationMs']),
        end: Number(l['time']),
        questions: Number(l['questions']),
        requests: Number(l['registryRequests']),
      }))
      .filter((p) => p.start > created + 500)
  // Two whole passes after the objects were made, and the start of the one after them.
  await until('three passes after the objects were made', async () => passes().length >= 3, 30_000)
  await new Promise((r) => setTimeout(r, 300)) // the access logs' last lines
  const [first, second, third] = passes()
  for (const [pass, next] of [
    [first!, second!],
    [second!, third!],
  ] as const) {
    const window = { from: pass.start, to: next.start }
    t.equal(
      manifestHeads(open, '/v2/team/shared/manifests/1', window),
      1,
      '32 uses of one image: one manifest request in the pass',
    )
    t.equal(
      manifestHeads(world.private, PRIVATE_PATH, window, 200),
      1,
      'one secret copied into seven namespaces (and live): one manifest request answered in the pass',
    )
    t.ok(
      pass.requests >= pass.questions && pass.questions > 0,
      `the log: ${pass.questions} questions, ${pass.requests} requests`,
    )
  }
  const text = await world.pullguard.metrics()
  const questions = ['pullable', 'not-pullable', 'unverified'].map(
    (result) => value(text, 'pullguard_audit_questions', { result }) ?? NaN,
  )
  t.ok(
    questions.every((n) => Number.isFinite(n)),
    `pullguard_audit_questions by result: ${questions.join(', ')}`,
  )
  t.ok(
    (value(text, 'pullguard_audit_registry_requests_total', { registry: open.host }) ?? 0) >= 2,
    'pullguard_audit_registry_requests_total counts the open registry',
  )
  t.equal(
    value(text, NOT_PULLABLE, { workload_namespace: 'q-7', name: 'd4', reason: 'AccessDenied' }),
    1,
    'the wrong copy is reported',
  )
  t.equal(value(text, NOT_PULLABLE, { workload_namespace: 'q-0', name: 'd4' }), undefined, 'its good copies are not')
})

t.test('two replicas, one Lease: only the leader audits; killed, the other takes over', async (t) => {
  const second = await startPullguard(cp, {
    port: await freePort(),
    kubeconfig: world.installed.kubeconfig,
    args: ['--registry-ca', world.registryCa.caPath, '--audit-interval', INTERVAL, '--audit-registry-qps', String(QPS)],
    env: { POD_NAME: 'pullguard-second' },
  })
  t.teardown(() => second.stop())
  const audited = (p: { logs(): Array<Record<string, unknown>> }): number =>
    p.logs().filter((l) => l['msg'] === 'audit pass completed').length
  await new Promise((r) => setTimeout(r, 5000))
  t.equal(audited(second), 0, 'the second replica does not audit while the first holds the Lease')
  t.equal(
    value(await second.metrics(), 'pullguard_registry_request_duration_seconds_count', { registry: open.host }),
    undefined,
    'and sends the registry nothing',
  )
  const lease = JSON.parse(await cp.kubectlOk(['get', 'lease', 'pullguard-audit', '-n', 'pullguard', '-o', 'json']))
  t.not(lease.spec.holderIdentity, 'pullguard-second')
  world.pullguard.child.process.kill('SIGKILL')
  const took = await until(
    'the second replica leads',
    async () => second.logs().some((l) => l['msg'] === 'audit leader: this replica audits'),
    40_000,
  )
  t.ok(took < 30_000, `took over ${took} ms after the leader was killed`)
  await until('the second replica audits', async () => audited(second) > 0, 20_000)
  t.equal(
    JSON.parse(await cp.kubectlOk(['get', 'lease', 'pullguard-audit', '-n', 'pullguard', '-o', 'json'])).spec
      .holderIdentity,
    'pullguard-second',
  )
})
