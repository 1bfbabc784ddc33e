// A deleted pull secret leaves nothing behind: after the watch delivers the delete, no copy of its
// password is anywhere in pullguard's heap (the watched copy, parsed secrets, keyrings, credentials,
// cached results, reused assessments). Proven with a V8 heap snapshot searched for the value; the
// same search before the delete finds it, so the search itself works.
import { randomBytes } from 'node:crypto'
import { getHeapSnapshot } from 'node:v8'
import t from 'tap'
import { loadFixture, makeDockerConfigSecret, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { gc } from '../helpers/gc.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { startWebhook } from '../helpers/webhook.js'

// Two heap snapshots: seconds alone, but a minute or more when the fuzz test shares the CPU.
t.setTimeout(300_000)

const ca = await createTestCA()
t.teardown(() => ca.close())
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())

/** The password exists only as hex halves until it is needed: the test itself must not hold it. */
const halves = [randomBytes(12).toString('hex'), randomBytes(12).toString('hex')] as const
const password = (): string => `Retained-${halves[0]}${halves[1]}`
/** The same bytes as a Buffer (off the JS heap), for the search. */
const needle = (): Buffer => Buffer.concat([Buffer.from('Retained-'), Buffer.from(halves[0]), Buffer.from(halves[1])])
// An open registry: nothing but pullguard (and, briefly, the API stand-in's JSON) ever holds the password.
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
await seedOciManifest(registry, 'team/app', '1.0')

kube.put('namespaces', { ...loadFixture<any>('api/namespace.json'), metadata: { name: 'keep', labels: {} } })
kube.put(
  'secrets',
  makeDockerConfigSecret('keep', 'regcred', { [registry.host]: { username: 'keeper', password: password() } }),
)
// The API stand-in lives in this process and keeps its watch replay log (base64 data): the
// search is for the decoded value, which only pullguard ever holds.
const hook = await startWebhook({ ca, kube, args: ['--log-level', 'warn'] })
t.teardown(() => hook.close())

function review(uid: string): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = uid
  r.request.namespace = 'keep'
  r.request.object.metadata.namespace = 'keep'
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = [{ name: 'app', image: `${registry.host}/team/app:1.0` }]
  r.request.object.spec.imagePullSecrets = [{ name: 'regcred' }]
  return r
}

/** Whether the heap holds the password: the snapshot's bytes searched (chunk borders overlapped). */
async function heapHolds(bytes: Buffer): Promise<boolean> {
  for (let i = 0; i < 3; i++) gc()
  let tail = Buffer.alloc(0)
  for await (const chunk of getHeapSnapshot()) {
    const window = Buffer.concat([tail, chunk as Buffer])
    if (window.includes(bytes)) return true
    tail = window.subarray(Math.max(0, window.length - bytes.length))
  }
  return false
}

t.test('after the delete, the password is nowhere in the heap', async (t) => {
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
      if (await check()) return
    t.fail(`timed out waiting for ${what}`)
  }
  await until('the watched copy', async () =>
    /pullguard_cache_entries\{cache="pull-secrets"\} 1/.test((await hook.get('/metrics')).text),
  )
  for (let i = 0; i < 3; i++)
    t.match((await hook.post(review(`before-${i}`))).body.response, { allowed: true }, 'the secret is read and parsed')
  // The search finds the value while pullguard holds it. The needle is bytes outside the JS heap,
  // so the search does not find itself.
  t.equal(await heapHolds(needle()), true, 'found while the secret exists')

  kube.remove('secrets', 'keep/regcred')
  // The pod now names a secret that does not exist: allowed (the open registry needs none), with a warning.
  await until('the delete', async () =>
    ((await hook.post(review('after'))).body.response.warnings ?? []).some((w: string) => /regcred/.test(w)),
  )
  // Other traffic, so nothing lingers in a socket or a last-request slot.
  for (let i = 0; i < 3; i++) await hook.post(review(`after-${i}`))
  t.equal(await heapHolds(needle()), false, 'gone after the delete: copy, parsed secret, keyring, credential')
})
