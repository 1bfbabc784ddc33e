// `pullguard check` end to end: the real CLI as a child process, against the real registries (open,
// htpasswd/Basic, token), the test CA and the API stand-in. HOME and DOCKER_CONFIG point at temp
// dirs, so the developer's own ~/.docker is never read.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli, type CliRun } from '../helpers/cli.js'
import { startFakeKubeApi, makeDockerConfigSecret } from '../helpers/fake-kube-api.js'
import { closedPort } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { pushSchema1 } from '../helpers/schema1.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const CI_PASSWORD = 'Ci-Pull-Password'

const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, ci: CI_PASSWORD },
  grant: (user, _repo, actions) =>
    user === 'admin' ? actions : user === 'ci' ? actions.filter((a) => a === 'pull') : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const basic = await startRegistry({ ca, auth: { kind: 'htpasswd', users: { admin: ADMIN.password, ci: CI_PASSWORD } } })
const token = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
t.teardown(() => open.close())
t.teardown(() => basic.close())
t.teardown(() => token.close())
for (const tag of ['1.25.0', '1.25.2', 'latest']) await seedOciManifest(open, 'library/nginx', tag)
await seedOciManifest(basic, 'team/api', '1.0', ADMIN)
await seedOciManifest(token, 'team/worker', '2.0', ADMIN)
const dead = `127.0.0.1:${await closedPort()}`

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.secrets.set(
  'team-b/ci-pull',
  makeDockerConfigSecret('team-b', 'ci-pull', { [basic.host]: { username: 'ci', password: CI_PASSWORD } }),
)

const work = mkdtempSync(join(tmpdir(), 'pullguard-check-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const home = join(work, 'home')
const dockerDir = join(work, 'docker')
mkdirSync(home)
mkdirSync(dockerDir)

/** Runs `pullguard check ARGS` with the test CA; `env` adds to a minimal environment. */
function check(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return runCli(['check', '--registry-ca', ca.caPath, '--timeout', '3s', ...args], {
    env: { HOME: home, DOCKER_CONFIG: dockerDir, ...options.env },
    cwd: work,
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  })
}

function file(name: string, text: string): string {
  const path = join(work, name)
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
  return path
}

function pod(name: string, images: Record<string, string>, extra = ''): string {
  const containers = Object.entries(images)
    .map(([c, image]) => `  - name: ${c}\n    image: ${JSON.stringify(image)}`)
    .join('\n')
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n${extra}  containers:\n${containers}\n`
}

function dockerConfig(dir: string, config: object): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
}
const basicAuth = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64')

t.test('exit 0 when every image is pullable', async (t) => {
  const r = await check(['-f', file('ok.yaml', pod('web', { web: `${open.host}/library/nginx:1.25.2` }))])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^OBJECT\s+CONTAINER\s+IMAGE\s+VERDICT\s+REASON$/m)
  t.match(r.stdout, new RegExp(`pod default/web\\s+web\\s+${open.host}/library/nginx:1.25.2\\s+pullable\\s+Exists`))
  t.equal(r.stderr, '', 'no progress line when stderr is not a terminal')
})

t.test('exit 1 when an image is definitely not pullable, with the fix line under the table', async (t) => {
  const r = await check([
    '-f',
    file(
      'missing-tag.yaml',
      pod('web', { ok: `${open.host}/library/nginx:1.25.2`, web: `${open.host}/library/nginx:1.25.3` }),
    ),
  ])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, /web\s+\S+nginx:1\.25\.3\s+not-pullable\s+TagNotFound/)
  t.match(
    r.stdout,
    `- pod default/web (${join(work, 'missing-tag.yaml')}): container "web" (spec.containers[1]) image "${open.host}/library/nginx:1.25.3": tag "1.25.3" does not exist in ${open.host}/library/nginx. Fix: existing tags nearest to "1.25.3": 1.25.2`,
  )
})

t.test('exit 3 when only undetermined images remain and --on-registry-error deny; 0 with allow', async (t) => {
  const path = file('dead.yaml', pod('web', { ok: `${open.host}/library/nginx:latest`, web: `${dead}/team/app:1` }))
  const deny = await check(['-f', path, '--on-registry-error', 'deny'])
  t.equal(deny.code, 3, deny.stderr)
  t.match(deny.stdout, /unknown\s+RegistryUnreachable/)
  t.match(deny.stdout, `could not be verified: ${dead} is unreachable`)
  const allow = await check(['-f', path])
  t.equal(allow.code, 0, 'the default --on-registry-error allow')
  const both = await check([
    '-f',
    path,
    '-f',
    file('missing-tag.yaml', pod('web', { web: `${open.host}/library/nginx:9` })),
    '--on-registry-error',
    'deny',
  ])
  t.equal(both.code, 1, 'a definite failure outranks an undetermined one')
})

t.test('exit 2 for usage errors and bad YAML, naming the file and line', async (t) => {
  const none = await check([])
  t.equal(none.code, 2)
  t.match(none.stderr, 'pullguard: -f/--filename: at least one file')
  const flag = await check(['-f', 'x.yaml', '--output', 'xml'])
  t.equal(flag.code, 2)
  t.match(flag.stderr, '--output: "xml" is not one of table, json, sarif, junit, github')
  const absent = await check(['-f', join(work, 'nope.yaml')])
  t.equal(absent.code, 2)
  t.match(absent.stderr, `${join(work, 'nope.yaml')}: cannot read (ENOENT)`)
  const bad = file(
    'bad.yaml',
    `${pod('ok', { web: `${open.host}/library/nginx:latest` })}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n   labels: {}\n`,
  )
  const r = await check(['-f', bad])
  t.equal(r.code, 2)
  // The line where the broken mapping starts (`name: broken`), as the parser reports it.
  t.match(r.stderr, new RegExp(`^pullguard: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:13: invalid YAML: `))
  t.equal(r.stdout, '', 'nothing is checked when the input is broken')
  const stdinBad = await check(['-f', '-'], { stdin: 'a: [\n' })
  t.equal(stdinBad.code, 2)
  t.match(stdinBad.stderr, 'pullguard: (stdin):2: invalid YAML')
  const dockerConfigBroken = join(work, 'broken-docker.json')
  writeFileSync(dockerConfigBroken, '{"auths": []}')
  const dc = await check(['-f', bad, '--docker-config', dockerConfigBroken])
  t.equal(dc.code, 2)
  t.match(dc.stderr, `pullguard: --docker-config: ${dockerConfigBroken}: "auths" is`)
})

t.test('multi-document YAML and List objects: every workload kind, other objects skipped', async (t) => {
  const deployment = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: team-a}\nspec:\n  template:\n    spec:\n      containers: [{name: api, image: "${open.host}/library/nginx:1.25.0"}]\n`
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 0 * * *',
          jobTemplate: {
            spec: { template: { spec: { containers: [{ name: 'job', image: `${open.host}/library/nginx:nope` }] } } },
          },
        },
      },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: {} },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSetList',
        items: [
          {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            metadata: { name: 'db' },
            spec: {
              template: {
                spec: {
                  initContainers: [{ name: 'init', image: `${open.host}/library/nginx:latest` }],
                  containers: [{ name: 'db', image: `${open.host}/library/nginx:1.25.2` }],
                },
              },
            },
          },
        ],
      },
    ],
  }
  const text = `${deployment}---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\n---\n${JSON.stringify(list)}\n`
  const r = await check(['-f', file('multi.yaml', text), '--namespace', 'ci', '-o', 'json'])
  t.equal(r.code, 1, r.stderr)
  const report = JSON.parse(r.stdout)
  t.same(
    report.objects.map((o: any) => [o.kind, o.namespace, o.name, o.images.map((i: any) => `${i.field}=${i.verdict}`)]),
    [
      ['Deployment', 'team-a', 'api', ['spec.template.spec.containers[0]=pullable']],
      ['CronJob', 'ci', 'nightly', ['spec.jobTemplate.spec.template.spec.containers[0]=not-pullable']],
      [
        'StatefulSet',
        'ci',
        'db',
        ['spec.template.spec.initContainers[0]=pullable', 'spec.template.spec.containers[0]=pullable'],
      ],
    ],
  )
  t.match(report.summary, {
    objects: 3,
    images: 4,
    pullable: 3,
    notPullable: 1,
    unknown: 0,
    skippedObjects: 2,
    exitCode: 1,
  })
})

t.test('a directory is walked for *.yaml, *.yml and *.json, in name order', async (t) => {
  const dir = join(work, 'tree')
  file('tree/b.yml', pod('b', { c: `${open.host}/library/nginx:latest` }))
  file(
    'tree/a/deep.json',
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'a' },
      spec: { containers: [{ name: 'c', image: `${open.host}/library/nginx:1.25.0` }] },
    }),
  )
  file('tree/c.yaml', pod('c', { c: `${open.host}/library/nginx:1.25.2` }))
  file('tree/README.md', pod('ignored', { c: `${open.host}/library/nginx:gone` }))
  file('tree/values.yaml', 'replicas: 3\n')
  const r = await check(['-f', dir, '-o', 'json'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout)
  t.same(
    report.objects.map((o: any) => [o.name, o.source]),
    [
      ['a', join(dir, 'a/deep.json')],
      ['b', join(dir, 'b.yml')],
      ['c', join(dir, 'c.yaml')],
    ],
  )
  t.equal(report.summary.skippedObjects, 1, 'a YAML file that is no Kubernetes object is skipped')
})

t.test('reads manifests from stdin with -f -', async (t) => {
  const r = await check(['-f', '-'], { stdin: pod('piped', { c: `${open.host}/library/nginx:1.25.9` }) })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, 'pod default/piped (stdin): container "c"')
})

t.test('--output json has stable field names and the webhook reason codes', async (t) => {
  const r = await check([
    '-f',
    file('json.yaml', pod('web', { ok: `${open.host}/library/nginx:latest`, web: `${open.host}/library/nginx:0.1` })),
    '-o',
    'json',
  ])
  t.equal(r.code, 1)
  const report = JSON.parse(r.stdout)
  t.same(Object.keys(report), ['objects', 'notes', 'summary'])
  t.same(report.objects, [
    {
      kind: 'Pod',
      namespace: 'default',
      name: 'web',
      source: join(work, 'json.yaml'),
      file: 'json.yaml',
      images: [
        {
          container: 'ok',
          field: 'spec.containers[0]',
          image: `${open.host}/library/nginx:latest`,
          verdict: 'pullable',
          reason: 'Exists',
          message: report.objects[0].images[0].message,
          problem: report.objects[0].images[0].problem,
          fix: [],
          fixSteps: [],
          severity: 'none',
          line: 8,
          column: 5,
        },
        {
          container: 'web',
          field: 'spec.containers[1]',
          image: `${open.host}/library/nginx:0.1`,
          verdict: 'not-pullable',
          reason: 'TagNotFound',
          message: report.objects[0].images[1].message,
          problem: report.objects[0].images[1].problem,
          fix: report.objects[0].images[1].fix,
          fixSteps: report.objects[0].images[1].fixSteps,
          severity: 'error',
          line: 10,
          column: 5,
        },
      ],
      warnings: [],
      fixes: [report.objects[0].images[1].message],
    },
  ])
  t.match(
    report.objects[0].images[1].fix,
    [/^(existing tags nearest to "0\.1"|no existing tag of .* is near "0\.1")/],
    'the fix, one step per line',
  )
  const bad = report.objects[0].images[1]
  t.ok(bad.message.startsWith(bad.problem.slice(0, -1)), 'the problem is the message without its fix')
  t.notMatch(bad.problem, /Fix:/)
  t.same(
    bad.fixSteps.map((s: { text: string; command?: string }) =>
      s.command === undefined ? s.text : `${s.text}: ${s.command}`,
    ),
    bad.fix,
    'the fix steps are the fix lines with their commands apart',
  )
  t.match(report.objects[0].images[0].message, /pullable \(sha256:[0-9a-f]{64}\)/)
  t.match(report.objects[0].images[1].message, 'tag "0.1" does not exist')
  t.same(report.summary, {
    objects: 1,
    images: 2,
    pullable: 1,
    notPullable: 1,
    unknown: 0,
    skippedObjects: 0,
    exitCode: 1,
  })
  t.match(report.notes, [/no docker config found/])
})

t.test('docker config credentials reach the Basic (htpasswd) registry', async (t) => {
  const path = file('basic.yaml', pod('api', { api: `${basic.host}/team/api:1.0` }))
  const anonymous = await check(['-f', path])
  t.equal(anonymous.code, 1, 'no credentials: the registry refuses')
  t.match(anonymous.stdout, /not-pullable\s+AccessDenied/)
  t.match(anonymous.stdout, 'requires credentials and no pull secret matches this registry')
  const own = join(work, 'docker-basic')
  dockerConfig(own, { auths: { [basic.host]: { auth: basicAuth('ci', CI_PASSWORD) } } })
  const r = await check(['-f', path], { env: { DOCKER_CONFIG: own } })
  t.equal(r.code, 0, r.stdout)
  t.match(r.stdout, /pullable\s+Exists/)
  t.notMatch(r.stdout, CI_PASSWORD)
  const wrong = join(work, 'docker-basic-wrong', 'config.json')
  dockerConfig(join(wrong, '..'), { auths: { [basic.host]: { username: 'ci', password: 'wrong' } } })
  const refused = await check(['-f', path, '--docker-config', wrong])
  t.equal(refused.code, 1)
  t.match(refused.stdout, `refused the credentials (tried docker config (key "${basic.host}"))`)
})

t.test('docker config credentials reach the token registry, from ~/.docker/config.json', async (t) => {
  const path = file('token.yaml', pod('worker', { worker: `${token.host}/team/worker:2.0` }))
  const otherHome = join(work, 'home-token')
  dockerConfig(join(otherHome, '.docker'), {
    auths: { [`https://${token.host}`]: { username: 'ci', password: CI_PASSWORD } },
  })
  const r = await check(['-f', path], { env: { HOME: otherHome, DOCKER_CONFIG: '' } })
  t.equal(r.code, 0, r.stdout)
  t.match(r.stdout, /pullable\s+Exists/)
  t.notMatch(r.stdout, 'no docker config found')
})

t.test('credsStore and credHelpers are reported as not supported', async (t) => {
  const own = join(work, 'docker-helpers')
  dockerConfig(own, { auths: {}, credsStore: 'desktop', credHelpers: { [basic.host]: 'ecr-login' } })
  const r = await check(['-f', file('helpers.yaml', pod('api', { api: `${basic.host}/team/api:1.0` }))], {
    env: { DOCKER_CONFIG: own },
  })
  t.equal(r.code, 1)
  t.match(
    r.stdout,
    `note: ${join(own, 'config.json')}: credential helpers are not supported, so their credentials were not used: credsStore (every registry without an "auths" entry), credHelpers "${basic.host}"`,
  )
})

t.test('without --from-cluster, listed pull secrets are said to be unread and refusals are unknown', async (t) => {
  const path = file(
    'secret-pod.yaml',
    pod('api', { api: `${basic.host}/team/api:1.0` }, '  imagePullSecrets:\n  - name: ci-pull\n').replace(
      'name: api\n',
      'name: api\n  namespace: team-b\n',
    ),
  )
  const offline = await check(['-f', path, '--on-registry-error', 'deny'])
  t.equal(offline.code, 3, offline.stdout)
  t.match(offline.stdout, /unknown\s+AccessDenied/)
  t.match(
    offline.stdout,
    'note: pull secrets are not read without --from-cluster: 1 object(s) listing imagePullSecrets were checked with the docker config only',
  )
  t.notMatch(offline.stdout, 'warning:', 'said once, not per object')
  const online = await check(['-f', path, '--from-cluster'], { env: { KUBECONFIG: kube.kubeconfigPath } })
  t.equal(online.code, 0, online.stdout + online.stderr)
  t.match(online.stdout, /pod team-b\/api\s+api\s+\S+\s+pullable\s+Exists/)
  kube.secrets.delete('team-b/ci-pull')
  const gone = await check(['-f', path, '--from-cluster'], { env: { KUBECONFIG: kube.kubeconfigPath } })
  t.equal(gone.code, 1)
  t.match(gone.stdout, 'warning: pod team-b/api: pull secrets skipped: "ci-pull" (not found)')
})

t.test('an image on a metadata address is not pullable, and nothing is sent there', async (t) => {
  const r = await check(['-f', file('metadata.yaml', pod('meta', { app: '169.254.169.254/latest/meta-data:v1' }))])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, /pod default\/meta\s+app\s+169\.254\.169\.254\/latest\/meta-data:v1\s+not-pullable\s+MetadataHost/)
  t.match(r.stdout, /link-local address/)
})

t.test('--node-pools: each pool a manifest’s pods can land on, with its runtime; the JSON names them', async (t) => {
  const legacy = await startRegistry({ ca, auth: { kind: 'none' }, schema1: true })
  t.teardown(() => legacy.close())
  await pushSchema1(legacy, 'legacy/old', '2015')
  const image = `${legacy.host}/legacy/old:2015`
  const pools = file(
    'pools/pools.yaml',
    'pools:\n- {name: old, nodeLabels: {pool: old}, runtime: containerd://1.7.27}\n- {name: new, nodeLabels: {pool: new}, runtime: containerd://2.1.4}\n',
  )
  const anywhere = file('pools-anywhere.yaml', pod('legacy', { app: image }))
  const r = await check(['-f', anywhere, '--node-pools', pools])
  t.equal(r.code, 0, `it may land on the 1.7 pool: ${r.stdout}`)
  t.match(
    r.stdout,
    /warning: pod default\/legacy: container "app".*: Docker schema 1 manifest, which containerd 2\.1\.4 refuses on node pool new; it pulls on node pool old/,
  )
  const pinned = file('pools-new.yaml', pod('legacy-new', { app: image }, '  nodeSelector: {pool: new}\n'))
  const denied = await check(['-f', pinned, '--node-pools', pools, '-o', 'json'])
  t.equal(denied.code, 1)
  const report = JSON.parse(denied.stdout)
  t.match(report.objects[0].images, [{ verdict: 'not-pullable', reason: 'Schema1Unsupported' }])
  t.notOk('pools' in report.objects[0], 'one pool: nothing to tell apart')
  const json = JSON.parse((await check(['-f', anywhere, '--node-pools', pools, '-o', 'json'])).stdout)
  t.same(json.objects[0].pools, [
    { pool: 'old', runtimes: ['containerd 1.7.27'], starts: 'pulls', reasons: ['Exists'] },
    { pool: 'new', runtimes: ['containerd 2.1.4'], starts: 'fails', reasons: ['Schema1Unsupported'] },
  ])
})
