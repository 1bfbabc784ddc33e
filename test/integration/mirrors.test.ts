// Where the nodes really pull from, with two real distribution registries on 127.0.0.1: an
// upstream, and a mirror that is a real pull-through cache of it (distribution's proxy mode).
// pullguard serve reads containerd's hosts directory or CRI-O's registries.conf and asks the hosts
// the runtime would ask, in its order. Fronts (forwarder.ts, tls-front.ts) add what distribution cannot
// do on demand: another API root, 429s, slowness, plain HTTP, another certificate, mTLS.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { closedPort } from '../helpers/fake-server.js'
import { startFakeKubeApi, loadFixture, makeNamespace } from '../helpers/fake-kube-api.js'
import { startForwarder } from '../helpers/forwarder.js'
import { startPlainFront, startTlsFront } from '../helpers/tls-front.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciManifest } from '../helpers/seed.js'
import { startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const upstream = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => upstream.close())
for (const tag of ['v1', 'v2']) await seedOciManifest(upstream, 'team/app', tag)
await seedOciManifest(upstream, 'team/cached', 'v1')
await seedOciManifest(upstream, 'team/never', 'v1')
const many = ['t1', 't2', 't3', 't4', 't5', 't6']
for (const tag of many) await seedOciManifest(upstream, 'team/many', tag)
const appDigest = (await seedOciManifest(upstream, 'team/digest', 'v1')).digest
const mirror = await startRegistry({ ca, auth: { kind: 'none' }, proxy: upstream })
t.teardown(() => mirror.close())

// A node pulled team/cached:v1 through the mirror once: the cache holds it from now on.
const warm = new Agent({ connect: { ca: ca.caPem } })
const pulled = await request(`${mirror.origin}/v2/team/cached/manifests/v1`, {
  dispatcher: warm,
  headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
})
await pulled.body.dump()
await warm.close()
if (pulled.statusCode !== 200)
  throw new Error(`the mirror did not serve the upstream image (HTTP ${pulled.statusCode})`)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.namespaces.set('team-a', makeNamespace('team-a'))
const counter = countRequests()
t.teardown(() => counter.stop())

const scratch = await mkdtemp(join(tmpdir(), 'pullguard-mirrors-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
let dirs = 0
/** A certs.d directory: { "<dir name>": "<hosts.toml>" }. */
async function hostsDir(files: Record<string, string>): Promise<string> {
  const root = join(scratch, `certs.d-${++dirs}`)
  await mkdir(root)
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(root, name))
    await writeFile(join(root, name, 'hosts.toml'), text)
  }
  return root
}
const escaped = (host: string): string => host.replace(/:(\d+)$/, '_$1_')
const mirrorHost = (h: string, caps = '["pull", "resolve"]', extra = ''): string =>
  `[host."https://${h}"]\n  capabilities = ${caps}\n  ca = ${JSON.stringify(ca.caPath)}\n${extra}`
const server = `server = "https://${upstream.host}"\nca = ${JSON.stringify(ca.caPath)}\n`

async function webhook(args: string[]): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args })
  t.teardown(() => w.close())
  return w
}
let uids = 0
function pod(images: string[]): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `mirror-${++uids}`
  r.request.namespace = 'team-a'
  r.request.object.metadata.namespace = 'team-a'
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }))
  r.request.object.spec.imagePullSecrets = []
  return r
}
/** The review's answer and its decision log line's images. */
async function review(w: RunningWebhook, images: string[]): Promise<{ response: any; logged: any[] }> {
  const r = pod(images)
  const res = await w.post(r)
  if (res.status !== 200) throw new Error(`the review was answered HTTP ${res.status}: ${res.text}`)
  const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
  return { response: res.body.response, logged: line?.images ?? [] }
}

t.test(
  'containerd: a hosts file naming the mirror sends the check there first; the upstream is not asked',
  async (t) => {
    const dir = await hostsDir({ [upstream.host]: `${server}${mirrorHost(mirror.host)}` })
    const w = await webhook(['--containerd-hosts-dir', dir])
    counter.reset()
    const { response, logged } = await review(w, [`${upstream.host}/team/app:v1`])
    t.equal(response.allowed, true)
    t.match(logged, [{ reason: 'Exists', answeredBy: mirror.host, asked: [mirror.host] }])
    t.ok(counter.count(mirror.origin) >= 1, 'the mirror was asked')
    t.equal(counter.count(upstream.origin), 0, 'pullguard sent nothing to the upstream')
    t.match(
      counter.paths(mirror.origin)[0],
      `?ns=${encodeURIComponent(upstream.host)}`,
      'containerd tells the mirror which registry is meant',
    )
  },
)

t.test('a mirror without the resolve capability is skipped for a tag, and asked for a digest', async (t) => {
  const dir = await hostsDir({ [escaped(upstream.host)]: `${server}${mirrorHost(mirror.host, '["pull"]')}` })
  const w = await webhook(['--containerd-hosts-dir', dir])
  counter.reset()
  const byTag = await review(w, [`${upstream.host}/team/app:v2`])
  t.match(byTag.logged, [{ reason: 'Exists', answeredBy: upstream.host, asked: [upstream.host] }])
  t.equal(counter.count(mirror.origin), 0, 'not asked to resolve a tag')
  const byDigest = await review(w, [`${upstream.host}/team/digest@${appDigest}`])
  t.match(byDigest.logged, [{ reason: 'Exists', answeredBy: mirror.host }])
})

t.test("override_path: the host's API root as written, not /v2 under it", async (t) => {
  // A proxy that serves the mirror's /v2/ under /api/docker/hub/ (as Artifactory or Nexus do).
  const front = await startForwarder(ca, mirror, (p) =>
    p.startsWith('/api/docker/hub/') ? `/v2/${p.slice('/api/docker/hub/'.length)}` : undefined,
  )
  t.teardown(() => front.close())
  const entry = (override: boolean): string =>
    `[host."https://${front.host}/api/docker/hub"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(ca.caPath)}\n${override ? '  override_path = true\n' : ''}`
  const withOverride = await webhook([
    '--containerd-hosts-dir',
    await hostsDir({ [upstream.host]: `${server}${entry(true)}` }),
  ])
  const on = await review(withOverride, [`${upstream.host}/team/app:v1`])
  t.match(on.logged, [{ reason: 'Exists', answeredBy: `${front.host}/api/docker/hub` }])
  t.match(front.seen[0]?.url, /^\/api\/docker\/hub\/team\/app\/manifests\/v1\?ns=/)
  front.reset()
  const without = await webhook([
    '--containerd-hosts-dir',
    await hostsDir({ [upstream.host]: `${server}${entry(false)}` }),
  ])
  const off = await review(without, [`${upstream.host}/team/app:v1`])
  t.match(front.seen[0]?.url, /^\/api\/docker\/hub\/v2\/team\/app\/manifests\/v1/, 'without it, /v2 is appended')
  t.match(
    off.logged,
    [{ reason: 'Exists', answeredBy: upstream.host, asked: [`${front.host}/api/docker/hub/v2`, upstream.host] }],
    'the 404 there moves on to the next host',
  )
})

t.test('a mirror that is down: the next host answers, as containerd falls through', async (t) => {
  const down = `127.0.0.1:${await closedPort()}`
  const dir = await hostsDir({ [upstream.host]: `${server}${mirrorHost(down)}${mirrorHost(mirror.host)}` })
  const w = await webhook(['--containerd-hosts-dir', dir])
  const { response, logged } = await review(w, [`${upstream.host}/team/app:v1`])
  t.equal(response.allowed, true)
  t.match(logged, [{ reason: 'Exists', answeredBy: mirror.host, asked: [down, mirror.host] }])
})

t.test('CRI-O registries.conf: a prefix rewrite, and a blocked registry denied without a request', async (t) => {
  const file = join(scratch, 'registries.conf')
  await writeFile(
    file,
    [
      '[[registry]]',
      'prefix = "registry.example.com/team"',
      `location = "${upstream.host}/team"`,
      '[[registry]]',
      `prefix = "${upstream.host}/blocked"`,
      'blocked = true',
    ].join('\n'),
  )
  const w = await webhook(['--registries-conf', file])
  const rewritten = await review(w, ['registry.example.com/team/app:v1'])
  t.equal(
    rewritten.response.allowed,
    true,
    'registry.example.com does not exist: the rewrite sent the check to the upstream',
  )
  t.match(rewritten.logged, [
    { reason: 'Exists', answeredBy: `${upstream.host}/team/app`, asked: [`${upstream.host}/team/app`] },
  ])
  const missing = await review(w, ['registry.example.com/team/app:v404'])
  t.equal(missing.response.allowed, false)
  t.match(
    missing.response.status.message,
    /tag "v404" does not exist in registry\.example\.com\/team\/app \(asked 127\.0\.0\.1:\d+/,
  )
  counter.reset()
  const blocked = await review(w, [`${upstream.host}/blocked/app:v1`])
  t.equal(blocked.response.allowed, false)
  t.match(
    blocked.response.status.message,
    `${file} has a [[registry]] with prefix "${upstream.host}/blocked" and blocked = true`,
  )
  t.match(blocked.logged, [{ reason: 'RegistryBlocked', blockedBy: { file, prefix: `${upstream.host}/blocked` } }])
  t.equal(counter.count(upstream.origin), 0, 'no request for a blocked image')
})

t.test(
  'the per-registry cap: a slow registry never has more requests in flight than --registry-concurrency',
  async (t) => {
    const slow = await startForwarder(ca, upstream)
    t.teardown(() => slow.close())
    slow.delayMs = 300
    const images = many.map((tag) => `${slow.host}/team/many:${tag}`)
    const capped = await webhook(['--registry-concurrency', '2'])
    const { response } = await review(capped, images)
    t.equal(response.allowed, true)
    t.equal(slow.maxConcurrent(), 2, 'two at a time, never more')
    const metrics = await capped.get('/metrics')
    t.match(metrics.text, /^pullguard_registry_concurrency_limit 2$/m)
    slow.reset()
    const uncapped = await webhook([])
    // The same images: cached in the other webhook's memory only, so this one asks again, 8 at a time.
    await review(uncapped, images)
    t.ok(slow.maxConcurrent() > 2, `without the flag more go at once (saw ${slow.maxConcurrent()})`)
  },
)

t.test('a 429 pauses that host: no request until Retry-After has passed; a mirror paused falls through', async (t) => {
  const limited = await startForwarder(ca, upstream)
  t.teardown(() => limited.close())
  let limiting = true
  limited.intercept = (req) =>
    limiting && req.url?.includes('/manifests/')
      ? {
          status: 429,
          headers: { 'retry-after': '2', 'content-type': 'application/json' },
          body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
        }
      : undefined
  const w = await webhook([])
  const first = await review(w, [`${limited.host}/team/app:v1`])
  t.equal(first.response.allowed, true, '--on-registry-error allow')
  t.match(first.logged, [{ reason: 'RateLimited' }])
  const asked = limited.seen.length
  t.ok(asked >= 1)
  const during = await review(w, [`${limited.host}/team/app:v2`])
  t.match(during.logged, [{ reason: 'RateLimited' }])
  t.match(during.response.warnings?.join('\n'), /is rate limiting \(retry after [12]s\)/)
  t.equal(limited.seen.length, asked, 'another image on the paused host: no request')
  t.match(
    (await w.get('/metrics')).text,
    new RegExp(
      `pullguard_registry_pause_remaining_seconds\\{registry="${limited.host.replace(/\./g, '\\.')}"\\} [0-9.]+`,
    ),
  )
  limiting = false
  await new Promise((r) => setTimeout(r, 2_100))
  const after = await review(w, [`${limited.host}/team/app:v2`])
  t.match(after.logged, [{ reason: 'Exists' }])
  t.ok(limited.seen.length > asked, 'asked again once the pause is over')

  // As a mirror: its 429 moves the pull on to the next host, and while paused it is passed over.
  limiting = true
  const dir = await hostsDir({ [upstream.host]: `${server}${mirrorHost(limited.host)}` })
  const m = await webhook(['--containerd-hosts-dir', dir])
  const viaUpstream = await review(m, [`${upstream.host}/team/app:v1`])
  t.match(viaUpstream.logged, [{ reason: 'Exists', answeredBy: upstream.host, asked: [limited.host, upstream.host] }])
  const before = limited.seen.length
  const next = await review(m, [`${upstream.host}/team/app:v2`])
  t.match(next.logged, [{ reason: 'Exists', answeredBy: upstream.host, asked: [upstream.host] }])
  t.equal(limited.seen.length, before, 'the paused mirror was not asked')
})

t.test('reload: a hosts file written after start is used, without a restart', async (t) => {
  const dir = await hostsDir({})
  const w = await webhook(['--containerd-hosts-dir', dir])
  const before = await review(w, [`${upstream.host}/team/app:v1`])
  t.match(before.logged, [{ answeredBy: upstream.host }])
  await mkdir(join(dir, upstream.host))
  await writeFile(join(dir, upstream.host, 'hosts.toml'), `${server}${mirrorHost(mirror.host)}`)
  const deadline = Date.now() + 20_000
  let answeredBy: string | undefined
  while (Date.now() < deadline) {
    answeredBy = (await review(w, [`${upstream.host}/team/app:v1`])).logged[0]?.answeredBy
    if (answeredBy === mirror.host) break
    await new Promise((r) => setTimeout(r, 500))
  }
  t.equal(answeredBy, mirror.host, 'the cached upstream answer was not served under the new hosts')
  t.ok(w.logs.some((l) => l.includes('registry mirrors configuration reloaded')))
})

t.test(
  'containerd: a CA that cannot load fails every host of its registry; the image is denied naming the file, nothing is asked',
  async (t) => {
    const dir = await hostsDir({
      [upstream.host]: `server = "https://${upstream.host}"\nca = "missing.crt"\n${mirrorHost(mirror.host)}`,
    })
    const hostsToml = join(dir, upstream.host, 'hosts.toml')
    const w = await webhook(['--containerd-hosts-dir', dir])
    counter.reset()
    const { response, logged } = await review(w, [`${upstream.host}/team/app:v1`])
    t.equal(response.allowed, false, 'the mirror has it and its CA loads, but containerd configures no host at all')
    t.match(response.status.message, hostsToml)
    t.match(response.status.message, `unable to read CA cert "${join(dir, upstream.host, 'missing.crt')}": ENOENT`)
    t.match(
      response.status.message,
      `containerd cannot configure the hosts of ${upstream.host} from ${hostsToml} (unable to read CA cert`,
    )
    t.match(
      response.status.message,
      `Fix: have the cluster's operators fix ${hostsToml} (each ca and client file it names must be there and load)`,
    )
    t.match(logged, [
      {
        reason: 'RegistryBlocked',
        blockedBy: { file: hostsToml, prefix: upstream.host, problem: /unable to read CA cert/ },
      },
    ])
    t.equal(counter.count(mirror.origin), 0, 'the mirror was not asked')
    t.equal(counter.count(upstream.origin), 0, 'nor the server')
    t.ok(
      w.logs.some((l) => l.includes(`containerd fails every pull from ${upstream.host}`)),
      'said at start',
    )
  },
)

t.test(
  'containerd: an http:// host with TLS settings is asked over HTTPS, then over HTTP once it answers in plain HTTP',
  async (t) => {
    const plain = await startPlainFront(mirror)
    t.teardown(() => plain.close())
    const dir = await hostsDir({
      [upstream.host]: `${server}[host."http://${plain.host}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
    })
    const w = await webhook(['--containerd-hosts-dir', dir])
    counter.reset()
    const { response, logged } = await review(w, [`${upstream.host}/team/app:v1`])
    t.equal(response.allowed, true)
    t.match(logged, [{ reason: 'Exists', answeredBy: plain.host, asked: [plain.host] }])
    t.ok(counter.count(`https://${plain.host}`) >= 1, 'HTTPS first')
    t.ok(
      counter.count(`http://${plain.host}`) >= 1,
      'then plain HTTP: the registry answered the handshake with HTTP/1.1 400',
    )
    t.equal(counter.count(upstream.origin), 0)
  },
)

t.test(
  "containerd: a certificate the host's CA does not verify is that host's error, never a reason for plain HTTP",
  async (t) => {
    const otherCa = await createTestCA('unknown CA')
    t.teardown(() => otherCa.close())
    const front = await startTlsFront({ cert: await otherCa.issue('front', { ips: ['127.0.0.1'] }), target: mirror })
    t.teardown(() => front.close())
    const dir = await hostsDir({
      [upstream.host]: `${server}[host."http://${front.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(ca.caPath)}\n`,
    })
    const w = await webhook(['--containerd-hosts-dir', dir])
    counter.reset()
    const { logged } = await review(w, [`${upstream.host}/team/app:v1`])
    t.match(logged, [{ reason: 'Exists', answeredBy: upstream.host, asked: [front.host, upstream.host] }])
    t.equal(counter.count(`http://${front.host}`), 0, 'no plain HTTP after a certificate error')
  },
)

t.test(
  'containerd: a mirror that requires a client certificate answers with `client`, and fails without',
  async (t) => {
    const clientCa = await createTestCA('node client CA')
    t.teardown(() => clientCa.close())
    const node = await clientCa.issue('node', {})
    const mtls = await startTlsFront({
      cert: await ca.issue('mtls mirror', { ips: ['127.0.0.1'] }),
      target: mirror,
      clientCaPem: clientCa.caPem,
    })
    t.teardown(() => mtls.close())
    const combined = join(scratch, 'node-client.pem')
    await writeFile(combined, node.certPem + node.keyPem)
    const entry = (client: string): string =>
      `[host."https://${mtls.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(ca.caPath)}\n${client}`
    for (const [name, client] of [
      ['a [cert, key] pair', `  client = [[${JSON.stringify(node.certPath)}, ${JSON.stringify(node.keyPath)}]]\n`],
      ['one file holding both', `  client = ${JSON.stringify(combined)}\n`],
    ] as const) {
      const w = await webhook([
        '--containerd-hosts-dir',
        await hostsDir({ [upstream.host]: `${server}${entry(client)}` }),
      ])
      const { logged } = await review(w, [`${upstream.host}/team/app:v1`])
      t.match(logged, [{ reason: 'Exists', answeredBy: mtls.host, asked: [mtls.host] }], name)
    }
    const failures = mtls.handshakeFailures()
    const without = await webhook([
      '--containerd-hosts-dir',
      await hostsDir({ [upstream.host]: `${server}${entry('')}` }),
    ])
    const { logged } = await review(without, [`${upstream.host}/team/app:v1`])
    t.match(
      logged,
      [{ reason: 'Exists', answeredBy: upstream.host, asked: [mtls.host, upstream.host] }],
      'without it: the next host',
    )
    t.ok(mtls.handshakeFailures() > failures, 'the mirror refused the handshake')
  },
)

t.test(
  'containerd: dial_timeout is per host; a value Go cannot parse makes the whole hosts.toml unusable',
  async (t) => {
    const timed = await webhook([
      '--containerd-hosts-dir',
      await hostsDir({
        [upstream.host]: `${server}${mirrorHost(mirror.host, '["pull", "resolve"]', '  dial_timeout = "2s"\n')}`,
      }),
    ])
    t.match((await review(timed, [`${upstream.host}/team/app:v1`])).logged, [{ answeredBy: mirror.host }])
    const dir = await hostsDir({
      [upstream.host]: `${server}${mirrorHost(mirror.host, '["pull", "resolve"]', '  dial_timeout = "soon"\n')}`,
    })
    const broken = await webhook(['--containerd-hosts-dir', dir])
    const { logged } = await review(broken, [`${upstream.host}/team/app:v1`])
    t.match(
      logged,
      [{ reason: 'Exists', answeredBy: upstream.host, asked: [upstream.host] }],
      'as containerd: the registry itself',
    )
    t.ok(
      broken.logs.some((l) => l.includes(join(dir, upstream.host, 'hosts.toml')) && l.includes('dial_timeout')),
      'the log names the file and the key',
    )
  },
)

t.test('the upstream down: only the mirror can serve, and only a hosts file that names it says so', async (t) => {
  const named = await webhook([
    '--containerd-hosts-dir',
    await hostsDir({ [upstream.host]: `${server}${mirrorHost(mirror.host)}` }),
    '--on-registry-error',
    'deny',
  ])
  const plain = await webhook(['--on-registry-error', 'deny'])
  await upstream.close()
  const cached = `${upstream.host}/team/cached:v1`
  const viaMirror = await review(named, [cached])
  t.equal(viaMirror.response.allowed, true, 'the mirror has it: the nodes will pull it')
  t.match(viaMirror.logged, [{ reason: 'Exists', answeredBy: mirror.host }])
  const direct = await review(plain, [cached])
  t.equal(direct.response.allowed, false, 'without the hosts file: unverified, and --on-registry-error deny')
  t.match(direct.logged, [{ reason: 'RegistryUnreachable' }])
  t.match(direct.response.status.message, `${upstream.host} is unreachable`)
  // Never cached by the mirror, and the upstream is gone: the mirror's 404 is not the last word.
  const never = await review(named, [`${upstream.host}/team/never:v1`])
  t.match(never.logged, [{ reason: 'RegistryUnreachable', asked: [mirror.host, upstream.host] }])
  t.match(
    never.response.status.message,
    /could not be verified: no host the nodes pull 127\.0\.0\.1:\d+ from answered \(127\.0\.0\.1:\d+: [A-Za-z]+, 127\.0\.0\.1:\d+: refused\)/,
  )
})
