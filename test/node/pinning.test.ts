// Pinning on the real node: a pod the mutating webhook pinned pulls the digest it was admitted
// with, also after its tag moved (as a pod rescheduled or restarted in a half-finished rollout
// does). The open registry's access log shows what the node asked for.
import t from 'tap'
import { podOutcomes } from '../cluster/pod-outcome.js'
import { startNodeWorld } from '../cluster/node-world.js'

const world = await startNodeWorld(t, { pinDigests: true })
const { cp } = world
await world.namespace('pin')
await cp.kubectlOk(['label', 'namespace', 'pin', 'pullguard.io/pin=digest'])
const POD_TIMEOUT_MS = 60_000

function pod(name: string, image: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'pin' },
    // Always: the kubelet asks the registry on every start, so what it asks for is what the pod names.
    // No CNI here: the host's network; no token controller: no service account token.
    spec: {
      nodeName: world.node.name,
      hostNetwork: true,
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      containers: [{ name: 'app', image, imagePullPolicy: 'Always' }],
    },
  })
}

async function image(name: string): Promise<string> {
  return cp.kubectlOk(['get', 'pod', name, '-n', 'pin', '-o', 'jsonpath={.spec.containers[0].image}'])
}

t.test('a pinned pod pulls its digest after the tag moved', async (t) => {
  const tag = world.ref('open:shop/app:1')
  const first = await world.push('open:shop/app:1')
  await cp.kubectlOk(['create', '-f', '-'], { input: pod('before', tag) })
  const pinned = await image('before')
  t.equal(pinned, `${tag.slice(0, -':1'.length)}@${first.digest}`, 'pinned at admission')
  t.same([...(await podOutcomes(cp, 'pin', ['before'], POD_TIMEOUT_MS)).values()], [{ kind: 'running' }])

  // The tag moves: the same name now holds an index (another manifest, another digest).
  const moved = await world.push('open:shop/app:1', { platforms: [{ os: 'linux', architecture: 'amd64' }] })
  t.not(moved.digest, first.digest)
  const since = Date.now()

  // The pod as it was admitted, made again (a rescheduled replica of the same spec): its digest.
  await cp.kubectlOk(['create', '-f', '-'], { input: pod('again', pinned) })
  t.equal(await image('again'), pinned, 'a digest is left as written')
  t.same([...(await podOutcomes(cp, 'pin', ['again'], POD_TIMEOUT_MS)).values()], [{ kind: 'running' }])

  const asked = world.registries.open
    .requests()
    .filter((r) => r.at >= since && r.path.startsWith('/v2/shop/app/manifests/'))
    .map((r) => r.path.slice('/v2/shop/app/manifests/'.length))
  // pullguard judged `again` from its cache (the tag's answer kept for its digest): what was asked
  // after the move is the node's, by the pinned digest, never by the tag.
  t.ok(asked.includes(first.digest), `the node asked for the pinned digest: ${asked.join(', ')}`)
  t.notOk(asked.includes('1'), 'and not for the tag, which now names another manifest')
  t.notOk(asked.includes(moved.digest))
})
