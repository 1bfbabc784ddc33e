// `pullguard audit` against a real kube-apiserver and real registries: workloads of every kind are
// stored (in a warn namespace, so broken ones are let in, as in a cluster rolled out in warn
// mode), then the CLI lists them with the user's kubeconfig and judges every image as the webhook
// would judge a CREATE. A tag deleted from the registry afterwards shows up; pushed back, it clears.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import t from 'tap'
import { createManyUses, manifestHeads, PRIVATE_PATH } from '../cluster/audit-uses.js'
import { PULLER, startWorld } from '../cluster/e2e.js'
import { runCli } from '../helpers/cli.js'
import { closedPort } from '../helpers/fake-server.js'
import { seedOciManifest } from '../helpers/seed.js'

const world = await startWorld(t, {
  images: ['open:team/api:1.0', 'open:team/api:1.1', 'private:shop/api:2.4.1'],
  accessLog: true,
})
const { cp, open } = world
const cliEnv = { KUBECONFIG: cp.adminKubeconfig, PULLGUARD_REGISTRY_CA: world.registryCa.caPath, HOME: tmpdir() }
const good = `${open.host}/team/api:1.0`
const gone = await seedOciManifest(open, 'team/gone', '1.0')
const goneImage = `${open.host}/team/gone:1.0`
const privateImage = `${world.private.host}/shop/api:2.4.1`
await world.namespace('apps', { 'pullguard.io/mode': 'warn' })

const labels = { app: 'x' }
const template = (image: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  metadata: { labels },
  spec: { containers: [{ name: 'c0', image }], ...extra },
})
const meta = (name: string): Record<string, unknown> => ({ name, namespace: 'apps' })
const objects: Record<string, unknown>[] = [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('web'),
    spec: { selector: { matchLabels: labels }, template: template(good) },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('idle'),
    spec: { replicas: 0, selector: { matchLabels: labels }, template: template(`${open.host}/team/api:1.2`) },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta('db'),
    spec: { serviceName: 'db', selector: { matchLabels: labels }, template: template(goneImage) },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta('agent'),
    spec: { selector: { matchLabels: labels }, template: template(good) },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: meta('solo'),
    spec: { selector: { matchLabels: labels }, template: template(good) },
  },
  {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: meta('old'),
    spec: { selector: labels, template: template(good) },
  },
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: meta('nightly'),
    spec: {
      schedule: '0 3 * * *',
      jobTemplate: { spec: { template: template(privateImage, { restartPolicy: 'OnFailure' }) } },
    },
  },
  {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta('migrate'),
    spec: { template: template(good, { restartPolicy: 'Never' }) },
  },
  { apiVersion: 'v1', kind: 'Pod', metadata: meta('bare'), spec: { containers: [{ name: 'c0', image: good }] } },
]
for (const o of objects) {
  const run = await world.apply(o, 'create')
  if (run.code !== 0) throw new Error(run.stderr)
}
// A ReplicaSet of the Deployment `web` (no controller runs here to make it): left to its owner.
const webUid = (await cp.kubectlOk(['get', 'deployment', 'web', '-n', 'apps', '-o', 'jsonpath={.metadata.uid}'])).trim()
await world.apply(
  {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      ...meta('web-5d8f7c9b6d'),
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: webUid, controller: true }],
    },
    spec: { selector: { matchLabels: labels }, template: template(`${open.host}/team/api:9.8`) },
  },
  'create',
)

t.test('audit -n apps: every kind judged, the broken ones listed with the fix for the live workload', async (t) => {
  const run = await runCli(['audit', '-n', 'apps', '-o', 'json'], { env: cliEnv })
  t.equal(run.code, 1, run.stderr)
  const report = JSON.parse(run.stdout)
  t.same(report.scope, { kind: 'namespace', namespace: 'apps' })
  t.same(
    report.summary,
    {
      workloads: 9,
      images: 9,
      pullable: 7,
      notPullable: 2,
      unverified: 0,
      questions: 4,
      registryRequests: 5,
      exitCode: 1,
    },
    "nine workloads of eight kinds (the Deployment's own ReplicaSet is left to it); 4 distinct questions, and the missing tag's listing",
  )
  t.same(
    report.workloads.map((w: any) => [w.kind, w.name, w.scaledToZero, w.images.map((i: any) => i.reason)]),
    [
      ['Deployment', 'idle', true, ['TagNotFound']],
      ['CronJob', 'nightly', false, ['AccessDenied']],
    ],
    'kind by kind, as they are listed',
  )
  const idle = report.workloads[0].images[0]
  t.same(idle.fix, [
    'existing tags nearest to "1.2": 1.1, 1.0',
    `use the nearest one: kubectl set image deployment/idle -n apps c0=${open.host}/team/api:1.1`,
  ])
  const nightly = report.workloads[1].images[0]
  const NEW = `pull-${world.private.host.replace(/[.:]/g, '-')}`
  t.same(
    nightly.fix,
    [
      `create a pull secret for ${world.private.host}: kubectl create secret docker-registry ${NEW} --docker-server=${world.private.host} --docker-username=USER --docker-password=PASSWORD -n apps`,
      `give it to the pods of service account "default", keeping the account's list: kubectl patch serviceaccount default -n apps -p '{"imagePullSecrets":[{"name":"${NEW}"}]}'`,
      `or, instead of the service account, list it in the pod template of cronjob/nightly (a new rollout follows): kubectl patch cronjob/nightly -n apps -p '{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"${NEW}"}]}}}}}}'`,
    ],
    "diagnose's fix lines, for the workload",
  )
  t.match(nightly.message, `requires credentials (none matched); fix: `)
})

t.test('a tag deleted from the registry shows up; pushed back, it clears', async (t) => {
  const agent = new Agent({ connect: { ca: world.registryCa.caPem } })
  t.teardown(() => agent.close())
  const deleted = await request(`${open.origin}/v2/team/gone/manifests/${gone.digest}`, {
    method: 'DELETE',
    dispatcher: agent,
  })
  t.equal(deleted.statusCode, 202, 'the registry deleted the manifest')
  await deleted.body.dump()
  const after = await runCli(['audit', '-n', 'apps'], { env: cliEnv })
  t.equal(after.code, 1)
  t.match(
    after.stdout,
    `statefulset apps/db\n  container "c0" (spec.template.spec.containers[0]): not-pullable\n    image:    ${goneImage}\n    reason:   TagNotFound: tag "1.0" does not exist in ${open.host}/team/gone\n`,
  )
  t.match(after.stdout, '9 images in 9 workloads (namespace apps): 6 pullable, 3 not pullable, 0 unverified\n')
  await seedOciManifest(open, 'team/gone', '1.0')
  const back = await runCli(['audit', '-n', 'apps'], { env: cliEnv })
  t.notMatch(back.stdout, 'statefulset apps/db')
  t.match(back.stdout, '7 pullable, 2 not pullable')
})

t.test(
  'exit 0 when everything pulls, 3 when only unverified, 2 on usage errors and unlistable workloads',
  async (t) => {
    await world.namespace('fine')
    await world.apply(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'fine' },
        spec: { selector: { matchLabels: labels }, template: template(good) },
      },
      'create',
    )
    const fine = await runCli(['audit', '-n', 'fine'], { env: cliEnv })
    t.same(
      [fine.code, fine.stdout],
      [0, '1 image in 1 workload (namespace fine): 1 pullable, 0 not pullable, 0 unverified\n'],
    )

    await world.namespace('dark')
    const dark = `127.0.0.1:${await closedPort()}/team/app:1`
    const stored = await world.apply(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', namespace: 'dark' },
        spec: { selector: { matchLabels: labels }, template: template(dark) },
      },
      'create',
    )
    t.equal(stored.code, 0, stored.stderr)
    const unverified = await runCli(['audit', '-n', 'dark', '-o', 'json'], { env: cliEnv })
    t.equal(unverified.code, 3, unverified.stdout)
    t.match(JSON.parse(unverified.stdout).workloads[0].images[0], {
      result: 'unverified',
      reason: 'RegistryUnreachable',
      fix: [],
    })

    const usage = await runCli(['audit', '-A', '-n', 'x'], { env: cliEnv })
    t.same([usage.code, usage.stdout], [2, ''])
    t.match(usage.stderr, 'pullguard: --all-namespaces: cannot be combined with --namespace')
    const token = (await cp.kubectlOk(['create', 'token', 'default', '-n', 'fine'])).trim()
    const nobody = await runCli(['audit', '-A'], {
      env: { ...cliEnv, KUBECONFIG: await cp.writeKubeconfig('nobody-audit', token) },
    })
    t.equal(nobody.code, 2)
    t.match(nobody.stderr, 'pullguard: the workloads of all namespaces cannot be listed: 403 Forbidden')
  },
)

t.test('-A finds the same workloads through cluster-wide lists', async (t) => {
  const run = await runCli(['audit', '-A', '-o', 'json'], { env: cliEnv })
  t.equal(run.code, 1)
  const names = JSON.parse(run.stdout).workloads.map((w: any) => `${w.namespace}/${w.kind}/${w.name}`)
  t.same(names, ['apps/Deployment/idle', 'dark/Deployment/app', 'apps/CronJob/nightly'])
})

t.test('-A asks each distinct question once: 40 Deployments in 8 namespaces, counted at the registries', async (t) => {
  await seedOciManifest(open, 'team/shared', '1')
  const shared = `${open.host}/team/shared:1`
  await createManyUses(world, 'q', shared)
  const from = Date.now()
  const run = await runCli(['audit', '-A', '-o', 'json'], { env: cliEnv })
  await new Promise((r) => setTimeout(r, 500)) // the access logs' last lines
  const to = Date.now()
  const window = { from, to: to + 1 }
  t.equal(
    manifestHeads(open, '/v2/team/shared/manifests/1', window),
    1,
    '32 uses of one image, no credentials: one manifest request',
  )
  t.equal(
    manifestHeads(world.private, PRIVATE_PATH, window, 200),
    1,
    'one secret copied into seven namespaces: one manifest request answered',
  )
  const report = JSON.parse(run.stdout)
  const broken = report.workloads
    .filter((w: any) => w.namespace.startsWith('q-'))
    .map((w: any) => `${w.namespace}/${w.name}:${w.images[0].reason}`)
  t.same(broken, ['q-7/d4:AccessDenied'], 'only the namespace whose copy is wrong is reported')
  const q7 = report.workloads.find((w: any) => w.namespace === 'q-7')
  t.match(q7.images[0].problem, 'secret q-7/regcred', 'naming its own secret')
})

t.test("-A with the nodes' credentials: one question for every namespace's pods", async (t) => {
  await seedOciManifest(world.private, 'shop/node', '1', PULLER)
  const image = `${world.private.host}/shop/node:1`
  const items: Record<string, unknown>[] = []
  for (let n = 0; n < 4; n++) {
    await world.namespace(`nc-${n}`, { 'pullguard.io/mode': 'warn' })
    for (let d = 0; d < 3; d++)
      items.push({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `d${d}`, namespace: `nc-${n}` },
        spec: { replicas: 0, selector: { matchLabels: labels }, template: template(image) },
      })
  }
  const made = await world.apply({ apiVersion: 'v1', kind: 'List', items }, 'create')
  t.equal(made.code, 0, made.stderr)
  const dir = mkdtempSync(join(tmpdir(), 'pullguard-node-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'config.json')
  const auth = Buffer.from(`${PULLER.username}:${PULLER.password}`).toString('base64')
  writeFileSync(config, JSON.stringify({ auths: { [world.private.host]: { auth } } }))
  const from = Date.now()
  const run = await runCli(['audit', '-A', '-o', 'json', '--node-docker-config', config], { env: cliEnv })
  await new Promise((r) => setTimeout(r, 500)) // the access logs' last lines
  t.equal(
    manifestHeads(world.private, '/v2/shop/node/manifests/1', { from, to: Date.now() }, 200),
    1,
    "12 uses in 4 namespaces, pulled with the nodes' credentials: one manifest request answered",
  )
  const report = JSON.parse(run.stdout)
  t.same(
    report.workloads.filter((w: any) => w.namespace.startsWith('nc-')),
    [],
    'all of them pullable',
  )
})
