// When things go wrong around pullguard, through a real kube-apiserver: a registry that never
// answers costs at most pullguard's own budget (kubectl has its answer before the webhook's
// timeoutSeconds), and a stopped pullguard lets pods in (failurePolicy: Ignore), as the manifests say.
import type { Socket } from 'node:net'
import t from 'tap'
import { podManifest, startWorld } from '../cluster/e2e.js'
import { renderBase } from '../cluster/pullguard.js'
import { startRawServer } from '../helpers/fake-server.js'

const world = await startWorld(t, { images: ['open:team/api:1.0'] })
const { cp } = world
await world.namespace('shop')
const hooks = await renderBase(cp)
const timeoutSeconds = Number(
  (
    hooks.find((o) => o.kind === 'ValidatingWebhookConfiguration')?.webhooks?.[0] as
      | { timeoutSeconds?: number }
      | undefined
  )?.timeoutSeconds,
)

t.test(
  "a registry that never answers: kubectl has pullguard's answer before the webhook's timeoutSeconds",
  async (t) => {
    t.equal(timeoutSeconds, 10, 'the manifests give the API server 10 s')
    const held: Socket[] = []
    const silent = await startRawServer((socket) => held.push(socket)) // accepts, never says a word
    t.teardown(() => silent.close())
    const image = `${silent.host}/team/api:1.0`
    const run = await cp.kubectl(['create', '-f', '-'], {
      input: JSON.stringify(podManifest('shop', 'hangs', [image])),
    })
    t.ok(run.ms < timeoutSeconds * 1000, `answered in ${run.ms} ms`)
    t.equal(run.code, 0, 'allowed: --on-registry-error allow (the default)')
    t.equal(run.stdout, 'pod/hangs created\n')
    t.match(run.stderr, `Warning: container "c0" image "${image}": not verified, ${silent.host}`)
    t.match(run.stderr, 'allowed by --on-registry-error=allow')
    t.ok(held.length > 0, 'pullguard did try the registry')
    const line = (await world.pullguard.settledLogs()).find((l) => l['msg'] === 'decision' && l['name'] === 'hangs')
    t.match(line, { verdict: 'allowed' }, "pullguard decided, not the API server's failure policy")
  },
)

t.test('with --on-registry-error deny, the same registry is a refusal naming the host, still in time', async (t) => {
  await world.restartPullguard(['--on-registry-error', 'deny'])
  const silent = await startRawServer(() => {})
  t.teardown(() => silent.close())
  const image = `${silent.host}/team/api:1.0`
  const run = await cp.kubectl(['create', '-f', '-'], {
    input: JSON.stringify(podManifest('shop', 'hangs-denied', [image])),
  })
  t.ok(run.ms < timeoutSeconds * 1000, `answered in ${run.ms} ms`)
  t.equal(run.code, 1)
  t.match(run.stderr, `pullguard refused pod shop/hangs-denied`)
  t.match(run.stderr, silent.host)
  await world.restartPullguard()
})

t.test('pullguard stopped: failurePolicy Ignore admits pods, even ones it would refuse', async (t) => {
  const refused = await world.apply(podManifest('shop', 'while-down', [`${world.open.host}/team/api:9.9`]), 'create')
  t.equal(refused.code, 1, 'refused while pullguard runs')
  await world.pullguard.stop()
  const run = await world.apply(podManifest('shop', 'while-down', [`${world.open.host}/team/api:9.9`]), 'create')
  t.same([run.code, run.stdout], [0, 'pod/while-down created\n'], run.stderr)
  t.ok(run.ms < timeoutSeconds * 1000, `answered in ${run.ms} ms`)
  t.match(
    cp.apiserverLog(),
    /Failed calling webhook, failing open pullguard\.pullguard\.io/,
    'the API server failed open',
  )
})
