// Mirrors through a real kube-apiserver, driven with kubectl: the `open` registry is the upstream,
// and a real pull-through cache of it (distribution's proxy mode) is the mirror the nodes'
// containerd names in its hosts directory. With the upstream gone, only a pullguard that reads
// that directory knows the nodes will still pull; and a registry CRI-O's registries.conf blocks
// is refused at `kubectl create`, naming the rule.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { podManifest, startWorld } from '../cluster/e2e.js'
import { startRegistry } from '../helpers/registry.js'

const world = await startWorld(t, { images: ['open:team/api:1.0', 'open:team/api:1.1'] })
const { open } = world
await world.namespace('shop')
const mirror = await startRegistry({ ca: world.registryCa, auth: { kind: 'none' }, proxy: open })
t.teardown(() => mirror.close())
// A node pulled team/api:1.0 through the mirror: it is in the cache from now on.
const agent = new Agent({ connect: { ca: world.registryCa.caPem } })
const pulled = await request(`${mirror.origin}/v2/team/api/manifests/1.0`, {
  dispatcher: agent,
  headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
})
await pulled.body.dump()
await agent.close()
if (pulled.statusCode !== 200) throw new Error(`the mirror did not serve team/api:1.0 (HTTP ${pulled.statusCode})`)

const dir = await mkdtemp(join(tmpdir(), 'pullguard-e2e-mirrors-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const hostsDir = join(dir, 'certs.d')
await mkdir(join(hostsDir, open.host), { recursive: true })
const ca = JSON.stringify(world.registryCa.caPath)
await writeFile(
  join(hostsDir, open.host, 'hosts.toml'),
  `server = "https://${open.host}"\nca = ${ca}\n\n[host."https://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${ca}\n`,
)

t.test("containerd's hosts directory: the mirror answers, and says so in the decision log", async (t) => {
  await world.restartPullguard(['--containerd-hosts-dir', hostsDir, '--on-registry-error', 'deny'])
  const run = await world.apply(podManifest('shop', 'via-mirror', [`${open.host}/team/api:1.1`]), 'create')
  t.same([run.code, run.stdout], [0, 'pod/via-mirror created\n'], run.stderr)
  const line = (await world.pullguard.settledLogs()).find((l) => l['msg'] === 'decision' && l['name'] === 'via-mirror')
  t.match(line, { verdict: 'allowed', images: [{ reason: 'Exists', answeredBy: mirror.host, asked: [mirror.host] }] })
})

t.test(
  'the upstream down: allowed when the hosts directory names the mirror that has it, refused without it',
  async (t) => {
    await open.close()
    const image = `${open.host}/team/api:1.0`
    const allowed = await world.apply(podManifest('shop', 'cached', [image]), 'create')
    t.same([allowed.code, allowed.stdout], [0, 'pod/cached created\n'], allowed.stderr)
    await world.restartPullguard(['--on-registry-error', 'deny'])
    const refused = await world.apply(podManifest('shop', 'upstream-only', [image]), 'create')
    t.equal(refused.code, 1)
    t.match(refused.stderr, 'pullguard refused pod shop/upstream-only')
    t.match(refused.stderr, `${open.host} is unreachable`)
  },
)

t.test(
  "CRI-O's registries.conf: a blocked registry is refused with the file's rule, and a rewrite sends the check to the mirror",
  async (t) => {
    const conf = join(dir, 'registries.conf')
    await writeFile(
      conf,
      [
        '[[registry]]',
        'prefix = "blocked.example.com"',
        'blocked = true',
        '',
        '[[registry]]',
        'prefix = "hub.example.com/team"',
        `location = "${mirror.host}/team"`,
      ].join('\n'),
    )
    await world.restartPullguard(['--registries-conf', conf, '--on-registry-error', 'deny'])
    const blocked = await world.apply(podManifest('shop', 'blocked', ['blocked.example.com/team/api:1.0']), 'create')
    t.equal(blocked.code, 1)
    t.match(
      blocked.stderr,
      `blocked.example.com/team/api is blocked on the nodes: ${conf} has a [[registry]] with prefix "blocked.example.com" and blocked = true`,
    )
    t.match(blocked.stderr, 'use an image from a registry the nodes allow')
    const rewritten = await world.apply(podManifest('shop', 'rewritten', ['hub.example.com/team/api:1.0']), 'create')
    t.same([rewritten.code, rewritten.stdout], [0, 'pod/rewritten created\n'], rewritten.stderr)
    await world.restartPullguard()
  },
)

t.test(
  'CRI-O nodes with an OpenShift-style signature policy (allowed registries only) and two search registries: kubectl apply is refused with the rule named',
  async (t) => {
    const conf = join(dir, 'crio-registries.conf')
    await writeFile(conf, `unqualified-search-registries = ["${mirror.host}", "${world.private.host}"]\n`)
    const policy = join(dir, 'policy.json')
    // What OpenShift writes for an allowedRegistries list: everything rejected but what is named.
    await writeFile(
      policy,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { [mirror.host]: [{ type: 'insecureAcceptAnything' }] } },
      }),
    )
    await world.restartPullguard(['--registries-conf', conf, '--signature-policy', policy])
    const refused = await world.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'elsewhere', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'elsewhere' } },
        template: {
          metadata: { labels: { app: 'elsewhere' } },
          spec: { containers: [{ name: 'api', image: `${world.private.host}/team/api:1.0` }] },
        },
      },
    })
    t.equal(refused.code, 1)
    t.match(refused.stderr, 'pullguard refused deployment shop/elsewhere')
    t.match(
      refused.stderr,
      `${world.private.host}/team/api:1.0 is refused by the nodes' signature policy: ${policy} (its default) requires "reject"`,
    )
    t.match(refused.stderr, 'CRI-O reports SignatureValidationFailed')
    const allowed = await world.apply(
      podManifest('shop', 'allowed-registry', [`${mirror.host}/team/api:1.0`]),
      'create',
    )
    t.same([allowed.code, allowed.stdout], [0, 'pod/allowed-registry created\n'], allowed.stderr)
    const short = await world.apply(podManifest('shop', 'short-name', ['team/api:1.0']), 'create')
    t.equal(short.code, 1)
    t.match(short.stderr, 'short name mode is enforcing, but image name team/api:1.0 returns ambiguous list')
    const line = (await world.pullguard.settledLogs()).find(
      (l) => l['msg'] === 'decision' && l['name'] === 'short-name',
    )
    t.match(line, { verdict: 'denied', images: [{ reason: 'ShortNameAmbiguous' }] })
    await world.restartPullguard()
  },
)
