// The leak sweep: recognizable secret values in every place a credential can sit (password,
// `auth`, identitytoken, a key with userinfo, a secret that does not parse, the nodes' docker
// config, a CLI docker config, credential provider plugins' answers, garbage and stderr), run through the scenarios the suite covers — allowed, denied, wrong
// password, tag suggestions, token auth, unreachable, warn mode, service accounts, UPDATE, malformed
// reviews — then every log line (debug), every response body, /metrics and every CLI output is
// searched for the values, their base64 and base64url forms, and `user:value` in base64.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli.js'
import { loadFixture, makeDockerConfigSecret, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { closedPort } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'
import { startWebhook } from '../helpers/webhook.js'

const CANARY = {
  basic: 'LeakCanary-Basic-7f3a91',
  token: 'LeakCanary-TokenUser-2b8c44',
  auth: 'LeakCanary-AuthField-5d1e07',
  identity: 'LeakCanary-IdentityToken-9a6b3f',
  wrong: 'LeakCanary-WrongPassword-3c2d18',
  broken: 'LeakCanary-BrokenJson-8e4f62',
  userinfo: 'LeakCanary-UserInfo-1a9d5c',
  opaque: 'LeakCanary-Opaque-6f0b2e',
  node: 'LeakCanary-NodeConfig-4c7e93',
  cli: 'LeakCanary-CliConfig-0d3f81',
  plugin: 'LeakCanary-PluginIssued-5e8a20',
  pluginWrong: 'LeakCanary-PluginRefused-7b1c39',
  pluginGarbage: 'LeakCanary-PluginGarbage-2f6d47',
  pluginStderr: 'LeakCanary-PluginStderr-9c0e15',
}
const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }

const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, puller: CANARY.token },
  grant: (user, _repo, actions) => (user === null ? [] : actions),
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const basic = await startRegistry({
  ca,
  auth: { kind: 'htpasswd', users: { admin: ADMIN.password, leaky: CANARY.basic, cloud: CANARY.plugin } },
})
const tokened = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
for (const r of [open, basic, tokened]) t.teardown(() => r.close())
await seedOciManifest(open, 'library/nginx', '1.25')
await seedOciManifest(basic, 'team/api', '1.0', ADMIN)
await seedOciManifest(basic, 'team/api', '1.1', ADMIN)
await seedOciManifest(basic, 'plug/ok', '1', ADMIN)
await seedOciManifest(tokened, 'team/worker', '2.0', ADMIN)
const dead = `127.0.0.1:${await closedPort()}`

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const NS = 'leaky'
kube.put('namespaces', { ...loadFixture<any>('api/namespace.json'), metadata: { name: NS, labels: {} } })
kube.put('namespaces', {
  ...loadFixture<any>('api/namespace.json'),
  metadata: { name: 'leaky-warn', labels: { 'pullguard.io/mode': 'warn' } },
})
const b64 = (s: string): string => Buffer.from(s).toString('base64')
const secret = (name: string, auths: Record<string, Record<string, string>>, ns = NS): unknown => {
  const s = makeDockerConfigSecret(ns, name, {}) as { data: Record<string, string> }
  s.data['.dockerconfigjson'] = b64(JSON.stringify({ auths }))
  return s
}
for (const ns of [NS, 'leaky-warn']) {
  kube.put('secrets', secret('basic', { [basic.host]: { username: 'leaky', password: CANARY.basic } }, ns))
  kube.put('secrets', secret('token', { [tokened.host]: { username: 'puller', password: CANARY.token } }, ns))
  kube.put('secrets', secret('auth-field', { [basic.host]: { auth: b64(`leaky:${CANARY.auth}`) } }, ns))
  kube.put(
    'secrets',
    secret('identity', { [tokened.host]: { username: 'puller', identitytoken: CANARY.identity } }, ns),
  )
  kube.put('secrets', secret('wrong', { [basic.host]: { username: 'leaky', password: CANARY.wrong } }, ns))
  kube.put(
    'secrets',
    secret(
      'userinfo',
      { [`leaky:${CANARY.userinfo}@${basic.host}`]: { username: 'leaky', password: CANARY.userinfo } },
      ns,
    ),
  )
}
const broken = makeDockerConfigSecret(NS, 'broken', {}) as { data: Record<string, string> }
broken.data['.dockerconfigjson'] = b64(`{"auths":{"${basic.host}":{"password":"${CANARY.broken}"`)
kube.put('secrets', broken)
kube.put('secrets', {
  ...loadFixture<any>('api/secret-opaque.json'),
  metadata: { ...loadFixture<any>('api/secret-opaque.json').metadata, namespace: NS, name: 'opaque' },
  data: { password: b64(CANARY.opaque) },
})
kube.put('serviceaccounts', {
  kind: 'ServiceAccount',
  apiVersion: 'v1',
  metadata: { name: 'builder', namespace: NS },
  imagePullSecrets: [{ name: 'token' }, { name: 'basic' }],
})

const work = mkdtempSync(join(tmpdir(), 'pullguard-leaks-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const nodeConfig = join(work, 'node-config.json')
writeFileSync(nodeConfig, JSON.stringify({ auths: { [dead]: { auth: b64(`node:${CANARY.node}`) } } }))

const hook = await startWebhook({ ca, kube, args: ['--node-docker-config', nodeConfig] })
t.teardown(() => hook.close())
const debug = await startWebhook({
  ca,
  kube,
  args: ['--node-docker-config', nodeConfig, '--log-level', 'trace', '--on-registry-error', 'deny'],
})
t.teardown(() => debug.close())

// Credential provider plugins: one answering with a working password, one with a refused one, one
// printing garbage that holds a password, one failing with a password on stderr.
const pluginBin = join(work, 'plugins')
mkdirSync(pluginBin)
const plugins: Array<[string, Record<string, string>]> = [
  ['ok', { PLUGIN_AUTH: JSON.stringify({ [basic.host]: { username: 'cloud', password: CANARY.plugin } }) }],
  ['wrong', { PLUGIN_AUTH: JSON.stringify({ [basic.host]: { username: 'cloud', password: CANARY.pluginWrong } }) }],
  ['garbage', { PLUGIN_MODE: 'garbage', PLUGIN_AUTH: CANARY.pluginGarbage }],
  ['stderr', { PLUGIN_MODE: 'exit1', PLUGIN_SECRET_ON_STDERR: CANARY.pluginStderr }],
]
for (const [name] of plugins) await writeTestPlugin(pluginBin, `plug-${name}`)
const pluginConfig = join(work, 'providers.json')
writeFileSync(
  pluginConfig,
  JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1',
    kind: 'CredentialProviderConfig',
    providers: plugins.map(([name, env]) => ({
      name: `plug-${name}`,
      matchImages: [`${basic.host}/plug/${name}`],
      defaultCacheDuration: '0s',
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      env: Object.entries({ PLUGIN_KEY_TYPE: 'Image', ...env }).map(([n, value]) => ({ name: n, value })),
    })),
  }),
)
const plugged = await startWebhook({
  ca,
  kube,
  args: [
    '--image-credential-provider-config',
    pluginConfig,
    '--image-credential-provider-bin-dir',
    pluginBin,
    '--log-level',
    'trace',
  ],
  env: { PATH: process.env['PATH'] ?? '' },
})
t.teardown(() => plugged.close())

const outputs: string[] = []

function pod(images: string[], secrets: string[], opts: { namespace?: string; serviceAccount?: string } = {}): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `leak-${Math.random().toString(16).slice(2)}`
  r.request.namespace = opts.namespace ?? NS
  r.request.object.metadata.namespace = r.request.namespace
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }))
  r.request.object.spec.imagePullSecrets = secrets.map((name) => ({ name }))
  if (opts.serviceAccount !== undefined) r.request.object.spec.serviceAccountName = opts.serviceAccount
  return r
}

t.test('scenarios', async (t) => {
  const images = {
    basic: `${basic.host}/team/api:1.0`,
    missingTag: `${basic.host}/team/api:1.2`,
    tokened: `${tokened.host}/team/worker:2.0`,
    open: `${open.host}/library/nginx:1.25`,
    dead: `${dead}/x/y:1`,
  }
  const scenarios: Array<[string, any]> = [
    ['allowed with Basic', pod([images.basic], ['basic'])],
    ['allowed with a token', pod([images.tokened], ['token'])],
    ['auth field', pod([images.basic], ['auth-field'])],
    ['identity token', pod([images.tokened], ['identity'])],
    ['wrong password', pod([images.basic], ['wrong'])],
    ['tag suggestions listed with credentials', pod([images.missingTag], ['basic'])],
    ['a key with userinfo', pod([images.basic], ['userinfo'])],
    ['a secret that does not parse', pod([images.basic], ['broken'])],
    ['a secret of another type', pod([images.basic], ['opaque'])],
    ['a missing secret', pod([images.basic], ['nope'])],
    [
      'every secret at once',
      pod(Object.values(images), ['basic', 'token', 'auth-field', 'identity', 'wrong', 'userinfo', 'broken', 'opaque']),
    ],
    ["the nodes' credentials for an unreachable registry", pod([images.dead], [])],
    ['warn mode', pod([images.missingTag, images.basic], ['wrong'], { namespace: 'leaky-warn' })],
  ]
  for (const server of [hook, debug]) {
    for (const [name, review] of scenarios) {
      const res = await server.post(review)
      t.equal(res.status, 200, name)
      outputs.push(res.text)
    }
    // A template: the service account's secrets.
    const deployment = loadFixture<any>('admission/deployment-create-dryrun.json')
    deployment.request.namespace = NS
    deployment.request.object.spec.template.spec = {
      serviceAccountName: 'builder',
      containers: [
        { name: 'w', image: images.tokened },
        { name: 'a', image: images.missingTag },
      ],
    }
    outputs.push((await server.post(deployment)).text)
    // UPDATE adding an ephemeral container.
    const update = loadFixture<any>('admission/pod-ephemeralcontainers-update.json')
    update.request.namespace = NS
    update.request.object.spec.imagePullSecrets = [{ name: 'wrong' }]
    update.request.object.spec.ephemeralContainers = [{ name: 'debug', image: images.basic }]
    outputs.push((await server.post(update)).text)
    // Malformed reviews echo nothing of the body but the uid.
    outputs.push(
      (
        await server.post(
          `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","password":"${CANARY.basic}"`,
        )
      ).text,
    )
    outputs.push(
      (
        await server.post({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'y', operation: CANARY.basic },
        })
      ).text,
    )
    outputs.push((await server.get('/metrics')).text)
  }
  for (const name of ['ok', 'wrong', 'garbage', 'stderr']) {
    const res = await plugged.post(pod([`${basic.host}/plug/${name}:1`], []))
    t.equal(res.status, 200, `plugin ${name}`)
    outputs.push(res.text)
  }
  outputs.push((await plugged.get('/metrics')).text)
  t.ok(
    outputs.some((o) => /credential provider plugin plug-garbage/.test(o)),
    'the garbage plugin was run and named',
  )
  t.ok(
    outputs.some((o) => /refused the credentials \(tried credential provider plug-wrong/.test(o)),
    'the refused plugin password was tried',
  )
  t.ok(
    outputs.some((o) => /refused the credentials/.test(o)),
    'the wrong password was tried and refused',
  )
  t.ok(
    outputs.some((o) => /1\.1/.test(o)),
    'tags were listed with credentials',
  )
})

t.test('the CLI: check with a docker config full of credentials', async (t) => {
  const home = join(work, 'home')
  const dockerDir = join(work, 'docker')
  mkdirSync(home, { recursive: true })
  mkdirSync(dockerDir, { recursive: true })
  writeFileSync(
    join(dockerDir, 'config.json'),
    JSON.stringify({
      auths: { [basic.host]: { auth: b64(`leaky:${CANARY.cli}`) }, [tokened.host]: { identitytoken: CANARY.cli } },
    }),
  )
  const manifest = join(work, 'pod.yaml')
  writeFileSync(
    manifest,
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ${NS}}\nspec:\n  containers:\n  - {name: a, image: "${basic.host}/team/api:1.2"}\n  - {name: b, image: "${tokened.host}/team/worker:2.0"}\n`,
  )
  const summary = join(work, 'step-summary.md')
  writeFileSync(summary, '')
  for (const format of [
    [],
    ['--output', 'json'],
    ['--output', 'sarif'],
    ['--output', 'junit'],
    ['--output', 'github'],
  ]) {
    const run = await runCli(['check', '--registry-ca', ca.caPath, '--timeout', '3s', ...format, manifest], {
      env: { HOME: home, DOCKER_CONFIG: dockerDir, GITHUB_STEP_SUMMARY: summary },
    })
    // The check ran (a usage error, exit 2, would have printed nothing worth searching).
    t.equal(run.code, 1, `${format.join(' ')}: ${run.stderr}`)
    outputs.push(run.stdout, run.stderr)
  }
  // The job summary that --output github wrote.
  outputs.push(readFileSync(summary, 'utf8'))
  t.match(outputs.at(-1), /^### pullguard: /)
})

t.test('no secret value, in any form, in any output', async (t) => {
  const everything = [...outputs, ...hook.logs, ...debug.logs, ...plugged.logs].join('\n')
  t.ok(debug.logs.length > 15, `${debug.logs.length} trace lines searched`)
  const users: Record<string, string> = {
    basic: 'leaky',
    token: 'puller',
    auth: 'leaky',
    wrong: 'leaky',
    userinfo: 'leaky',
    node: 'node',
    cli: 'leaky',
    identity: 'puller',
    broken: 'leaky',
    opaque: 'leaky',
    plugin: 'cloud',
    pluginWrong: 'cloud',
    pluginGarbage: 'cloud',
    pluginStderr: 'cloud',
  }
  for (const [name, value] of Object.entries(CANARY)) {
    const forms = [
      value,
      b64(value),
      Buffer.from(value).toString('base64url'),
      b64(`${users[name]}:${value}`),
      encodeURIComponent(value),
    ]
    for (const form of forms) t.notOk(everything.includes(form), `${name}: no ${form}`)
  }
  t.notMatch(everything, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no bearer token')
  t.notMatch(everything, /Basic [A-Za-z0-9+/=]{8,}/, 'no Authorization header value')
})
