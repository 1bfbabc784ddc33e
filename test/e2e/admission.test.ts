// Through a real kube-apiserver, as users see it: pullguard installed from manifests/base, running
// as its own service account, judging what kubectl sends. Each answer is read as kubectl prints it.
import t from 'tap'
import { cronJobManifest, deploymentManifest, podManifest, startWorld, WEBHOOK_NAME } from '../cluster/e2e.js'

const world = await startWorld(t, {
  images: [
    'open:team/api:1.0',
    'open:team/api:1.1',
    'open:team/api:1.2',
    'open:team/worker:3',
    'private:shop/api:2.4.1',
  ],
})
const { cp, open } = world
await world.namespace('shop')
const api = (tag: string): string => `${open.host}/team/api:${tag}`
const worker = `${open.host}/team/worker:3`
const REFUSED = `admission webhook "${WEBHOOK_NAME}" denied the request: pullguard refused`

async function exists(kind: string, namespace: string, name: string): Promise<boolean> {
  const run = await cp.kubectl(['get', kind, name, '-n', namespace, '-o', 'name'])
  if (run.code !== 0 && !run.stderr.includes('NotFound')) throw new Error(run.stderr)
  return run.code === 0
}

t.test(
  'a Deployment whose tag does not exist is refused with the nearest tags; one that can pull is created',
  async (t) => {
    const bad = await world.apply(deploymentManifest('shop', 'web', [api('1.3'), worker]))
    t.equal(bad.code, 1, 'kubectl fails')
    t.equal(
      bad.stderr,
      `Error from server (Forbidden): error when creating "STDIN": ${REFUSED} deployment shop/web: 1 of 2 images cannot be pulled.\n` +
        `- container "c0" (spec.template.spec.containers[0]) image "${api('1.3')}": tag "1.3" does not exist in ${open.host}/team/api. Fix: existing tags nearest to "1.3": 1.2, 1.1, 1.0.\n`,
      'the whole message, with its fix, as kubectl prints it',
    )
    t.notOk(await exists('deployment', 'shop', 'web'), 'nothing stored')
    const ok = await world.apply(deploymentManifest('shop', 'web', [api('1.2'), worker]))
    t.same([ok.code, ok.stdout, ok.stderr], [0, 'deployment.apps/web created\n', ''])
  },
)

t.test('a CronJob whose repository does not exist is refused; one that can pull is created', async (t) => {
  const bad = await world.apply(cronJobManifest('shop', 'nightly', [`${open.host}/team/nothing:1`]))
  t.equal(bad.code, 1)
  t.match(bad.stderr, `${REFUSED} cronjob shop/nightly: 1 of 1 image cannot be pulled.`)
  t.match(
    bad.stderr,
    `- container "c0" (spec.jobTemplate.spec.template.spec.containers[0]) image "${open.host}/team/nothing:1": repository ${open.host}/team/nothing does not exist. Fix: check the image name for typos: ${open.host} has no repository team/nothing (no repository of ${open.host} is near "team/nothing").`,
  )
  t.notOk(await exists('cronjob', 'shop', 'nightly'))
  const ok = await world.apply(cronJobManifest('shop', 'nightly', [worker]))
  t.same([ok.code, ok.stdout], [0, 'cronjob.batch/nightly created\n'])
})

t.test(
  'a Pod with a private image and no credentials is refused with the secret to create; a public one is created',
  async (t) => {
    const image = `${world.private.host}/shop/api:2.4.1`
    const bad = await world.apply(podManifest('shop', 'private', [image]))
    t.equal(bad.code, 1)
    t.match(bad.stderr, `${REFUSED} pod shop/private: 1 of 1 image cannot be pulled.`)
    t.match(
      bad.stderr,
      `image "${image}": ${world.private.host} requires credentials and no pull secret matches this registry`,
    )
    t.match(
      bad.stderr,
      `Fix:\n    create a pull secret for ${world.private.host}: kubectl create secret docker-registry pull-${world.private.host.replace(/[.:]/g, '-')} --docker-server=${world.private.host} --docker-username=USER --docker-password=PASSWORD -n shop\n`,
    )
    t.notOk(await exists('pod', 'shop', 'private'))
    const ok = await world.apply(podManifest('shop', 'public', [api('1.0')]))
    t.same([ok.code, ok.stdout, ok.stderr], [0, 'pod/public created\n', ''])
  },
)

t.test('UPDATE: kubectl set image to a missing tag is refused, and the Deployment keeps its image', async (t) => {
  const calls = await world.webhookCalls('UPDATE')
  const run = await cp.kubectl(['set', 'image', 'deployment/web', '-n', 'shop', `c0=${api('9.9')}`])
  t.equal(run.code, 1)
  t.match(run.stderr, `${REFUSED} deployment shop/web: 1 of 1 image cannot be pulled.`)
  t.match(run.stderr, `tag "9.9" does not exist in ${open.host}/team/api`)
  t.equal(await world.webhookCalls('UPDATE'), calls + 1, 'the API server counted the call')
  t.equal(
    await cp.kubectlOk([
      'get',
      'deployment',
      'web',
      '-n',
      'shop',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}',
    ]),
    api('1.2'),
  )
  const ok = await cp.kubectl(['set', 'image', 'deployment/web', '-n', 'shop', `c0=${api('1.1')}`])
  t.same([ok.code, ok.stdout], [0, 'deployment.apps/web image updated\n'], 'an existing tag is allowed')
})

t.test(
  'UPDATE: kubectl label leaves the pod spec as it was and never reaches pullguard (matchConditions)',
  async (t) => {
    const before = await world.webhookCalls('UPDATE')
    const reviews = (await world.pullguard.settledLogs()).filter((l) => l['msg'] === 'decision').length
    for (const value of ['a', 'b', 'c'])
      await cp.kubectlOk(['label', '--overwrite', 'pod', 'public', '-n', 'shop', `tier=${value}`])
    await cp.kubectlOk(['annotate', 'deployment', 'web', '-n', 'shop', 'note=hello'])
    t.equal(await world.webhookCalls('UPDATE'), before, 'no UPDATE call to the webhook')
    t.equal(
      (await world.pullguard.settledLogs()).filter((l) => l['msg'] === 'decision').length,
      reviews,
      'no decision made by pullguard',
    )
  },
)

t.test('kubectl debug with a missing image (pods/ephemeralcontainers) is refused', async (t) => {
  const run = await cp.kubectl(['debug', 'public', '-n', 'shop', `--image=${api('0.0.1')}`, '-c', 'debugger'])
  t.equal(run.code, 1)
  t.match(run.stderr, `${REFUSED} pod shop/public: 1 of 1 image cannot be pulled.`)
  t.match(
    run.stderr,
    `- container "debugger" (spec.ephemeralContainers[0]) image "${api('0.0.1')}": tag "0.0.1" does not exist`,
  )
  t.equal(
    await cp.kubectlOk(['get', 'pod', 'public', '-n', 'shop', '-o', 'jsonpath={.spec.ephemeralContainers}']),
    '',
    'no ephemeral container added',
  )
  const ok = await cp.kubectl(['debug', 'public', '-n', 'shop', `--image=${worker}`, '-c', 'debugger'])
  t.equal(ok.code, 0, ok.stderr)
  t.match(
    await cp.kubectlOk(['get', 'pod', 'public', '-n', 'shop', '-o', 'jsonpath={.spec.ephemeralContainers[0].image}']),
    worker,
  )
})

t.test('--dry-run=server is judged like a real request', async (t) => {
  const bad = await world.apply(podManifest('shop', 'dry', [api('1.9')]), 'apply', ['--dry-run=server'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, `${REFUSED} pod shop/dry: 1 of 1 image cannot be pulled.`)
  t.match(bad.stderr, 'Fix: existing tags nearest to "1.9": 1.2, 1.1, 1.0.')
  const ok = await world.apply(podManifest('shop', 'dry', [api('1.2')]), 'apply', ['--dry-run=server'])
  t.same([ok.code, ok.stdout], [0, 'pod/dry created (server dry run)\n'])
  t.notOk(await exists('pod', 'shop', 'dry'), 'a dry run stores nothing')
  const line = (await world.pullguard.settledLogs()).find(
    (l) => l['msg'] === 'decision' && l['name'] === 'dry' && l['verdict'] === 'denied',
  )
  t.match(line, { dryRun: true, namespace: 'shop', kind: 'Pod' }, 'the decision line says it was a dry run')
})

t.test('a namespace labelled warn gets the Warning: lines kubectl prints, and the pod is created', async (t) => {
  await world.namespace('shop-warn', { 'pullguard.io/mode': 'warn' })
  const run = await world.apply(podManifest('shop-warn', 'api', [api('1.3'), api('1.0')]))
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'pod/api created\n')
  t.equal(
    run.stderr,
    `Warning: container "c0" image "${api('1.3')}": tag "1.3" not found in ${open.host}/team/api (warn mode: allowed); fix: try 1.2, 1.1, 1.0\n`,
    'one line for the one image that cannot be pulled',
  )
})

t.test("a namespace labelled off, and pullguard's own namespace, are never sent to pullguard", async (t) => {
  await world.namespace('shop-off', { 'pullguard.io/mode': 'off' })
  // pullguard's namespace is skipped by name too: without its `off` label it is still not sent.
  await cp.kubectlOk(['label', 'namespace', 'pullguard', 'pullguard.io/mode-'])
  t.teardown(() => cp.kubectlOk(['label', 'namespace', 'pullguard', 'pullguard.io/mode=off']))
  const before = await world.webhookCalls('CREATE')
  const reviews = (await world.pullguard.settledLogs()).filter((l) => l['msg'] === 'decision').length
  for (const ns of ['shop-off', 'pullguard']) {
    const run = await world.apply(restrictedPod(ns, 'unchecked', api('no-such-tag')))
    t.same([run.code, run.stdout, run.stderr], [0, 'pod/unchecked created\n', ''], `${ns}: created unchecked`)
  }
  t.equal(await world.webhookCalls('CREATE'), before, 'no CREATE call to the webhook')
  t.equal(
    (await world.pullguard.settledLogs()).filter((l) => l['msg'] === 'decision').length,
    reviews,
    'no decision made by pullguard',
  )
  // The same pod in a judged namespace is counted: the metric would have seen a call.
  await world.apply(podManifest('shop', 'counted', [api('no-such-tag')]))
  t.equal(await world.webhookCalls('CREATE'), before + 1)
})

/** pullguard's namespace enforces the restricted Pod Security Standard: a pod that meets it. */
function restrictedPod(namespace: string, name: string, image: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        { name: 'c0', image, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
      ],
    },
  }
}
