// Pinning through a real kube-apiserver, installed from manifests/overlays/pin-digests: pullguard
// runs with what the Deployment gives its pod (--pin-digests=true), the API server calls its
// /mutate for Pods in namespaces labelled pullguard.io/pin=digest, and what is stored is read back
// with kubectl: a tag pinned to its digest (a multi-platform image to its index's), the original in
// the annotation; a Deployment's template untouched and the pod made from it pinned; kubectl debug's
// ephemeral container pinned; a namespace without the label untouched; an image another mutating
// webhook rewrites after pullguard verified and pinned on reinvocation; pullguard down, the pod
// created as written; and `pullguard audit` telling, as information, which pinned tags moved.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import t from 'tap'
import { createNamespace, startControlPlane } from '../cluster/control-plane.js'
import {
  createServingSecret,
  installPullguard,
  podManifest,
  startPullguardAsPod,
  waitForWebhook,
} from '../cluster/pullguard.js'
import { runCli } from '../helpers/cli.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { AMD64_AND_ARM64, seedOciIndex, seedOciManifest } from '../helpers/seed.js'

const ca = await createTestCA('pullguard pin e2e registry CA')
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
const host = registry.host
const app = await seedOciIndex(registry, 'shop/app', '1.0', AMD64_AND_ARM64)
const side = await seedOciManifest(registry, 'shop/side', '1.0')
const busybox = await seedOciManifest(registry, 'library/busybox', '1.36')

const cp = await startControlPlane()
t.teardown(() => cp.close())
const installed = await installPullguard(cp, { dir: 'manifests/overlays/pin-digests' })
await createServingSecret(cp)
const { pod: files, pullguard } = await startPullguardAsPod(cp, {
  namespace: 'pullguard',
  port: installed.port,
  kubeconfig: installed.kubeconfig,
  args: ['--registry-ca', ca.caPath],
})
let stopped = false
t.teardown(async () => {
  if (!stopped) await pullguard.stop()
  await files.close()
})
await createNamespace(cp, 'shop')
await cp.kubectlOk(['label', 'namespace', 'shop', 'pullguard.io/pin=digest'])
await createNamespace(cp, 'plain')
await waitForWebhook(cp, 'shop')

async function stored(namespace: string, name: string): Promise<any> {
  return JSON.parse(await cp.kubectlOk(['get', 'pod', name, '-n', namespace, '-o', 'json']))
}
function pinnedFrom(pod: any): Record<string, string> | undefined {
  const raw = pod.metadata.annotations?.['pullguard.io/pinned-from']
  return raw === undefined ? undefined : JSON.parse(raw)
}

t.test('the overlay runs pullguard with --pin-digests', async (t) => {
  t.ok(files.args.includes('--pin-digests=true'), files.args.join(' '))
})

t.test('kubectl run of a tag: the stored pod pulls the digest, the tag kept in the annotation', async (t) => {
  await cp.kubectlOk(['run', 'web', '-n', 'shop', `--image=${host}/shop/app:1.0`, '--restart=Never'])
  const pod = await stored('shop', 'web')
  t.equal(
    pod.spec.containers[0].image,
    `${host}/shop/app@${app.digest}`,
    "the multi-platform image at its index's digest",
  )
  t.same(pinnedFrom(pod), { 'spec.containers[0].image': `${host}/shop/app:1.0` })
  t.equal(pod.spec.containers[0].imagePullPolicy, 'IfNotPresent', 'the policy the API server defaulted for the tag')
  // The validating webhook, called after every mutation, judged the digest and says where it came from.
  const decision = (await pullguard.settledLogs()).find(
    (l) => l['msg'] === 'decision' && l['name'] === 'web' && l['namespace'] === 'shop',
  )
  t.match(decision, {
    verdict: 'allowed',
    images: [{ image: `${host}/shop/app@${app.digest}`, reason: 'Exists', pinnedFrom: `${host}/shop/app:1.0` }],
  })
})

t.test('a namespace without the label is left as written', async (t) => {
  await cp.kubectlOk(['run', 'web', '-n', 'plain', `--image=${host}/shop/app:1.0`, '--restart=Never'])
  const pod = await stored('plain', 'web')
  t.equal(pod.spec.containers[0].image, `${host}/shop/app:1.0`)
  t.equal(pinnedFrom(pod), undefined)
})

t.test("a Deployment's template is never changed; the pod made from it is pinned", async (t) => {
  const template = {
    metadata: { labels: { app: 'shop' } },
    spec: {
      initContainers: [{ name: 'init', image: `${host}/shop/side:1.0` }],
      containers: [{ name: 'app', image: `${host}/shop/app:1.0` }],
    },
  }
  await cp.kubectlOk(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop', namespace: 'shop' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'shop' } }, template },
    }),
  })
  const deployment = JSON.parse(await cp.kubectlOk(['get', 'deployment', 'shop', '-n', 'shop', '-o', 'json']))
  t.equal(deployment.spec.template.spec.containers[0].image, `${host}/shop/app:1.0`, 'GitOps sees no drift')
  t.equal(deployment.metadata.annotations?.['pullguard.io/pinned-from'], undefined)
  // What the ReplicaSet controller sends (none runs here): a Pod of the template, named by the server.
  const created = await cp.kubectlOk(['create', '-f', '-', '-o', 'jsonpath={.metadata.name}'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'shop-5d8f7c9b4-', namespace: 'shop', labels: template.metadata.labels },
      spec: template.spec,
    }),
  })
  const pod = await stored('shop', created.trim())
  t.equal(pod.spec.initContainers[0].image, `${host}/shop/side@${side.digest}`)
  t.equal(pod.spec.containers[0].image, `${host}/shop/app@${app.digest}`)
  t.same(pinnedFrom(pod), {
    'spec.initContainers[0].image': `${host}/shop/side:1.0`,
    'spec.containers[0].image': `${host}/shop/app:1.0`,
  })
})

t.test('kubectl debug: the ephemeral container pinned', async (t) => {
  await cp.kubectlOk(['debug', 'web', '-n', 'shop', `--image=${host}/library/busybox:1.36`, '--container=dbg'])
  const pod = await stored('shop', 'web')
  const dbg = pod.spec.ephemeralContainers.find((c: any) => c.name === 'dbg')
  t.equal(dbg.image, `${host}/library/busybox@${busybox.digest}`)
  t.same(
    pinnedFrom(pod),
    { 'spec.containers[0].image': `${host}/shop/app:1.0` },
    'the annotation as it was: that subresource changes nothing but ephemeral containers',
  )
})

t.test(
  'another mutating webhook rewrites the registry after pullguard: pullguard is called again and pins what it wrote',
  async (t) => {
    // A registry rewriter, as a pull-through cache installs one: mirror.invalid/… becomes the registry.
    const cert = await cp.ca.issue('rewriter', { ips: ['127.0.0.1'] })
    const server: Server = createServer(
      { cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) },
      (req, res) => {
        let body = ''
        req.on('data', (c: Buffer) => (body += c.toString('utf8')))
        req.on('end', () => {
          const review = JSON.parse(body)
          const containers: Array<{ image: string }> = review.request.object.spec.containers
          const patch = containers.flatMap((c, i) =>
            c.image.startsWith('mirror.invalid/')
              ? [
                  {
                    op: 'replace',
                    path: `/spec/containers/${i}/image`,
                    value: `${host}/${c.image.slice('mirror.invalid/'.length)}`,
                  },
                ]
              : [],
          )
          const response: Record<string, unknown> = { uid: review.request.uid, allowed: true }
          if (patch.length > 0) {
            response.patchType = 'JSONPatch'
            response.patch = Buffer.from(JSON.stringify(patch)).toString('base64')
          }
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }))
        })
      },
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as { port: number }).port
    // Named after pullguard's configuration, so the API server calls it second.
    await cp.kubectlOk(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'zz-registry-rewriter' },
        webhooks: [
          {
            name: 'rewrite.example.com',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            reinvocationPolicy: 'Never',
            clientConfig: { url: `https://127.0.0.1:${port}/`, caBundle: Buffer.from(cp.ca.caPem).toString('base64') },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
            rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
          },
        ],
      }),
    })
    t.teardown(() => cp.kubectlOk(['delete', 'mutatingwebhookconfiguration', 'zz-registry-rewriter']))
    await cp.kubectlOk(['create', '-f', '-'], {
      input: JSON.stringify(podManifest('shop', 'cached', ['mirror.invalid/shop/side:1.0'])),
    })
    const pod = await stored('shop', 'cached')
    t.equal(pod.spec.containers[0].image, `${host}/shop/side@${side.digest}`, 'pinned at the image the rewriter wrote')
    t.same(pinnedFrom(pod), { 'spec.containers[0].image': `${host}/shop/side:1.0` })
    const logs = await pullguard.settledLogs()
    const pins = logs.filter((l) => l['msg'] === 'pin' && l['name'] === 'cached')
    t.equal(pins.length, 2, 'called, then called again after the rewriter')
  },
)

t.test('pullguard down: the pod is created as written', async (t) => {
  await pullguard.stop()
  stopped = true
  await cp.kubectlOk(['run', 'late', '-n', 'shop', `--image=${host}/shop/app:1.0`, '--restart=Never'])
  const pod = await stored('shop', 'late')
  t.equal(pod.spec.containers[0].image, `${host}/shop/app:1.0`)
  t.equal(pinnedFrom(pod), undefined)
})

t.test('the audit checks pinned pods at their digests and tells which tags moved since', async (t) => {
  const cliEnv = { KUBECONFIG: cp.adminKubeconfig, PULLGUARD_REGISTRY_CA: ca.caPath, HOME: tmpdir() }
  const before = await runCli(['audit', '-n', 'shop', '-o', 'json'], { env: cliEnv })
  t.equal(before.code, 0, before.stderr)
  t.equal(JSON.parse(before.stdout).tagsMoved, undefined, 'no tag moved yet')
  // The tag moves: shop/app:1.0 is pushed again, now a single manifest instead of an index.
  const moved = await seedOciManifest(registry, 'shop/app', '1.0')
  t.not(moved.digest, app.digest)
  const after = await runCli(['audit', '-n', 'shop', '-o', 'json'], { env: cliEnv })
  t.equal(after.code, 0, `information only: every pinned digest still pulls: ${after.stderr}`)
  const report = JSON.parse(after.stdout)
  t.same(report.workloads, [], 'no finding: the pinned digests are still there')
  const web = report.tagsMoved.find((m: any) => m.name === 'web')
  t.same(web, {
    kind: 'Pod',
    namespace: 'shop',
    name: 'web',
    container: 'web',
    field: 'spec.containers[0]',
    pinned: `${host}/shop/app@${app.digest}`,
    tag: `${host}/shop/app:1.0`,
    now: moved.digest,
  })
  t.ok(
    report.tagsMoved.every((m: any) => m.tag === `${host}/shop/app:1.0`),
    'only the moved tag: shop/side:1.0 still names its pinned manifest',
  )
  const table = await runCli(['audit', '-n', 'shop'], { env: cliEnv })
  t.match(table.stdout, /tags moved since their pods were pinned \(information/)
  t.match(
    table.stdout,
    `pod shop/web container "web" (spec.containers[0]): ${host}/shop/app:1.0 now names ${moved.digest}`,
  )
})
