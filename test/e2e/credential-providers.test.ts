// Credential provider plugins with service-account tokens (tokenAttributes), against the real
// kube-apiserver: pullguard reads the pod's service account, requests a token for the provider's
// audience with TokenRequest (allowed only by the credential-provider-tokens overlay), and the test
// plugin checks the token it receives; the test then has the API server review that token.
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { deploymentManifest, PULLER, startWorld, WEBHOOK_NAME } from '../cluster/e2e.js'
import { renderBase } from '../cluster/pullguard.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'

const world = await startWorld(t, { images: ['private:cloud/api:1.0'] })
const { cp } = world
await world.namespace('shop')
const image = `${world.private.host}/cloud/api:1.0`
const AUDIENCE = 'registry.cloud.example'
const ROLE = 'cloud.example.com/role'

const dir = await mkdtemp(join(tmpdir(), 'pullguard-e2e-providers-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const bin = join(dir, 'bin')
await mkdir(bin)
await writeTestPlugin(bin, 'cloud-credential-provider')
const log = join(dir, 'requests.log')
const config = join(dir, 'providers.yaml')
await writeFile(
  config,
  JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1',
    kind: 'CredentialProviderConfig',
    providers: [
      {
        name: 'cloud-credential-provider',
        matchImages: [world.private.host],
        defaultCacheDuration: '10m',
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
        tokenAttributes: {
          serviceAccountTokenAudience: AUDIENCE,
          cacheType: 'ServiceAccount',
          requireServiceAccount: true,
          requiredServiceAccountAnnotationKeys: [ROLE],
        },
        env: Object.entries({
          PLUGIN_LOG: log,
          PLUGIN_KEY_TYPE: 'Registry',
          PLUGIN_AUTH: JSON.stringify({
            [world.private.host]: { username: PULLER.username, password: PULLER.password },
          }),
          PLUGIN_EXPECT_AUDIENCE: AUDIENCE,
          PLUGIN_EXPECT_SUBJECT: 'system:serviceaccount:shop:builder',
          PLUGIN_EXPECT_ANNOTATIONS: JSON.stringify({ [ROLE]: 'puller' }),
        }).map(([name, value]) => ({ name, value })),
      },
    ],
  }),
)
await world.restartPullguard(['--image-credential-provider-config', config, '--image-credential-provider-bin-dir', bin])
await cp.kubectlOk(['create', 'serviceaccount', 'builder', '-n', 'shop'])
await cp.kubectlOk(['annotate', 'serviceaccount', 'builder', '-n', 'shop', `${ROLE}=puller`])
await cp.kubectlOk(['create', 'serviceaccount', 'plain', '-n', 'shop'])
const deploy = (name: string, sa: string): unknown =>
  deploymentManifest('shop', name, [image], { serviceAccountName: sa })

t.test(
  'without create on serviceaccounts/token (the base RBAC): allowed unverified, the permission named',
  async (t) => {
    const run = await world.apply(deploy('before', 'builder'))
    t.equal(run.code, 0, run.stderr)
    t.match(run.stderr, 'Warning:')
    t.match(
      run.stderr,
      'not verified, credential provider plugin cloud-credential-provider: pullguard may not create serviceaccounts/token for shop/builder (403)',
    )
    const line = (await world.pullguard.settledLogs()).find((l) => l['msg'] === 'decision' && l['name'] === 'before') as
      | { images: Array<{ providerFailures: unknown }> }
      | undefined
    t.match(
      line?.images[0]?.providerFailures,
      [
        {
          code: 'TokenRequestFailed',
          problem: /grant create on serviceaccounts\/token \(manifests\/overlays\/credential-provider-tokens\)/,
        },
      ],
      'the decision line has the whole fix',
    )
  },
)

t.test(
  'with the credential-provider-tokens overlay: the plugin gets a real token for its audience, and the image is verified',
  async (t) => {
    const overlay = (await renderBase(cp, 'manifests/overlays/credential-provider-tokens')).find(
      (o) => o.kind === 'ClusterRole',
    )
    t.ok(overlay, 'the overlay renders a ClusterRole')
    await cp.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(overlay) })
    let run = await world.apply(deploy('after', 'builder'))
    // RBAC changes reach the API server's authorizer within a moment.
    for (let i = 0; i < 20 && run.stderr.includes('serviceaccounts/token'); i++) {
      await new Promise((r) => setTimeout(r, 250))
      await cp.kubectl(['delete', 'deployment', 'after', '-n', 'shop', '--ignore-not-found'])
      run = await world.apply(deploy('after', 'builder'))
    }
    t.same([run.code, run.stdout, run.stderr], [0, 'deployment.apps/after created\n', ''], 'verified: no warning')
    const requests = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            image: string
            serviceAccountToken?: string
            serviceAccountAnnotations?: Record<string, string>
          },
      )
    const last = requests[requests.length - 1]!
    t.equal(last.image, `${world.private.host}/cloud/api`, 'the repository name, as the kubelet passes it')
    t.same(last.serviceAccountAnnotations, { [ROLE]: 'puller' }, 'only the annotations the provider names')
    const review = JSON.parse(
      await cp.kubectlOk(['create', '-o', 'json', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token: last.serviceAccountToken, audiences: [AUDIENCE] },
        }),
      }),
    )
    t.match(
      review.status,
      { authenticated: true, user: { username: 'system:serviceaccount:shop:builder' }, audiences: [AUDIENCE] },
      'the API server issued it for that account and audience',
    )
    t.notMatch(
      JSON.stringify(await world.pullguard.settledLogs()),
      last.serviceAccountToken ?? 'no token',
      'the token is never logged',
    )
    const again = await world.apply(deploy('again', 'builder'))
    t.equal(again.code, 0)
    t.equal(
      readFileSync(log, 'utf8').trim().split('\n').length,
      requests.length,
      'the same account reuses the cached answer (cacheType ServiceAccount)',
    )
  },
)

t.test(
  'an account without the required annotation: the plugin is not run, and the private image is refused as on the node',
  async (t) => {
    const before = readFileSync(log, 'utf8').trim().split('\n').length
    const run = await world.apply(deploy('plain', 'plain'))
    t.equal(run.code, 1)
    t.match(run.stderr, `admission webhook "${WEBHOOK_NAME}" denied the request`)
    t.equal(readFileSync(log, 'utf8').trim().split('\n').length, before, 'no exec')
  },
)
