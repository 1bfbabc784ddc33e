// A repository that does not exist, fixed with the nearest names the registry's own catalog lists
// (GET /v2/_catalog, real distribution registries): an open registry lists its repositories; a
// token registry whose token server grants no catalog scope (as Docker Hub) refuses, and the fix
// says so. At admission the denial names the container's field; diagnose and the audit give the
// `kubectl set image` command.
import t from 'tap'
import { makeDockerConfigSecret, makeNamespace, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'
import { reviewImages, startWebhook } from '../helpers/webhook.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, puller: 'puller-pw' },
  grant: (user, _repo, actions) =>
    user === 'admin' || user === 'puller' ? actions.filter((a) => a === 'pull' || user === 'admin') : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => open.close())
const priv = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
t.teardown(() => priv.close())
for (const repo of ['team/payments', 'team-b/payments', 'shop/cart']) await seedOciManifest(open, repo, 'v1')
await seedOciManifest(priv, 'team/payments', 'v1', ADMIN)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.namespaces.set('team-a', makeNamespace('team-a'))
kube.secrets.set(
  'team-a/priv',
  makeDockerConfigSecret('team-a', 'priv', { [priv.host]: { username: 'puller', password: 'puller-pw' } }),
)
const w = await startWebhook({ ca, kube })
t.teardown(() => w.close())

t.test('a typo in the repository: the nearest names of the catalog, and the field to set', async (t) => {
  const { response, logged } = await reviewImages(w, [`${open.host}/team/paymnets:v1`])
  t.equal(response.allowed, false)
  t.match(response.status.message, `repository ${open.host}/team/paymnets does not exist`)
  t.match(
    response.status.message,
    `repositories of ${open.host} nearest to "team/paymnets": team/payments, team-b/payments: use ${open.host}/team/payments:v1`,
  )
  t.match(logged, [{ reason: 'RepositoryNotFound' }])
})

t.test('a registry that refuses to list its repositories: the fix says so, and what to check', async (t) => {
  const { response } = await reviewImages(w, [`${priv.host}/team/paymnets:v1`], { secrets: ['priv'] })
  t.equal(response.allowed, false)
  t.match(
    response.status.message,
    `check the image name for typos: ${priv.host} has no repository team/paymnets (${priv.host} does not list its repositories to these credentials)`,
  )
  t.ok(
    tokenServer.requests.some((r) => r.scope === 'registry:catalog:*'),
    'the catalog was asked for, with its own scope',
  )
})

t.test('the catalog is read once a minute per registry and credentials, not per review', async (t) => {
  const before = tokenServer.requests.filter((r) => r.scope === 'registry:catalog:*').length
  await reviewImages(w, [`${priv.host}/team/other:v1`], { secrets: ['priv'] })
  await reviewImages(w, [`${priv.host}/team/third:v1`], { secrets: ['priv'] })
  t.equal(tokenServer.requests.filter((r) => r.scope === 'registry:catalog:*').length, before)
})
