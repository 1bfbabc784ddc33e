// Every fix that is a command works: through a real kube-apiserver, the command is taken exactly
// as kubectl printed it, only USER and PASSWORD are filled in, it is run in a shell, and the same
// object applied again is admitted. Fixes that are manifest edits are made as the text says.
import t, { type Test } from 'tap'
import {
  cronJobManifest,
  deploymentManifest,
  podManifest,
  printedCommands,
  startWorld,
  WEBHOOK_NAME,
} from '../cluster/e2e.js'
import { seedOciIndex } from '../helpers/seed.js'

const world = await startWorld(t, {
  images: [
    'private:shop/api:2.4.1',
    'private:shop/worker:1.0',
    'open:team/api:1.0',
    'open:team/api:1.1',
    'open:team/api:1.2',
  ],
  // The cluster's platforms, as its nodes would report them.
  args: ['--platform', 'linux/amd64', '--platform', 'linux/arm64'],
})
const { cp, open } = world
const host = world.private.host
const api = `${host}/shop/api:2.4.1`
const worker = `${host}/shop/worker:1.0`
const DENIED = `admission webhook "${WEBHOOK_NAME}" denied the request: pullguard refused`
const create = (name: string, ns: string): string =>
  `kubectl create secret docker-registry ${name} --docker-server=${host} --docker-username=USER --docker-password=PASSWORD -n ${ns}`
const NEW = `pull-${host.replace(/[^a-z0-9]+/g, '-')}`
const withSecrets = (names: string[]): Record<string, unknown> => ({
  imagePullSecrets: names.map((name) => ({ name })),
})

/** Runs each printed command as pasted; each must succeed. */
async function runFix(t: Test, stderr: string, expected: number): Promise<void> {
  const commands = printedCommands(stderr)
  t.equal(commands.length, expected, `${expected} command(s) printed`)
  for (const command of commands) {
    const run = await world.sh(command)
    t.equal(run.code, 0, `${command}\n${run.stderr}`)
  }
}

t.test('the listed secret does not exist: create it by its own name (two containers, one entry)', async (t) => {
  await world.namespace('fix-missing')
  const manifest = deploymentManifest('fix-missing', 'api', [api, worker], withSecrets(['regcred']))
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.equal(
    bad.stderr,
    'Warning: pull secrets skipped: "regcred" (not found)\n' +
      `Error from server (Forbidden): error when creating "STDIN": ${DENIED} deployment fix-missing/api: 2 of 2 images cannot be pulled.\n` +
      `- container "c0" (spec.template.spec.containers[0]) image "${api}" and container "c1" (spec.template.spec.containers[1]) image "${worker}": ${host} requires credentials and no pull secret matches this registry, so the pull is anonymous. Fix:\n` +
      `    create secret "regcred", which the pods already list: ${create('regcred', 'fix-missing')}\n`,
    'the whole message as kubectl prints it: the fix names "regcred", once for both containers',
  )
  await runFix(t, bad.stderr, 1)
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout, ok.stderr], [0, 'deployment.apps/api created\n', ''])
})

t.test('a wrong password: the secret is updated in place', async (t) => {
  await world.namespace('fix-password')
  await cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    'regcred',
    '-n',
    'fix-password',
    `--docker-server=${host}`,
    '--docker-username=puller',
    '--docker-password=wrong',
  ])
  const manifest = deploymentManifest('fix-password', 'api', [api, worker], withSecrets(['regcred']))
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.match(
    bad.stderr,
    `${host} refused the credentials (tried secret fix-password/regcred (key "${host}")). Fix:\n    update secret "regcred" in place with an account that may pull from ${host}: ${create('regcred', 'fix-password')} --dry-run=client -o yaml | kubectl apply -f -\n`,
  )
  t.equal(bad.stderr.split('update secret').length, 2, 'said once for the two containers')
  await runFix(t, bad.stderr, 1)
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'])
})

t.test('an Opaque secret of that name: replaced with a docker-registry one', async (t) => {
  await world.namespace('fix-opaque')
  await cp.kubectlOk(['create', 'secret', 'generic', 'regcred', '-n', 'fix-opaque', '--from-literal=token=abc'])
  const manifest = deploymentManifest('fix-opaque', 'api', [api], withSecrets(['regcred']))
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.match(bad.stderr, 'Warning: pull secrets skipped: "regcred" (type Opaque, not a docker-registry secret)\n')
  t.match(
    bad.stderr,
    `    secret "regcred" is of type Opaque, which the kubelet ignores for pulls; if nothing else reads it, replace it with a docker-registry secret: kubectl delete secret regcred -n fix-opaque && ${create('regcred', 'fix-opaque')}\n`,
  )
  await runFix(t, bad.stderr, 1)
  t.equal(
    await cp.kubectlOk(['get', 'secret', 'regcred', '-n', 'fix-opaque', '-o', 'jsonpath={.type}']),
    'kubernetes.io/dockerconfigjson',
  )
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'])
})

t.test(
  'no secret, and the template lists none: a new secret through the service account, keeping its list',
  async (t) => {
    await world.namespace('fix-account')
    // The account already lists a secret for another registry: the patch must keep it.
    await cp.kubectlOk([
      'create',
      'secret',
      'docker-registry',
      'other',
      '-n',
      'fix-account',
      `--docker-server=${open.host}`,
      '--docker-username=x',
      '--docker-password=y',
    ])
    await cp.kubectlOk([
      'patch',
      'serviceaccount',
      'default',
      '-n',
      'fix-account',
      '-p',
      JSON.stringify(withSecrets(['other'])),
    ])
    const manifest = deploymentManifest('fix-account', 'api', [api])
    const bad = await world.apply(manifest)
    t.equal(bad.code, 1)
    t.equal(
      bad.stderr,
      `Error from server (Forbidden): error when creating "STDIN": ${DENIED} deployment fix-account/api: 1 of 1 image cannot be pulled.\n` +
        `- container "c0" (spec.template.spec.containers[0]) image "${api}": ${host} requires credentials and no pull secret matches this registry, so the pull is anonymous. Fix:\n` +
        `    "other" holds no credentials for ${host}: create a pull secret for ${host}: ${create(NEW, 'fix-account')}\n` +
        `    give it to the pods of service account "default", keeping the account's list, and apply again: kubectl patch serviceaccount default -n fix-account -p '{"imagePullSecrets":[{"name":"other"},{"name":"${NEW}"}]}'\n` +
        `    or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: other}, {name: ${NEW}}], and apply again\n`,
    )
    await runFix(t, bad.stderr, 2)
    t.equal(
      await cp.kubectlOk([
        'get',
        'serviceaccount',
        'default',
        '-n',
        'fix-account',
        '-o',
        'jsonpath={.imagePullSecrets[*].name}',
      ]),
      `other ${NEW}`,
      'the account keeps its list',
    )
    const ok = await world.apply(manifest)
    t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'])
  },
)

t.test(
  'no secret for this registry, and the template lists its own: add it there (the account would not apply)',
  async (t) => {
    await world.namespace('fix-template')
    await cp.kubectlOk([
      'create',
      'secret',
      'docker-registry',
      'other',
      '-n',
      'fix-template',
      `--docker-server=${open.host}`,
      '--docker-username=x',
      '--docker-password=y',
    ])
    const bad = await world.apply(deploymentManifest('fix-template', 'api', [api], withSecrets(['other'])))
    t.equal(bad.code, 1)
    t.match(
      bad.stderr,
      `    "other" holds no credentials for ${host}: create a pull secret for ${host}: ${create(NEW, 'fix-template')}\n    list it in spec.template.spec.imagePullSecrets: [{name: other}, {name: ${NEW}}], and apply again\n`,
    )
    t.notMatch(
      bad.stderr,
      'serviceaccount',
      "no service account patch: pods that list secrets do not get the account's",
    )
    await runFix(t, bad.stderr, 1)
    const ok = await world.apply(deploymentManifest('fix-template', 'api', [api], withSecrets(['other', NEW])))
    t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'], 'the list the fix named')
  },
)

t.test("a Pod that takes its service account's secret (wrong password): that secret is updated", async (t) => {
  await world.namespace('fix-pod-sa')
  await cp.kubectlOk([
    'create',
    'secret',
    'docker-registry',
    'regcred',
    '-n',
    'fix-pod-sa',
    `--docker-server=${host}`,
    '--docker-username=puller',
    '--docker-password=wrong',
  ])
  await cp.kubectlOk(['create', 'serviceaccount', 'builder', '-n', 'fix-pod-sa'])
  await cp.kubectlOk([
    'patch',
    'serviceaccount',
    'builder',
    '-n',
    'fix-pod-sa',
    '-p',
    JSON.stringify(withSecrets(['regcred'])),
  ])
  const manifest = podManifest('fix-pod-sa', 'api', [api], { serviceAccountName: 'builder' })
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.match(
    bad.stderr,
    `${host} refused the credentials (tried secret fix-pod-sa/regcred (key "${host}")). Fix:\n    update secret "regcred" in place`,
  )
  await runFix(t, bad.stderr, 1)
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout], [0, 'pod/api created\n'])
})

t.test("a CronJob with no secret: the account's patch, or its own field by its path", async (t) => {
  await world.namespace('fix-cron')
  const manifest = cronJobManifest('fix-cron', 'nightly', [worker])
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.match(bad.stderr, `${DENIED} cronjob fix-cron/nightly: 1 of 1 image cannot be pulled.`)
  t.match(
    bad.stderr,
    `    or, instead of the service account, list it in spec.jobTemplate.spec.template.spec.imagePullSecrets: [{name: ${NEW}}], and apply again\n`,
  )
  await runFix(t, bad.stderr, 2)
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout], [0, 'cronjob.batch/nightly created\n'])
})

t.test('UPDATE to a missing tag: the nearest tags and the tag it had before', async (t) => {
  await world.namespace('fix-update')
  const first = await world.apply(deploymentManifest('fix-update', 'web', [`${open.host}/team/api:1.1`]))
  t.equal(first.code, 0, first.stderr)
  const bad = await world.apply(deploymentManifest('fix-update', 'web', [`${open.host}/team/api:1.3`]))
  t.equal(bad.code, 1)
  t.match(bad.stderr, `Error from server (Forbidden): error when applying patch:`)
  t.match(
    bad.stderr,
    `${DENIED} deployment fix-update/web: 1 of 1 image cannot be pulled.\n- container "c0" (spec.template.spec.containers[0]) image "${open.host}/team/api:1.3": tag "1.3" does not exist in ${open.host}/team/api. Fix: existing tags nearest to "1.3": 1.2, 1.1, 1.0; before this change it was 1.1.\n`,
  )
  const named = /before this change it was (\S+)\.\n/.exec(bad.stderr)?.[1]
  const back = await world.apply(deploymentManifest('fix-update', 'web', [`${open.host}/team/api:${named}`]))
  t.same([back.code, back.stdout], [0, 'deployment.apps/web unchanged\n'], 'the tag it names is the one it had')
  const nearest = await world.apply(deploymentManifest('fix-update', 'web', [`${open.host}/team/api:1.2`]))
  t.same([nearest.code, nearest.stdout], [0, 'deployment.apps/web configured\n'], 'the nearest one is admitted')
  const set = await cp.kubectl(['set', 'image', 'deployment/web', '-n', 'fix-update', `c0=${open.host}/team/api:1.4`])
  t.match(
    set.stderr,
    'existing tags nearest to "1.4": 1.2, 1.1, 1.0; before this change it was 1.2.',
    'kubectl set image gets the same',
  )
})

t.test('a wrong platform: publish it, or select the nodes of the cluster that the image supports', async (t) => {
  await world.namespace('fix-platform')
  await seedOciIndex(open, 'team/amd-only', '1', [{ os: 'linux', architecture: 'amd64' }])
  const image = `${open.host}/team/amd-only:1`
  const bad = await world.apply(
    deploymentManifest('fix-platform', 'api', [image], { nodeSelector: { 'kubernetes.io/arch': 'arm64' } }),
  )
  t.equal(bad.code, 1)
  t.match(
    bad.stderr,
    `image "${image}": no entry for linux/arm64 in the image index (it has linux/amd64); the kubelet reports "no match for platform in manifest". Fix:\n` +
      `    publish ${image} for linux/arm64 (a multi-platform build)\n` +
      `    or run it on the cluster's linux/amd64 nodes, which the image supports: set spec.template.spec.nodeSelector to kubernetes.io/os: linux, kubernetes.io/arch: amd64 (and drop node affinity that excludes them)\n`,
  )
  const ok = await world.apply(
    deploymentManifest('fix-platform', 'api', [image], {
      nodeSelector: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
    }),
  )
  t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'], 'the nodeSelector the fix names')
})

t.test('an unparseable secret: written again in place', async (t) => {
  await world.namespace('fix-broken')
  // Valid JSON, so the API server takes it; an auth that is not base64 of user:password, so the kubelet cannot.
  const config = JSON.stringify({ auths: { [host]: { auth: Buffer.from('hunter2').toString('base64') } } })
  await cp.kubectlOk([
    'create',
    'secret',
    'generic',
    'regcred',
    '-n',
    'fix-broken',
    '--type=kubernetes.io/dockerconfigjson',
    `--from-literal=.dockerconfigjson=${config}`,
  ])
  const manifest = deploymentManifest('fix-broken', 'api', [api, worker], withSecrets(['regcred']))
  const bad = await world.apply(manifest)
  t.equal(bad.code, 1)
  t.match(
    bad.stderr,
    `and container "c1" (spec.template.spec.containers[1]) image "${worker}": pull secret "regcred" cannot be parsed`,
  )
  t.match(
    bad.stderr,
    `    write secret "regcred" again with valid content: ${create('regcred', 'fix-broken')} --dry-run=client -o yaml | kubectl apply -f -\n    or remove "regcred" from spec.template.spec.imagePullSecrets\n`,
  )
  t.notMatch(bad.stderr, 'hunter2')
  await runFix(t, bad.stderr, 1)
  const ok = await world.apply(manifest)
  t.same([ok.code, ok.stdout], [0, 'deployment.apps/api created\n'])
})

t.test("warn mode: the short form of the same fix, within the API server's warning length", async (t) => {
  await world.namespace('fix-warn', { 'pullguard.io/mode': 'warn' })
  const run = await world.apply(podManifest('fix-warn', 'api', [api], withSecrets(['regcred'])))
  t.equal(run.code, 0, run.stderr)
  const warnings = run.stderr.split('\n').filter((l) => l.startsWith('Warning: '))
  t.equal(warnings.length, 2, run.stderr)
  t.match(
    warnings[0],
    `Warning: container "c0" image "${api}": ${host} requires credentials (none matched) (warn mode: allowed); fix: `,
  )
  const fix = [
    `kubectl create secret docker-registry regcred --docker-server=${host} --docker-username=USER --docker-password=PASSWORD -n fix-warn`,
    `create the listed secret "regcred" (type docker-registry, for ${host})`,
  ]
  t.ok(
    fix.some((f) => warnings[0]!.endsWith(`; fix: ${f}`)),
    `the warning ends with its whole fix: ${warnings[0]}`,
  )
  t.ok(
    warnings.every((w) => w.length - 'Warning: '.length <= 256 && !w.includes('…')),
    'each within 256 characters, nothing cut',
  )
  t.match(warnings[1], 'pull secrets skipped: "regcred" (not found)')
})
