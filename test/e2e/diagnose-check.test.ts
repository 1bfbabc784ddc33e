// `pullguard diagnose` and `pullguard check --from-cluster` against a real kube-apiserver: a pod is
// created, then its status and a kubelet-like Event are written as a kubelet would write them
// (status subresource, events API), and the CLI reads them with the user's kubeconfig.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runKubectl } from '../cluster/control-plane.js'
import { podManifest, PULLER, startWorld } from '../cluster/e2e.js'
import { runCli } from '../helpers/cli.js'

const world = await startWorld(t, {
  images: ['open:team/api:2.4.0', 'open:team/api:2.4.1', 'open:team/api:2.5.0', 'private:shop/api:1.0'],
})
const { cp, open } = world
// warn: the broken pod is let in (with a warning), as it would be in a namespace rolled out in warn mode.
await world.namespace('shop', { 'pullguard.io/mode': 'warn' })
const broken = `${open.host}/team/api:2.4.l`
// The CLI gets only what a user's shell would give it: the admin's kubeconfig and the registry CA, by variable.
const cliEnv = { KUBECONFIG: cp.adminKubeconfig, PULLGUARD_REGISTRY_CA: world.registryCa.caPath, HOME: tmpdir() }

const lastSeen = new Date().toISOString().replace(/\.\d+Z$/, 'Z')

/** The kubelet's view of a container that cannot pull: status through the status subresource, plus its Failed event. */
async function markImagePullBackOff(namespace: string, name: string, container: string, image: string): Promise<void> {
  const uid = (await cp.kubectlOk(['get', 'pod', name, '-n', namespace, '-o', 'jsonpath={.metadata.uid}'])).trim()
  const status = {
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-11-25T08:00:00Z' }],
      containerStatuses: [
        {
          name: container,
          image,
          imageID: '',
          ready: false,
          restartCount: 0,
          started: false,
          state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } },
        },
      ],
    },
  }
  await cp.kubectlOk([
    'patch',
    'pod',
    name,
    '-n',
    namespace,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify(status),
  ])
  const now = lastSeen
  const event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.1812f0a1d6e7f809`, namespace },
    involvedObject: { kind: 'Pod', namespace, name, uid, apiVersion: 'v1', fieldPath: `spec.containers{${container}}` },
    reason: 'Failed',
    message: `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`,
    source: { component: 'kubelet', host: 'worker-2' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 4,
    type: 'Warning',
    reportingComponent: 'kubelet',
    reportingInstance: 'worker-2',
  }
  await cp.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(event) })
}

t.test("diagnose pod: the kubelet's own text, the cause now, and the fix with the nearest tag", async (t) => {
  const created = await world.apply(podManifest('shop', 'api', [broken]))
  t.equal(created.code, 0, created.stderr)
  await markImagePullBackOff('shop', 'api', 'c0', broken)
  const run = await runCli(['diagnose', 'pod', 'api', '-n', 'shop'], { env: cliEnv })
  t.equal(run.code, 1, 'exit 1: a pod cannot pull')
  t.equal(run.stderr, '')
  const lines = run.stdout.split('\n')
  t.equal(lines[0], 'pod shop/api (pod/api, service account default)')
  t.ok(
    lines.includes(
      `    kubelet:  Failed to pull image "${broken}": rpc error: code = NotFound desc = failed to pull and unpack image "${broken}": failed to resolve reference "${broken}": ${broken}: not found (4 times, last ${lastSeen})`,
    ),
    "the kubelet's event text, as written",
  )
  t.ok(
    lines.includes(`    now:      TagNotFound: tag "2.4.l" does not exist in ${open.host}/team/api`),
    'checked again against the registry (its CA from PULLGUARD_REGISTRY_CA)',
  )
  t.ok(lines.includes('    fix:      existing tags nearest to "2.4.l": 2.4.1, 2.4.0, 2.5.0'))
  t.ok(
    lines.includes(
      `              use the nearest one: kubectl set image pod/api -n shop c0=${open.host}/team/api:2.4.1`,
    ),
  )
  t.match(run.stdout, 'pod shop/api: 1 container stuck on image pulls: 1 still broken, 0 pull now, 0 not verified')
  const all = await runCli(['diagnose', 'namespace', '-A', '-o', 'json'], { env: cliEnv })
  t.equal(all.code, 1)
  t.match(
    JSON.parse(all.stdout),
    { scope: { kind: 'all-namespaces' }, pods: [{ namespace: 'shop', name: 'api' }], summary: { exitCode: 1 } },
    'the same pod found through a cluster-wide list',
  )
})

t.test('kubectl pullguard: the plugin through the real kubectl, with its --context and -n', async (t) => {
  // What `npm install -g` links onto PATH: an executable named kubectl-pullguard.
  const bin = await mkdtemp(join(tmpdir(), 'pullguard-plugin-'))
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  const plugin = fileURLToPath(new URL('../../src/kubectl-pullguard.js', import.meta.url))
  await writeFile(join(bin, 'kubectl-pullguard'), `#!/bin/sh\nexec '${process.execPath}' '${plugin}' "$@"\n`, {
    mode: 0o755,
  })
  const kubectl = (args: string[]) =>
    runKubectl(cp.binaries.kubectl, args, { kubeconfig: cp.adminKubeconfig, pathPrefix: bin })
  const listed = await kubectl(['plugin', 'list'])
  t.match(listed.stdout, join(bin, 'kubectl-pullguard'), 'kubectl finds the plugin on PATH')
  const context = (await cp.kubectlOk(['config', 'current-context'])).trim()
  const run = await kubectl([
    'pullguard',
    'diagnose',
    'pod',
    'api',
    '-n',
    'shop',
    '--context',
    context,
    '--registry-ca',
    world.registryCa.caPath,
  ])
  t.equal(run.code, 1, run.stderr)
  t.match(run.stdout, /^pod shop\/api \(pod\/api, service account default\)\n/)
  t.match(run.stdout, `use the nearest one: kubectl set image pod/api -n shop c0=${open.host}/team/api:2.4.1`)
  const other = await kubectl(['pullguard', 'diagnose', 'pod', 'api', '-n', 'shop', '--context', 'staging'])
  t.equal(other.code, 2)
  t.match(other.stderr, `kubectl pullguard: --context: the kubeconfig has no context "staging" (it has ${context})`)
  const help = await kubectl(['pullguard', 'audit', '--help'])
  t.match(help.stdout, /^kubectl pullguard audit: find workloads whose images would no longer pull\n/)
})

t.test("check --from-cluster reads the namespace's secrets from the API server", async (t) => {
  await cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    'regcred',
    '-n',
    'shop',
    `--docker-server=${world.private.host}`,
    `--docker-username=${PULLER.username}`,
    `--docker-password=${PULLER.password}`,
  ])
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pod.json')
  await writeFile(
    file,
    JSON.stringify(
      podManifest('shop', 'private', [`${world.private.host}/shop/api:1.0`], {
        imagePullSecrets: [{ name: 'regcred' }],
      }),
    ),
  )
  const withCluster = await runCli(['check', '-f', file, '--from-cluster'], { env: cliEnv })
  t.equal(withCluster.code, 0, withCluster.stdout)
  t.match(withCluster.stdout, /pod shop\/private +c0 +\S+\/shop\/api:1\.0 +pullable +Exists/)
  const without = await runCli(['check', '-f', file], { env: cliEnv })
  t.match(
    without.stdout,
    /pod shop\/private +c0 +\S+\/shop\/api:1\.0 +unknown +AccessDenied/,
    'without the cluster the secret is not read',
  )
  await cp.kubectlOk(['delete', 'secret', 'regcred', '-n', 'shop'])
  await cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    'regcred',
    '-n',
    'shop',
    `--docker-server=${world.private.host}`,
    `--docker-username=${PULLER.username}`,
    '--docker-password=wrong',
  ])
  const wrong = await runCli(['check', '-f', file, '--from-cluster', '-o', 'json'], { env: cliEnv })
  t.equal(wrong.code, 1, 'a secret with the wrong password: not pullable')
  t.match(wrong.stdout, 'AccessDenied')
  t.notMatch(wrong.stdout, '"wrong"', 'the password is not printed')
})

t.test('the webhook, check and diagnose give the same fix for the same cause', async (t) => {
  const host = world.private.host
  const image = `${host}/shop/api:1.0`
  const manifest = podManifest('shop', 'needs-secret', [image], { imagePullSecrets: [{ name: 'team-pull' }] })
  const step = `create secret "team-pull", which the pods already list: kubectl create secret docker-registry team-pull --docker-server=${host} --docker-username=USER --docker-password=PASSWORD -n shop`

  // The webhook (warn mode lets the pod in): its decision log has each image's fix in full.
  const created = await world.apply(manifest)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stderr, 'Warning: container "c0" image')
  const decision = (await world.pullguard.settledLogs()).find(
    (l) => l['msg'] === 'decision' && l['name'] === 'needs-secret',
  ) as { images: Array<{ reason: string; fix: string[] }> } | undefined
  t.same(
    decision?.images.map((i) => [i.reason, i.fix]),
    [['AccessDenied', [step]]],
    'the webhook',
  )

  const dir = await mkdtemp(join(tmpdir(), 'pullguard-check-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pod.json')
  await writeFile(file, JSON.stringify(manifest))
  const checked = await runCli(['check', '-f', file, '--from-cluster'], { env: cliEnv })
  t.equal(checked.code, 1, checked.stdout)
  t.match(checked.stdout, `. Fix:\n    ${step}\n`, 'check')
  const json = await runCli(['check', '-f', file, '--from-cluster', '-o', 'json'], { env: cliEnv })
  t.same(JSON.parse(json.stdout).objects[0].images[0].fix, [step], 'check -o json')

  await markImagePullBackOff('shop', 'needs-secret', 'c0', image)
  const diagnosed = await runCli(['diagnose', 'pod', 'needs-secret', '-n', 'shop'], { env: cliEnv })
  t.equal(diagnosed.code, 1, diagnosed.stdout)
  t.ok(diagnosed.stdout.split('\n').includes(`    fix:      ${step}`), `diagnose\n${diagnosed.stdout}`)
})
