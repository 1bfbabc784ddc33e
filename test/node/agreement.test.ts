// pullguard's verdict and a real node's pull, side by side. The cases (agreement-cases.ts) come in
// phases, one per kubelet image verification policy (KEP-2535): the kubelet is restarted with it,
// and pullguard with the same flag. In each phase, every case is a pod bound to the node:
// 1. It is created through kubectl with pullguard installed and enforcing: its verdict is what
//    kubectl says (created, created with warnings, or denied with pullguard's message).
// 2. The node pulls every pod pullguard admitted: a pod admitted without warnings must run; a
//    warned one may run or fail, but only as its warning says.
// 3. The phase's namespace is switched off for pullguard (`pullguard.io/mode: off`, which the
//    webhook's namespaceSelector leaves out) and every denied pod is created again: the node must
//    fail to get its image, as pullguard said it would.
// The table of all cases is the README's "Verified on a real node" section: the tier checks it is
// the table it produced (PULLGUARD_WRITE_README=1 writes it instead).
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startNodeWorld } from '../cluster/node-world.js'
import { podOutcomes, type PodOutcome } from '../cluster/pod-outcome.js'
import { WEBHOOK_NAME } from '../cluster/pullguard.js'
import { phases, PRELOADED, prepare, type Case, type Phase } from './agreement-cases.js'

const README = fileURLToPath(new URL('../../../README.md', import.meta.url))
/** A pull here takes well under a second; a loaded CI box, a few. */
const OUTCOME_TIMEOUT_MS = 60_000
/** The API server reads namespace labels through an informer: a new label takes effect a moment later. */
const LABEL_TIMEOUT_MS = 30_000

interface Row {
  c: Case
  phase: Phase
  verdict: 'admitted' | 'admitted with warnings' | 'denied'
  /** pullguard's message: its first reason line, or its warnings. */
  said: string
  outcome?: PodOutcome
}

const world = await startNodeWorld(t, { preload: [PRELOADED] })
const { cp } = world
const { digest } = await prepare(world)
const PHASES = phases(world, digest)

function podOf(c: Case, namespace: string): Record<string, unknown> {
  const volume = c.spec?.['volumes'] === undefined ? {} : { volumeMounts: [{ name: 'data', mountPath: '/data' }] }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: c.pod, namespace },
    spec: {
      nodeName: world.node.name,
      hostNetwork: true,
      // No controller publishes kube-root-ca.crt here, which the projected token volume needs.
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      containers: c.images.map((image, i) => ({
        name: `c${i}`,
        image: world.ref(image),
        ...(c.pullPolicy === undefined ? {} : { imagePullPolicy: c.pullPolicy }),
        ...volume,
      })),
      ...c.spec,
    },
  }
}

/** Hosts and digests replaced by names, so the table stays the same from run to run. */
function stable(text: string): string {
  let out = text
  for (const [name, reg] of Object.entries(world.registries)) out = out.split(reg.host).join(name)
  // An image's digest changes with the pause binary (its build embeds the checkout's path); the
  // digest no image has is the one worth showing.
  return out.replace(/sha256:[0-9a-f]{64}/g, (d) => (/^sha256:0+$/.test(d) ? `sha256:${d.slice(7, 19)}…` : 'sha256:…'))
}

async function create(c: Case, phase: Phase): Promise<Row> {
  const run = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(podOf(c, phase.namespace)) })
  if (run.code === 0) {
    const warnings = run.stderr.split('\n').filter((l) => l.startsWith('Warning:'))
    const said = stable(warnings.join(' '))
    return { c, phase, verdict: warnings.length > 0 ? 'admitted with warnings' : 'admitted', said }
  }
  if (!run.stderr.includes(`admission webhook "${WEBHOOK_NAME}" denied the request`))
    throw new Error(`kubectl create ${c.pod} failed, not by pullguard: ${run.stderr}`)
  // The line after the headline names the image and why.
  const lines = run.stderr.split('\n').map((l) => l.trim())
  const reason = lines.find((l) => l.startsWith('- ')) ?? lines[0] ?? ''
  // The reason only: the fix that follows it is for people, and long.
  return { c, phase, verdict: 'denied', said: stable(reason.replace(/^- /, '').replace(/ Fix:.*$/, '')) }
}

/** Creates the pod with pullguard left out of its namespace; the label takes effect a moment after it is set. */
async function createUnjudged(c: Case, phase: Phase): Promise<void> {
  const deadline = Date.now() + LABEL_TIMEOUT_MS
  for (;;) {
    const run = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(podOf(c, phase.namespace)) })
    if (run.code === 0) return
    if (Date.now() > deadline) throw new Error(`${c.pod} still refused without pullguard: ${run.stderr}`)
    await new Promise((res) => setTimeout(res, 300))
  }
}

/** The node's part of a row: Running, or the failure's reason and the runtime's words. */
function nodeSaid(o: PodOutcome | undefined): string {
  if (o === undefined) return '(not run)'
  if (o.kind === 'running') return 'Running'
  const error = o.message.replace(/^Failed to pull image "[^"]*": /, '')
  return stable(`${o.reason}: ${error}`)
}

/**
 * Admitted: the pod runs. Denied: it fails. Admitted with a warning: it runs, or fails as the warning
 * said it might (the warning names the kubelet's reason): pullguard could not know which.
 */
function agrees(r: Row): boolean {
  const o = r.outcome
  if (o === undefined) return false
  if (r.verdict === 'admitted') return o.kind === 'running'
  if (r.verdict === 'denied') return o.kind === 'failed'
  return o.kind === 'running' || r.said.includes(o.reason)
}

function what(r: Row): string {
  const policy = r.phase.verification?.policy
  return policy === undefined ? r.c.what : `${r.c.what} (imagePullCredentialsVerificationPolicy ${policy})`
}

function table(rows: readonly Row[]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  return [
    '| case | pullguard | the node (kubelet v1.37.2, containerd v2.4.2) | agree |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${cell(what(r))} | ${r.verdict}${r.said === '' ? '' : `: ${cell(r.said)}`} | ${cell(nodeSaid(r.outcome))} | ${agrees(r) ? 'yes' : '**no**'} |`,
    ),
  ].join('\n')
}

const rows = new Map<string, Row>()

for (const [i, phase] of PHASES.entries()) {
  const policy = phase.verification?.policy ?? 'NeverVerifyPreloadedImages (the default)'
  t.test(`${i + 1}. kubelet and pullguard with imagePullCredentialsVerificationPolicy ${policy}`, async (t) => {
    if (i > 0) {
      const started = Date.now()
      await world.setImageVerification(phase.verification)
      t.comment(`kubelet and pullguard restarted in ${Date.now() - started} ms`)
    }
    // The images the cases count on: on the node, and listed where pullguard reads them.
    for (const c of phase.cases.filter((c) => c.present !== undefined && c.present !== 'preload'))
      t.equal(rows.get(c.present as string)?.outcome?.kind, 'running', `${c.pod} needs ${c.present} to have run`)
    await world.nodeLists(phase.cases.filter((c) => c.present !== undefined).flatMap((c) => c.images))

    // At once: each is a kubectl process and a review, independent of the others.
    for (const r of await Promise.all(phase.cases.map((c) => create(c, phase)))) rows.set(r.c.pod, r)
    const judged = phase.cases.map((c) => rows.get(c.pod) as Row)
    for (const r of judged) {
      const verdict = r.verdict === 'denied' ? 'denied' : r.verdict === 'admitted' ? 'admitted' : 'warned'
      t.equal(verdict, r.c.expect, `${r.c.what}: ${r.said}`)
      if (r.c.warns !== undefined) t.match(r.said, r.c.warns, `${r.c.what}: the warning`)
    }
    const admitted = judged.filter((r) => r.verdict !== 'denied')
    const outcomes = await podOutcomes(
      cp,
      phase.namespace,
      admitted.map((r) => r.c.pod),
      OUTCOME_TIMEOUT_MS,
    )
    for (const r of admitted) r.outcome = outcomes.get(r.c.pod)

    const denied = judged.filter((r) => r.verdict === 'denied')
    if (denied.length === 0) return
    await cp.kubectlOk(['label', 'namespace', phase.namespace, 'pullguard.io/mode=off'])
    await Promise.all(denied.map((r) => createUnjudged(r.c, phase)))
    const failed = await podOutcomes(
      cp,
      phase.namespace,
      denied.map((r) => r.c.pod),
      OUTCOME_TIMEOUT_MS,
    )
    for (const r of denied) r.outcome = failed.get(r.c.pod)
  })
}

t.test('the admitted pods ran, and the warned ones failed only as their warnings said', async (t) => {
  for (const r of rows.values()) {
    if (r.verdict === 'denied') continue
    t.match(nodeSaid(r.outcome), new RegExp(`^(${r.c.node})`), what(r))
    if (r.outcome?.kind === 'failed')
      t.ok(r.said.includes(r.outcome.reason), `${what(r)}: the warning names ${r.outcome.reason} (${r.said})`)
  }
})

t.test('every pod pullguard denied, created without pullguard, fails on the node as it said', async (t) => {
  for (const r of rows.values()) {
    if (r.verdict !== 'denied') continue
    t.equal(r.outcome?.kind, 'failed', `${what(r)}: ${nodeSaid(r.outcome)}`)
    t.match(nodeSaid(r.outcome), new RegExp(r.c.node), what(r))
  }
})

t.test("the kubelet's own account: what it recorded of each pull, and what its Node lists", async (t) => {
  const records = world.node.pulledRecords()
  const byName = (spec: string) => {
    const name = world.ref(spec).replace(/:[^:/]+$/, '')
    return records.find((r) => r.credentialMapping[name] !== undefined)?.credentialMapping[name]
  }
  // The private image's copy came with a pod's secret: only pods with that secret (or the same
  // credentials) get it, so cached-never is refused whatever the registry would say.
  const api = byName('private:shop/api:1.0')
  const secrets = (api?.kubernetesSecrets ?? []).map((s) => `${s.namespace}/${s.name}`)
  t.ok(secrets.includes('agree/private-pull'), `shop/api:1.0: pulled with the secret agree/private-pull (${secrets})`)
  t.ok(
    secrets.includes('agree-always/private-pull'),
    "shop/api:1.0: another namespace's secret of the same credentials added when it matched (always-secret)",
  )
  t.notOk(api?.nodePodsAccessible, 'shop/api:1.0: not for every pod')
  t.same(byName('open:team/app:1.0'), { nodePodsAccessible: true }, 'team/app:1.0: pulled anonymously, for every pod')
  // The preloaded copy: the kubelet never pulled it, so it keeps no record of its image ID, and
  // under NeverVerifyPreloadedImages any pod gets it (preloaded-never ran).
  const preloadedId = world.node.preloaded.get(world.ref(PRELOADED))
  t.ok(preloadedId?.startsWith('sha256:'), `the preloaded image's ID: ${preloadedId}`)
  t.notOk(
    records.some((r) => r.imageRef === preloadedId),
    'no pull record of the preloaded image',
  )
  t.notOk(
    records.some((r) => Object.keys(r.credentialMapping).some((name) => name.endsWith('/pause'))),
    'no pull record of the sandbox image (containerd pulled it)',
  )
  const listed = await world.nodeImages()
  t.notOk(listed.includes(world.ref('open:team/app:2.0')), 'status.images lacks the image never pulled')
  t.ok(listed.includes(world.ref(PRELOADED)), 'status.images lists the preloaded image')
})

t.test('the table: every case agrees, and the README shows this table', async (t) => {
  const ordered = PHASES.flatMap((p) => p.cases).map((c) => rows.get(c.pod) as Row)
  const rendered = table(ordered)
  t.comment(`\n${rendered}`)
  for (const r of ordered) t.ok(agrees(r), `${what(r)}: pullguard ${r.verdict}, the node ${nodeSaid(r.outcome)}`)
  const start = '<!-- node-agreement:start -->'
  const end = '<!-- node-agreement:end -->'
  const readme = readFileSync(README, 'utf8')
  const from = readme.indexOf(start)
  const to = readme.indexOf(end)
  t.ok(from >= 0 && to > from, 'README.md has the node-agreement markers')
  const current = readme.slice(from + start.length, to).trim()
  if (process.env['PULLGUARD_WRITE_README'] === '1')
    writeFileSync(README, `${readme.slice(0, from + start.length)}\n${rendered}\n${readme.slice(to)}`)
  else
    t.equal(
      current,
      rendered,
      'README.md "Verified on a real node" is the table this tier produced (PULLGUARD_WRITE_README=1 npm run test:node writes it)',
    )
})
