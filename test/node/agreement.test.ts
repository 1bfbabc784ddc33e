// pullguard's verdict and a real node's pull, side by side. Each case is a pod bound to the node:
// 1. It is created through kubectl with pullguard installed and enforcing: its verdict is what
//    kubectl says (created, created with warnings, or denied with pullguard's message).
// 2. The node pulls every pod pullguard admitted; each must run.
// 3. The webhook is removed and every denied pod is created again: the node must fail to get its
//    image, as pullguard said it would.
// Some cases need the node to have pulled an image first (the cache cases): they go after the others.
// The table of all cases is the README's "Verified on a real node" section: the tier checks it is
// the table it produced (PULLGUARD_WRITE_README=1 writes it instead).
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { podOutcomes, type PodOutcome } from '../cluster/pod-outcome.js'
import { PLUGIN_USER, PROVIDER, PULLER, startNodeWorld, type NodeWorld } from '../cluster/node-world.js'
import { WEBHOOK_NAME } from '../cluster/pullguard.js'

const README = fileURLToPath(new URL('../../../README.md', import.meta.url))
const NS = 'agree'
/** A pull here takes well under a second; a loaded CI box, a few. */
const OUTCOME_TIMEOUT_MS = 60_000

interface Case {
  /** The row's words. */
  what: string
  pod: string
  /** Container images as `registry:repo:tag` (or `…@digest`), and the pod spec beyond them. */
  images: string[]
  spec?: Record<string, unknown>
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never'
  /** Created only once this case's pod runs (its image is then on the node). */
  after?: string
  expect: 'admitted' | 'denied'
  /** What the node does: Running, or a phrase of its failure. */
  node: 'Running' | string
}

interface Row {
  c: Case
  verdict: 'admitted' | 'admitted with warnings' | 'denied'
  /** pullguard's message, its first reason line. */
  said: string
  outcome?: PodOutcome
}

const world = await startNodeWorld(t)
const { cp } = world
const { digest } = await prepare(world)

const CASES: Case[] = [
  { what: 'public image', pod: 'public', images: ['open:team/app:1.0'], expect: 'admitted', node: 'Running' },
  { what: 'missing tag', pod: 'missing-tag', images: ['open:team/app:9.9'], expect: 'denied', node: 'not found' },
  {
    what: 'missing repository',
    pod: 'missing-repo',
    images: ['open:team/nothing:1.0'],
    expect: 'denied',
    node: 'not found',
  },
  {
    what: 'private, no pull secret',
    pod: 'private-none',
    images: ['private:shop/locked:1.0'],
    expect: 'denied',
    node: 'no basic auth credentials',
  },
  {
    what: 'private, its pull secret',
    pod: 'private-secret',
    images: ['private:shop/api:1.0'],
    spec: { imagePullSecrets: [{ name: 'private-pull' }] },
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'private, a pull secret with a wrong password',
    pod: 'private-wrong',
    images: ['private:shop/locked:1.0'],
    spec: { imagePullSecrets: [{ name: 'private-wrong' }] },
    expect: 'denied',
    node: '401 Unauthorized',
  },
  {
    what: 'private, the right password in a secret of the wrong type (Opaque)',
    pod: 'private-opaque',
    images: ['private:shop/locked:1.0'],
    spec: { imagePullSecrets: [{ name: 'private-opaque' }] },
    expect: 'denied',
    node: 'no basic auth credentials',
  },
  {
    what: "the node's own docker config (the kubelet's config.json)",
    pod: 'node-config',
    images: ['nodeCreds:node/app:1.0'],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: `a credential provider plugin (${PROVIDER}), configured alike on the kubelet and pullguard`,
    pod: 'plugin',
    images: ['plugin:cloud/app:1.0'],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a pod secret that fails (wrong password) before the plugin that works',
    pod: 'plugin-after-secret',
    images: ['plugin:cloud/other:1.0'],
    spec: { imagePullSecrets: [{ name: 'plugin-wrong' }] },
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a hosts.toml mirror (pull, resolve) holding an image its upstream lacks',
    pod: 'mirror-resolve',
    images: ['upstreamResolve:mirrored/app:1.0'],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a hosts.toml mirror without resolve holding an image its upstream lacks',
    pod: 'mirror-pull-only',
    images: ['upstreamPullOnly:mirrored/app:1.0'],
    expect: 'denied',
    node: 'not found',
  },
  {
    what: 'an index for linux/amd64 and linux/arm64',
    pod: 'multi-platform',
    images: ['open:multi/app:1.0'],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'an index with only linux/arm64 (the node is linux/amd64)',
    pod: 'arm64-index',
    images: ['open:arm/index:1.0'],
    expect: 'denied',
    node: 'no match for platform',
  },
  {
    // containerd matches platforms only among an index's entries: a lone manifest is pulled whatever
    // its config says (here its binary is the node's own, so it even runs), and pullguard agrees.
    what: 'a single linux/arm64 manifest, no index (the node is linux/amd64)',
    pod: 'arm64-manifest',
    images: ['open:arm/single:1.0'],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a digest reference',
    pod: 'digest',
    images: [`open:team/digest@${digest}`],
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a digest the repository does not have',
    pod: 'digest-missing',
    images: [`open:team/digest@sha256:${'0'.repeat(64)}`],
    expect: 'denied',
    node: 'not found',
  },
  {
    what: 'an image volume',
    pod: 'image-volume',
    images: ['open:vol/runner:1.0'],
    spec: volumeSpec('open:vol/data:1.0'),
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'an image volume whose tag is missing',
    pod: 'image-volume-missing',
    images: ['open:vol/runner:1.0'],
    spec: volumeSpec('open:vol/data:9.9'),
    expect: 'denied',
    node: 'not found',
  },
  {
    what: '`imagePullPolicy: Never`, the image already on the node',
    pod: 'never-present',
    images: ['open:team/app:1.0'],
    pullPolicy: 'Never',
    after: 'public',
    expect: 'admitted',
    node: 'Running',
  },
  {
    what: 'a private image on the node (pulled with a secret), `IfNotPresent` without one',
    pod: 'cached-if-not-present',
    images: ['private:shop/api:1.0'],
    pullPolicy: 'IfNotPresent',
    after: 'private-secret',
    expect: 'denied',
    node: 'no basic auth credentials',
  },
  {
    what: 'a private image on the node (pulled with a secret), `Never` without one',
    pod: 'cached-never',
    images: ['private:shop/api:1.0'],
    pullPolicy: 'Never',
    after: 'private-secret',
    expect: 'denied',
    node: 'ErrImageNeverPull',
  },
]

/** Pushes the cases' images and makes the namespace and its secrets; the digest case's digest. */
async function prepare(w: NodeWorld): Promise<{ digest: string }> {
  const amd64 = { os: 'linux', architecture: 'amd64' }
  const arm64 = { os: 'linux', architecture: 'arm64' }
  for (const spec of [
    'open:team/app:1.0',
    'open:vol/runner:1.0',
    'open:vol/data:1.0',
    'private:shop/api:1.0',
    'private:shop/locked:1.0',
    'nodeCreds:node/app:1.0',
    'plugin:cloud/app:1.0',
    'plugin:cloud/other:1.0',
    'mirror:mirrored/app:1.0',
  ])
    await w.push(spec)
  await w.push('open:multi/app:1.0', { platforms: [amd64, arm64] })
  await w.push('open:arm/index:1.0', { platforms: [arm64] })
  await w.push('open:arm/single:1.0', { platform: arm64 })
  const pinned = await w.push('open:team/digest:1.0')
  await w.namespace(NS)
  const dockerSecret = (name: string, host: string, username: string, password: string): Promise<string> =>
    w.cp.kubectlOk([
      'create',
      'secret',
      'docker-registry',
      name,
      '-n',
      NS,
      `--docker-server=${host}`,
      `--docker-username=${username}`,
      `--docker-password=${password}`,
    ])
  await dockerSecret('private-pull', w.registries.private.host, PULLER.username, PULLER.password)
  await dockerSecret('private-wrong', w.registries.private.host, PULLER.username, 'not-the-password')
  await dockerSecret('plugin-wrong', w.registries.plugin.host, PLUGIN_USER.username, 'not-the-password')
  // The right credentials, in a secret the kubelet does not read for pulls: it is not of a docker type.
  const config = JSON.stringify({
    auths: {
      [w.registries.private.host]: { auth: Buffer.from(`${PULLER.username}:${PULLER.password}`).toString('base64') },
    },
  })
  await w.cp.kubectlOk(['create', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'private-opaque', namespace: NS },
      type: 'Opaque',
      data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
    }),
  })
  return { digest: pinned.digest }
}

function volumeSpec(image: string): Record<string, unknown> {
  return { volumes: [{ name: 'data', image: { reference: world.ref(image), pullPolicy: 'IfNotPresent' } }] }
}

function podOf(c: Case): Record<string, unknown> {
  const volume = c.spec?.['volumes'] === undefined ? {} : { volumeMounts: [{ name: 'data', mountPath: '/data' }] }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: c.pod, namespace: NS },
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

async function create(c: Case): Promise<Row> {
  const run = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(podOf(c)) })
  if (run.code === 0) {
    const warned = run.stderr.includes('Warning:')
    const said = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('Warning:'))
      .join(' ')
    return { c, verdict: warned ? 'admitted with warnings' : 'admitted', said: stable(said) }
  }
  if (!run.stderr.includes(`admission webhook "${WEBHOOK_NAME}" denied the request`))
    throw new Error(`kubectl create ${c.pod} failed, not by pullguard: ${run.stderr}`)
  // The line after the headline names the image and why.
  const lines = run.stderr.split('\n').map((l) => l.trim())
  const reason = lines.find((l) => l.startsWith('- ')) ?? lines[0] ?? ''
  // The reason only: the fix that follows it is for people, and long.
  return { c, verdict: 'denied', said: stable(reason.replace(/^- /, '').replace(/ Fix:.*$/, '')) }
}

/** The node's part of a row: Running, or the failure's reason and the runtime's words. */
function nodeSaid(o: PodOutcome | undefined): string {
  if (o === undefined) return '(not run)'
  if (o.kind === 'running') return 'Running'
  const error = o.message.replace(/^Failed to pull image "[^"]*": /, '')
  return stable(`${o.reason}: ${error}`)
}

function agrees(r: Row): boolean {
  if (r.outcome === undefined) return false
  return r.verdict === 'admitted' ? r.outcome.kind === 'running' : r.outcome.kind === 'failed'
}

function table(rows: readonly Row[]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  return [
    '| case | pullguard | the node (kubelet v1.37.2, containerd v2.4.2) | agree |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${cell(r.c.what)} | ${r.verdict}${r.said === '' ? '' : `: ${cell(r.said)}`} | ${cell(nodeSaid(r.outcome))} | ${agrees(r) ? 'yes' : '**no**'} |`,
    ),
  ].join('\n')
}

const rows = new Map<string, Row>()

t.test('1. with pullguard enforcing, the verdicts', async (t) => {
  const first = CASES.filter((c) => c.after === undefined)
  for (const c of first) rows.set(c.pod, await create(c))
  const admitted = first.filter((c) => rows.get(c.pod)?.verdict !== 'denied').map((c) => c.pod)
  const outcomes = await podOutcomes(cp, NS, admitted, OUTCOME_TIMEOUT_MS)
  for (const [pod, o] of outcomes) (rows.get(pod) as Row).outcome = o
  // The cases that need an image on the node, now that it is there.
  const later = CASES.filter((c) => c.after !== undefined)
  for (const c of later) {
    t.equal(outcomes.get(c.after as string)?.kind, 'running', `${c.pod} needs ${c.after} running first`)
    rows.set(c.pod, await create(c))
  }
  const laterAdmitted = later.filter((c) => rows.get(c.pod)?.verdict !== 'denied').map((c) => c.pod)
  for (const [pod, o] of await podOutcomes(cp, NS, laterAdmitted, OUTCOME_TIMEOUT_MS))
    (rows.get(pod) as Row).outcome = o
  for (const c of CASES)
    t.equal(
      rows.get(c.pod)?.verdict.startsWith('admitted') ? 'admitted' : 'denied',
      c.expect,
      `${c.what}: ${rows.get(c.pod)?.said}`,
    )
})

t.test('2. every pod pullguard admitted runs on the node', async (t) => {
  for (const r of rows.values()) {
    if (r.verdict === 'denied') continue
    t.equal(r.verdict, 'admitted', `${r.c.what}: admitted without warnings (${r.said})`)
    t.equal(nodeSaid(r.outcome), r.c.node, r.c.what)
  }
})

t.test('3. every pod pullguard denied, created with the webhook removed, fails on the node as it said', async (t) => {
  const name = (await cp.kubectlOk(['get', 'validatingwebhookconfigurations', '-o', 'name'])).trim().split('\n')
  t.ok(name.length > 0, 'the webhook configuration is installed')
  await cp.kubectlOk(['delete', ...name])
  const denied = [...rows.values()].filter((r) => r.verdict === 'denied')
  for (const r of denied) {
    // The API server drops the webhook a moment after the object is gone (its informer).
    const deadline = Date.now() + 30_000
    for (;;) {
      const run = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(podOf(r.c)) })
      if (run.code === 0) break
      if (Date.now() > deadline) throw new Error(`${r.c.pod} still refused without the webhook: ${run.stderr}`)
      await new Promise((res) => setTimeout(res, 300))
    }
  }
  const outcomes = await podOutcomes(
    cp,
    NS,
    denied.map((r) => r.c.pod),
    OUTCOME_TIMEOUT_MS,
  )
  for (const r of denied) {
    r.outcome = outcomes.get(r.c.pod)
    t.equal(r.outcome?.kind, 'failed', `${r.c.what}: ${nodeSaid(r.outcome)}`)
    t.match(nodeSaid(r.outcome), r.c.node, r.c.what)
  }
})

t.test('4. the table: every case agrees, and the README shows this table', async (t) => {
  const ordered = CASES.map((c) => rows.get(c.pod) as Row)
  const rendered = table(ordered)
  t.comment(`\n${rendered}`)
  for (const r of ordered) t.ok(agrees(r), `${r.c.what}: pullguard ${r.verdict}, the node ${nodeSaid(r.outcome)}`)
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
