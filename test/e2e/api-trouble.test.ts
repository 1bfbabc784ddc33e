// Started where the Kubernetes API cannot be used, pullguard says once, clearly, why — no
// kubeconfig, a refused connection (at which address), 401, 403 with the missing verb — and then
// retries quietly with back-off. The 401 and 403 come from a real kube-apiserver.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startControlPlane } from '../cluster/control-plane.js'
import { freePort } from '../helpers/fake-server.js'
import { startPullguard, type PullguardProcess } from '../cluster/pullguard.js'

const cp = await startControlPlane()
t.teardown(() => cp.close())
/** Back-off starts at 1 s and doubles: 5 s hold the first list and two or three retries. */
const WATCH_MS = 5_000

async function warningsOf(
  kubeconfig: string | undefined,
  env: Record<string, string> = {},
): Promise<{ warnings: string[]; pg: PullguardProcess }> {
  const pg = await startPullguard(cp, {
    port: await freePort(),
    kubeconfig,
    args: ['--log-level', 'info'],
    env,
    until: 'healthz',
  })
  await new Promise((r) => setTimeout(r, WATCH_MS))
  await pg.stop()
  const warnings = pg
    .logs()
    .filter((l) => l['level'] === 40)
    .map((l) => String(l['msg']))
  return { warnings, pg }
}

t.test('no kubeconfig at all: said once', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'pullguard-home-'))
  t.teardown(() => rm(home, { recursive: true, force: true }))
  const { warnings } = await warningsOf(undefined, { HOME: home })
  t.same(
    warnings.filter((w) => w.startsWith('Kubernetes API')),
    [
      'Kubernetes API cannot be used: no kubeconfig found (KUBECONFIG is unset, ~/.kube/config does not exist, and there is no in-cluster service account token): set KUBECONFIG, or run pullguard in the cluster with its service account; retrying quietly with back-off',
    ],
  )
})

t.test('connection refused: said once, with the address', async (t) => {
  const port = await freePort()
  const kubeconfig = await cp.writeKubeconfig('refused', 'some-token')
  const { readFile, writeFile } = await import('node:fs/promises')
  await writeFile(kubeconfig, (await readFile(kubeconfig, 'utf8')).replace(cp.server, `https://127.0.0.1:${port}`))
  const { warnings, pg } = await warningsOf(kubeconfig)
  t.same(
    warnings.filter((w) => w.startsWith('Kubernetes API')),
    [
      `Kubernetes API cannot be used: connection refused at https://127.0.0.1:${port}: is the API server running there?; retrying quietly with back-off`,
    ],
  )
  t.ok(
    pg.logs().filter((l) => String(l['msg']).startsWith('Kubernetes API still unusable')).length === 0,
    'retries are debug lines (not shown at info)',
  )
})

t.test('401 from the real API server: said once', async (t) => {
  const kubeconfig = await cp.writeKubeconfig('bad-token', 'not-a-valid-token')
  const { warnings } = await warningsOf(kubeconfig)
  t.same(
    warnings.filter((w) => w.startsWith('Kubernetes API')),
    [
      `Kubernetes API cannot be used: the API server at ${cp.server} refused pullguard's credentials (401 Unauthorized): the token or client certificate in the kubeconfig is invalid or expired; retrying quietly with back-off`,
    ],
  )
})

t.test('403 from the real API server: one line per resource, naming the verb', async (t) => {
  await cp.kubectlOk(['create', 'namespace', 'nobody'])
  await cp.kubectlOk(['create', 'serviceaccount', 'nobody', '-n', 'nobody'])
  const token = (await cp.kubectlOk(['create', 'token', 'nobody', '-n', 'nobody'])).trim()
  const { warnings } = await warningsOf(await cp.writeKubeconfig('nobody', token))
  t.same(
    warnings.filter((w) => w.startsWith('Kubernetes API')).sort(),
    ['namespaces', 'secrets', 'serviceaccounts'].map(
      (r) =>
        `Kubernetes API cannot be used: pullguard may not list ${r} (403 Forbidden): its ClusterRole must grant get, list and watch on ${r} (manifests/base/clusterrole.yaml); retrying quietly with back-off`,
    ),
  )
  t.notOk(
    warnings.some((w) => w.includes(token)),
    'the token is never logged',
  )
})
