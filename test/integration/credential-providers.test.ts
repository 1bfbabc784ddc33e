// Credential provider plugins through `pullguard serve`, against the real registries (distribution
// with htpasswd Basic auth, and with token auth): the suite's test plugin is configured by a
// kubelet CredentialProviderConfig, as on a node.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, request as httpsRequest } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadFixture, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { runCli } from '../helpers/cli.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'
import { startTokenServer } from '../helpers/token-server.js'
import { startWebhook } from '../helpers/webhook.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const PLUGIN_PASSWORD = 'Plugin-Issued-Pa55word'
const ca = await createTestCA()
t.teardown(() => ca.close())
const basic = await startRegistry({
  ca,
  auth: { kind: 'htpasswd', users: { admin: ADMIN.password, cloud: PLUGIN_PASSWORD } },
})
t.teardown(() => basic.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, cloud: PLUGIN_PASSWORD },
  grant: (user, _repo, actions) => (user === 'admin' ? actions : actions.filter((a) => a === 'pull')),
})
t.teardown(() => tokenServer.close())
const token = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
t.teardown(() => token.close())
await seedOciManifest(basic, 'cloud/api', '1.0', ADMIN)
await seedOciManifest(token, 'cloud/worker', '2.0', ADMIN)
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.put('namespaces', { ...loadFixture<any>('api/namespace.json'), metadata: { name: 'team-a', labels: {} } })

const dir = await mkdtemp(join(tmpdir(), 'pullguard-providers-it-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const bin = join(dir, 'bin')
await mkdir(bin)
await writeTestPlugin(bin, 'cloud-credential-provider')

const AUTH = (password: string): string =>
  JSON.stringify({ [basic.host]: { username: 'cloud', password }, [token.host]: { username: 'cloud', password } })
let configs = 0
async function providerConfig(env: Record<string, string>, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, `config-${++configs}.yaml`)
  const provider = {
    name: 'cloud-credential-provider',
    matchImages: [basic.host, token.host],
    defaultCacheDuration: '5m',
    apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
    env: Object.entries(env).map(([name, value]) => ({ name, value })),
    ...extra,
  }
  await writeFile(
    path,
    JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'CredentialProviderConfig', providers: [provider] }),
  )
  return path
}
function pod(images: string[], uid = `uid-${Math.random().toString(16).slice(2)}`): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = uid
  r.request.namespace = 'team-a'
  r.request.object.metadata.namespace = 'team-a'
  r.request.object.spec.initContainers = []
  r.request.object.spec.imagePullSecrets = []
  r.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }))
  return r
}
async function webhook(t: Test, config: string, args: string[] = []): ReturnType<typeof startWebhook> {
  const w = await startWebhook({
    ca,
    kube,
    args: ['--image-credential-provider-config', config, '--image-credential-provider-bin-dir', bin, ...args],
    env: { PATH: process.env['PATH'] ?? '' },
  })
  t.teardown(() => w.close())
  return w
}
const api = `${basic.host}/cloud/api:1.0`
const worker = `${token.host}/cloud/worker:2.0`

t.test('a private image only the plugin can pull is allowed (Basic and token registries)', async (t) => {
  const w = await webhook(t, await providerConfig({ PLUGIN_AUTH: AUTH(PLUGIN_PASSWORD), PLUGIN_KEY_TYPE: 'Registry' }))
  const r = await w.post(pod([api, worker]))
  t.match(r.body.response, { allowed: true })
  t.equal(r.body.response.warnings, undefined, 'no warning: verified')
  const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision')
  t.match(line.images, [
    { reason: 'Exists', decidedBy: /credential provider cloud-credential-provider/ },
    { reason: 'Exists', decidedBy: /credential provider cloud-credential-provider/ },
  ])
})

t.test("the plugin's answer refused by the registry: denied, as the kubelet's pull would fail", async (t) => {
  const w = await webhook(t, await providerConfig({ PLUGIN_AUTH: AUTH('expired-token'), PLUGIN_KEY_TYPE: 'Registry' }))
  const r = await w.post(pod([api]))
  t.match(r.body.response, { allowed: false, status: { code: 403 } })
  t.match(
    r.body.response.status.message,
    `${basic.host} refused the credentials (tried credential provider cloud-credential-provider (key "${basic.host}"))`,
  )
  t.notMatch(r.text, 'expired-token')
})

t.test('without the plugin config the same image is refused (it is private)', async (t) => {
  const w = await startWebhook({ ca, kube })
  t.teardown(() => w.close())
  const r = await w.post(pod([api]))
  t.match(r.body.response, { allowed: false })
})

t.test('a failing plugin is never a denial: unverified, the plugin named, --on-registry-error decides', async (t) => {
  for (const mode of ['exit1', 'garbage', 'wrongkind', 'huge']) {
    const config = await providerConfig({ PLUGIN_MODE: mode, PLUGIN_AUTH: AUTH(PLUGIN_PASSWORD) })
    const w = await webhook(t, config)
    const r = await w.post(pod([api]))
    t.match(
      r.body.response,
      { allowed: true, warnings: [/not verified, credential provider plugin cloud-credential-provider/] },
      `${mode}: allowed with a warning`,
    )
    t.notMatch(r.text, PLUGIN_PASSWORD, `${mode}: no credential in the answer`)
    const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision')
    t.match(
      line.images[0].providerFailures,
      [{ provider: 'cloud-credential-provider' }],
      `${mode}: the decision line names the plugin`,
    )
    const denying = await webhook(t, config, ['--on-registry-error', 'deny'])
    const d = await denying.post(pod([api]))
    t.match(
      d.body.response,
      {
        allowed: false,
        status: { message: /could not be verified: .*credential provider plugin cloud-credential-provider/ },
      },
      `${mode}: --on-registry-error deny`,
    )
  }
})

t.test('a hanging plugin: the review is answered within --timeout', async (t) => {
  const w = await webhook(t, await providerConfig({ PLUGIN_MODE: 'hang' }), ['--timeout', '1s'])
  const started = Date.now()
  const r = await w.post(pod([api]))
  const took = Date.now() - started
  t.ok(took < 1_700, `answered in ${took} ms`)
  t.match(r.body.response, {
    allowed: true,
    warnings: [/not verified, credential provider plugin cloud-credential-provider did not answer within 450 ms/],
  })
})

t.test('reviews share execs: concurrent reviews one exec, later ones the cached answer', async (t) => {
  const log = join(dir, 'execs.log')
  const w = await webhook(
    t,
    await providerConfig({
      PLUGIN_AUTH: AUTH(PLUGIN_PASSWORD),
      PLUGIN_KEY_TYPE: 'Registry',
      PLUGIN_LOG: log,
      PLUGIN_DELAY_MS: '200',
    }),
  )
  const all = await Promise.all(Array.from({ length: 10 }, () => w.post(pod([api]))))
  t.ok(all.every((r) => r.body.response.allowed === true))
  await w.post(pod([`${basic.host}/cloud/api:1.0`, api]))
  const { readFileSync } = await import('node:fs')
  t.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'one exec for 11 reviews')
  const metrics = await w.get('/metrics')
  t.match(
    metrics.text,
    /pullguard_credential_provider_exec_duration_seconds_count\{provider="cloud-credential-provider",outcome="ok"\} 1/,
  )
  t.notMatch(metrics.text, PLUGIN_PASSWORD)
  t.notMatch(w.logs.join('\n'), PLUGIN_PASSWORD, 'no plugin credential in any log line')
})

t.test('an invalid provider config is a start-up error naming the flag', async (t) => {
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, 'apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n')
  await t.rejects(
    startWebhook({
      ca,
      kube,
      args: ['--image-credential-provider-config', bad, '--image-credential-provider-bin-dir', bin],
    }),
    {
      name: 'ConfigError',
      message:
        '--image-credential-provider-config: failed to validate credential provider config: providers: Required value: at least 1 item in plugins is required',
    },
  )
  await t.rejects(startWebhook({ ca, kube, args: ['--image-credential-provider-config', bad] }), {
    name: 'ConfigError',
    message: '--image-credential-provider-bin-dir: is required when --image-credential-provider-config is set',
  })
})

t.test('pullguard check runs the same plugins, flags or variables', async (t) => {
  const config = await providerConfig({ PLUGIN_AUTH: AUTH(PLUGIN_PASSWORD), PLUGIN_KEY_TYPE: 'Registry' })
  const file = join(dir, 'pod.json')
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'api', namespace: 'team-a' },
      spec: { containers: [{ name: 'api', image: api }] },
    }),
  )
  const env = { PULLGUARD_REGISTRY_CA: ca.caPath, HOME: dir }
  const withFlags = await runCli(
    ['check', '-f', file, '--image-credential-provider-config', config, '--image-credential-provider-bin-dir', bin],
    { env },
  )
  t.equal(withFlags.code, 0, withFlags.stdout + withFlags.stderr)
  t.match(withFlags.stdout, /pod team-a\/api +api +\S+ +pullable +Exists/)
  const withEnv = await runCli(['check', '-f', file, '-o', 'json'], {
    env: {
      ...env,
      PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_CONFIG: config,
      PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR: bin,
    },
  })
  t.equal(withEnv.code, 0, withEnv.stdout + withEnv.stderr)
  const without = await runCli(['check', '-f', file], { env })
  t.equal(without.code, 1, 'without the plugins the private image is not pullable')
  t.notMatch(
    withFlags.stdout + withFlags.stderr + withEnv.stdout + withEnv.stderr,
    PLUGIN_PASSWORD,
    'no plugin credential in CLI output',
  )
  const bad = await runCli(
    [
      'check',
      '-f',
      file,
      '--image-credential-provider-config',
      join(dir, 'absent.yaml'),
      '--image-credential-provider-bin-dir',
      bin,
    ],
    { env },
  )
  t.equal(bad.code, 2)
  t.match(
    bad.stderr,
    /^pullguard: --image-credential-provider-config: unable to access path ".*absent.yaml": ENOENT\n$/,
  )
})

/**
 * The API stand-in answers GETs only: in front of it, a real HTTPS server that makes TokenRequests
 * (`create` on serviceaccounts/token, a JWT-shaped token for the audience and account asked) and
 * passes every other request, watches included, through to it. Returns a kubeconfig for it.
 */
async function startTokenFront(t: Test): Promise<string> {
  const cert = await ca.issue('token front', { dns: ['localhost'], ips: ['127.0.0.1'] })
  const upstream = new URL(kube.origin)
  const sockets = new Set<Socket>()
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const tokenRequest = /^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)\/token(\?|$)/
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req: IncomingMessage, res: ServerResponse) => {
    const asked = tokenRequest.exec(req.url ?? '')
    if (req.method === 'POST' && asked !== null) {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString('utf8')))
      req.on('end', () => {
        if (req.headers.authorization !== `Bearer ${kube.token}`) return res.writeHead(401).end()
        const [, namespace, name] = asked
        const audiences = (JSON.parse(body) as { spec: { audiences: string[] } }).spec.audiences
        const token = `${part({ alg: 'none' })}.${part({ aud: audiences, sub: `system:serviceaccount:${namespace}:${name}` })}.sig`
        res.writeHead(201, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            metadata: { name, namespace },
            spec: { audiences },
            status: { token, expirationTimestamp: new Date(Date.now() + 3_600_000).toISOString() },
          }),
        )
      })
      return
    }
    const forward = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        ca: ca.caPem,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    forward.on('error', () => res.destroy())
    res.on('close', () => forward.destroy())
    req.pipe(forward)
  })
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const path = join(dir, `front-${++configs}.kubeconfig`)
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  await writeFile(path, (await readFile(kube.kubeconfigPath, 'utf8')).replace(kube.origin, origin), { mode: 0o600 })
  return path
}

t.test(
  'a service account without the annotation a provider requires: denied naming both and the kubectl annotate fix; annotated, allowed',
  async (t) => {
    const ROLE = 'cloud.example.com/role'
    const AUDIENCE = 'registry.cloud.example'
    const account = (annotations: Record<string, string>): unknown => ({
      ...loadFixture<any>('api/serviceaccount.json'),
      metadata: { name: 'builder', namespace: 'team-a', uid: 'uid-builder', annotations },
      imagePullSecrets: [],
    })
    kube.put('serviceaccounts', account({}))
    t.teardown(() => kube.remove('serviceaccounts', 'team-a/builder'))
    const log = join(dir, 'annotated.log')
    const config = await providerConfig(
      {
        PLUGIN_AUTH: AUTH(PLUGIN_PASSWORD),
        PLUGIN_KEY_TYPE: 'Registry',
        PLUGIN_LOG: log,
        PLUGIN_EXPECT_AUDIENCE: AUDIENCE,
        PLUGIN_EXPECT_SUBJECT: 'system:serviceaccount:team-a:builder',
        PLUGIN_EXPECT_ANNOTATIONS: JSON.stringify({ [ROLE]: 'puller' }),
      },
      {
        tokenAttributes: {
          serviceAccountTokenAudience: AUDIENCE,
          cacheType: 'ServiceAccount',
          requireServiceAccount: true,
          requiredServiceAccountAnnotationKeys: [ROLE],
        },
      },
    )
    const w = await startWebhook({
      ca,
      kube: { ...kube, kubeconfigPath: await startTokenFront(t) },
      args: ['--image-credential-provider-config', config, '--image-credential-provider-bin-dir', bin],
      env: { PATH: process.env['PATH'] ?? '' },
    })
    t.teardown(() => w.close())
    const review = (): any => {
      const r = pod([api])
      r.request.object.spec.serviceAccountName = 'builder'
      return r
    }

    const denied = await w.post(review())
    t.match(denied.body.response, { allowed: false, status: { code: 403 } })
    const message: string = denied.body.response.status.message
    t.match(
      message,
      `${basic.host} requires credentials and no pull secret matches this registry, so the pull is anonymous; credential provider cloud-credential-provider was not run: service account team-a/builder lacks annotation "${ROLE}", which the provider requires (requiredServiceAccountAnnotationKeys); the kubelet skips it too, logging why only at verbosity 5. Fix:\n` +
        `    add annotation "${ROLE}" to service account "builder", without which the kubelet does not run credential provider cloud-credential-provider (VALUE: what the provider's documentation says it holds, such as the cloud identity to pull as), then apply again: kubectl annotate serviceaccount builder -n team-a ${ROLE}=VALUE\n`,
    )
    const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision')
    t.same(line.images[0].providerSkips, [
      {
        provider: 'cloud-credential-provider',
        reason: 'RequiredAnnotationMissing',
        serviceAccount: 'team-a/builder',
        missing: [ROLE],
      },
    ])
    const { existsSync } = await import('node:fs')
    t.notOk(existsSync(log), 'the plugin was not run, as on the node')

    // What the fix says to run; the webhook sees the account change through its watch.
    kube.put('serviceaccounts', account({ [ROLE]: 'puller' }))
    let allowed = await w.post(review())
    for (let i = 0; i < 50 && allowed.body.response.allowed !== true; i++) {
      await new Promise((r) => setTimeout(r, 100))
      allowed = await w.post(review())
    }
    t.match(allowed.body.response, { allowed: true })
    t.equal(allowed.body.response.warnings, undefined, 'verified with the credentials the plugin gave')
    t.ok(existsSync(log), 'the plugin ran with a token for its audience and the annotation')
    t.notMatch(allowed.text + w.logs.join('\n'), PLUGIN_PASSWORD)
  },
)
