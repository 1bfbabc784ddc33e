// Pull credentials made as users make them (`kubectl create secret docker-registry`), read by
// pullguard through the manifests' own RBAC, in a real kube-apiserver: used by a pod, through a
// service account's imagePullSecrets, refused when wrong, and forgotten when deleted.
import t from 'tap'
import { deploymentManifest, podManifest, PULLER, startWorld, WEBHOOK_NAME } from '../cluster/e2e.js'

const world = await startWorld(t, { images: ['private:shop/api:2.4.1', 'private:shop/worker:1.0'] })
const { cp } = world
const host = world.private.host
const image = `${host}/shop/api:2.4.1`
const REFUSED = `admission webhook "${WEBHOOK_NAME}" denied the request: pullguard refused`
await world.namespace('shop')

function createSecret(name: string, password: string): Promise<string> {
  return cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    name,
    '-n',
    'shop',
    `--docker-server=${host}`,
    `--docker-username=${PULLER.username}`,
    `--docker-password=${password}`,
  ])
}
const withSecrets = (names: string[]): Record<string, unknown> => ({
  imagePullSecrets: names.map((name) => ({ name })),
})

t.test('a pod listing a secret made with kubectl create secret docker-registry is created', async (t) => {
  t.equal(await createSecret('regcred', PULLER.password), 'secret/regcred created\n')
  const run = await world.apply(podManifest('shop', 'api', [image], withSecrets(['regcred'])))
  t.same([run.code, run.stdout, run.stderr], [0, 'pod/api created\n', ''])
})

t.test('a Deployment whose service account lists the secret is created; without it, it is refused', async (t) => {
  await cp.kubectlOk(['create', 'serviceaccount', 'builder', '-n', 'shop'])
  const bare = await world.apply(
    deploymentManifest('shop', 'worker', [`${host}/shop/worker:1.0`], { serviceAccountName: 'builder' }),
  )
  t.equal(bare.code, 1, 'the account has no pull secrets yet')
  t.match(bare.stderr, `${REFUSED} deployment shop/worker`)
  await cp.kubectlOk([
    'patch',
    'serviceaccount',
    'builder',
    '-n',
    'shop',
    '--type=merge',
    '-p',
    JSON.stringify(withSecrets(['regcred'])),
  ])
  const ok = await world.apply(
    deploymentManifest('shop', 'worker', [`${host}/shop/worker:1.0`], { serviceAccountName: 'builder' }),
  )
  t.same(
    [ok.code, ok.stdout, ok.stderr],
    [0, 'deployment.apps/worker created\n', ''],
    'the patched account is seen within the same second (watch)',
  )
})

t.test('a secret with a wrong password is refused, and the message names the secret', async (t) => {
  await createSecret('stale', 'not-the-password')
  const run = await world.apply(podManifest('shop', 'stale', [image], withSecrets(['stale'])))
  t.equal(run.code, 1)
  t.match(run.stderr, `${REFUSED} pod shop/stale: 1 of 1 image cannot be pulled.`)
  t.match(
    run.stderr,
    `${host} refused the credentials (tried secret shop/stale (key "${host}"))`,
    'the secret is named',
  )
  t.notMatch(run.stderr, 'not-the-password', 'the password is not')
})

t.test('a deleted secret stops working within seconds', async (t) => {
  await createSecret('shortlived', PULLER.password)
  const pod = (n: number): unknown => podManifest('shop', `short-${n}`, [image], withSecrets(['shortlived']))
  const first = await world.apply(pod(0), 'apply', ['--dry-run=server'])
  t.equal(first.code, 0, first.stderr)
  await cp.kubectlOk(['delete', 'secret', 'shortlived', '-n', 'shop'])
  const deleted = Date.now()
  let refused: { stderr: string } | undefined
  for (let n = 1; Date.now() - deleted < 10_000; n++) {
    const run = await world.apply(pod(n), 'apply', ['--dry-run=server'])
    if (run.code !== 0) {
      refused = run
      break
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  const took = Date.now() - deleted
  t.ok(refused !== undefined && took < 10_000, `refused ${took} ms after the delete`)
  t.match(refused?.stderr, /"shortlived" \(not found\)/, 'the message says the secret is gone')
})
