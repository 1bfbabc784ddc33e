// The install path of the README, against a real kube-apiserver: `kubectl apply -k manifests/base`
// as written, then `certs/make-certs.sh --apply`; every object is accepted by the API server's own
// validation, the Secret the Deployment mounts exists, and the webhook trusts the new CA.
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startControlPlane } from '../cluster/control-plane.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const cp = await startControlPlane()
t.teardown(() => cp.close())

t.test('kubectl apply -k manifests/base, then make-certs.sh --apply', async (t) => {
  const applied = await cp.kubectl(['apply', '-k', join(REPO, 'manifests/base')])
  t.equal(applied.code, 0, applied.stderr)
  for (const line of [
    'namespace/pullguard created',
    'serviceaccount/pullguard created',
    'clusterrole.rbac.authorization.k8s.io/pullguard created',
    'clusterrolebinding.rbac.authorization.k8s.io/pullguard created',
    'service/pullguard created',
    'deployment.apps/pullguard created',
    'poddisruptionbudget.policy/pullguard created',
    'validatingwebhookconfiguration.admissionregistration.k8s.io/pullguard created',
  ]) {
    t.match(applied.stdout, line)
  }
  t.equal(applied.stderr, '', 'no warnings from the API server (deprecated fields, unknown fields)')

  const out = await mkdtemp(join(tmpdir(), 'pullguard-certs-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const certs = spawnSync('bash', [join(REPO, 'certs/make-certs.sh'), '--out', join(out, 'certs'), '--apply'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', HOME: out, KUBECTL: cp.binaries.kubectl, KUBECONFIG: cp.adminKubeconfig },
  })
  t.equal(certs.status, 0, certs.stderr)
  const caBundle = (
    await cp.kubectlOk([
      'get',
      'validatingwebhookconfiguration',
      'pullguard',
      '-o',
      'jsonpath={.webhooks[0].clientConfig.caBundle}',
    ])
  ).trim()
  t.equal(
    caBundle,
    Buffer.from(await readFile(join(out, 'certs', 'ca.crt'))).toString('base64'),
    'the webhook trusts the new CA',
  )
  t.equal(
    (await cp.kubectlOk(['get', 'secret', 'pullguard-tls', '-n', 'pullguard', '-o', 'jsonpath={.type}'])).trim(),
    'kubernetes.io/tls',
  )
  const again = await cp.kubectl(['apply', '-k', join(REPO, 'manifests/base')])
  t.equal(again.code, 0, again.stderr)
  t.equal(
    (
      await cp.kubectlOk([
        'get',
        'validatingwebhookconfiguration',
        'pullguard',
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ])
    ).trim(),
    caBundle,
    'applying the base again leaves the caBundle alone',
  )
})

t.test('the warn overlay applies over the base and switches the default mode', async (t) => {
  const modeOf = (): Promise<string> =>
    cp.kubectlOk([
      'get',
      'deployment',
      'pullguard',
      '-n',
      'pullguard',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].args} {.spec.template.spec.containers[0].env}',
    ])
  t.notMatch(await modeOf(), /warn/, 'the base enforces')
  const applied = await cp.kubectl(['apply', '-k', join(REPO, 'manifests/overlays/warn')])
  t.equal(applied.code, 0, applied.stderr)
  t.match(await modeOf(), /warn/)
})

t.test("the Deployment meets its own namespace's restricted Pod Security level (a dry run of its pod)", async (t) => {
  const template = JSON.parse(await cp.kubectlOk(['get', 'deployment', 'pullguard', '-n', 'pullguard', '-o', 'json']))
    .spec.template
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'pullguard-probe', namespace: 'pullguard', labels: template.metadata.labels },
    spec: template.spec,
  }
  const run = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) })
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stderr, '', 'no Pod Security warning')
})

t.test(
  'the cloud, token and pinning overlays are accepted by the API server as they are (server-side dry run)',
  async (t) => {
    const withoutHostPath = ['credential-provider-tokens', 'pin-digests']
    for (const overlay of ['eks', 'gke', 'aks', ...withoutHostPath]) {
      const run = await cp.kubectl(['apply', '--dry-run=server', '-k', join(REPO, 'manifests/overlays', overlay)])
      t.equal(run.code, 0, `${overlay}: ${run.stderr}`)
      // The cloud overlays keep warning at restricted: the hostPath volumes, and nothing else, are named.
      const warnings = run.stderr.split('\n').filter((l) => l !== '')
      if (withoutHostPath.includes(overlay)) t.same(warnings, [], `${overlay}: no warnings`)
      else
        t.match(
          warnings,
          [
            /^Warning: would violate PodSecurity "restricted:latest": restricted volume types \(volumes? .* uses? restricted volume type "hostPath"\)$/,
          ],
          `${overlay}: only the hostPath warning`,
        )
      if (!withoutHostPath.includes(overlay)) t.equal(warnings.length, 1)
    }
  },
)
