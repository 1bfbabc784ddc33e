// Short names on CRI-O nodes, with real distribution registries on 127.0.0.1 as the search
// registries: enforcing mode refusing an ambiguous name without a request, disabled mode trying
// the registries in order, aliases (in registries.conf, its drop-ins and the aliases cache) that
// allow an image only if their target pulls, the kubelet's docker.io credentials sent to every
// candidate, and every file read again when it changes.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseServeConfig } from '../../src/serve/config.js'
import { startFakeKubeApi, makeDockerConfigSecret, makeNamespace } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciManifest } from '../helpers/seed.js'
import { reviewImages, startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const PULLER_PASSWORD = 'ShortNamePuller1'
const ca = await createTestCA()
t.teardown(() => ca.close())
// `first` and `second` are the nodes' search registries, in that order; `second` wants a login.
const first = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => first.close())
const second = await startRegistry({ ca, auth: { kind: 'htpasswd', users: { puller: PULLER_PASSWORD } } })
t.teardown(() => second.close())
const PUSH = { username: 'puller', password: PULLER_PASSWORD }
await seedOciManifest(first, 'team/app', 'v1')
await seedOciManifest(first, 'team/aliased', 'v1')
await seedOciManifest(second, 'team/app', 'v1', PUSH)
await seedOciManifest(second, 'team/only-second', 'v1', PUSH)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
for (const name of ['team-a', 'team-b']) kube.namespaces.set(name, makeNamespace(name))
// The kubelet matches a short name's secrets against docker.io/<name>: a Docker Hub secret is the one it sends.
kube.secrets.set(
  'team-a/hub',
  makeDockerConfigSecret('team-a', 'hub', {
    'https://index.docker.io/v1/': { username: 'puller', password: PULLER_PASSWORD },
  }),
)
// Written for the registry the name resolves to: the kubelet never matches it to a short name.
kube.secrets.set(
  'team-b/direct',
  makeDockerConfigSecret('team-b', 'direct', { [second.host]: { username: 'puller', password: PULLER_PASSWORD } }),
)
const counter = countRequests()
t.teardown(() => counter.stop())

const scratch = await mkdtemp(join(tmpdir(), 'pullguard-short-names-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
let confs = 0
/** A folder holding registries.conf (and registries.conf.d/ with `dropIns`, by file name). */
async function nodeFiles(main: string, dropIns: Record<string, string> = {}): Promise<string> {
  const dir = join(scratch, `etc-${++confs}`)
  await mkdir(join(dir, 'registries.conf.d'), { recursive: true })
  await writeFile(join(dir, 'registries.conf'), main)
  for (const [name, text] of Object.entries(dropIns)) await writeFile(join(dir, 'registries.conf.d', name), text)
  return join(dir, 'registries.conf')
}
const search = (...hosts: string[]): string => `unqualified-search-registries = ${JSON.stringify(hosts)}\n`

async function webhook(args: string[]): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args })
  t.teardown(() => w.close())
  return w
}
const review = reviewImages

/** Reviews until `done` holds for the answer (a file change is seen within the poll period), or 20 s. */
async function until(
  w: RunningWebhook,
  images: string[],
  done: (r: { response: any; logged: any[] }) => boolean,
): Promise<{ response: any; logged: any[] }> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const r = await review(w, images)
    if (done(r) || Date.now() > deadline) return r
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

t.test('enforcing (the default): an ambiguous short name is denied with CRI-O reason, no request sent', async (t) => {
  // registries.conf's own short-name-mode is CRI-O's to override, and it always does.
  const file = await nodeFiles(`short-name-mode = "disabled"\n${search(first.host, second.host)}`)
  const w = await webhook(['--registries-conf', file])
  counter.reset()
  const { response, logged } = await review(w, ['team/app:v1'])
  t.equal(response.allowed, false)
  t.match(
    response.status.message,
    `short name "team/app" is ambiguous on the nodes' CRI-O: short_name_mode is enforcing and ${file} lists 2 unqualified-search registries (${first.host}, ${second.host})`,
  )
  t.match(response.status.message, 'short name mode is enforcing, but image name team/app:v1 returns ambiguous list')
  t.match(
    response.status.message,
    `write the image with its registry: ${first.host}/team/app:v1 or ${second.host}/team/app:v1`,
  )
  t.match(response.status.message, `"team/app" = "${second.host}/team/app"`, 'the alias lines to add')
  t.match(logged, [{ reason: 'ShortNameAmbiguous', shortName: { origin: file } }])
  t.equal(counter.count(first.origin) + counter.count(second.origin), 0, 'no registry was asked')
  const untagged = await review(w, ['team/app'])
  t.match(untagged.response.status.message, 'image name team/app:latest returns ambiguous list')
  const qualified = await review(w, [`${first.host}/team/app:v1`])
  t.equal(qualified.response.allowed, true, 'a fully qualified name is not a short name')
})

t.test('one search registry: no ambiguity, that one is asked', async (t) => {
  const w = await webhook(['--registries-conf', await nodeFiles(search(first.host))])
  const ok = await review(w, ['team/app:v1'])
  t.equal(ok.response.allowed, true)
  t.match(ok.logged, [{ reason: 'Exists', resolvedTo: `${first.host}/team/app:v1`, shortName: { via: 'search' } }])
  const missing = await review(w, ['team/only-second:v1'])
  t.equal(missing.response.allowed, false, 'never Docker Hub: the nodes would not look there')
  t.match(missing.response.status.message, `repository ${first.host}/team/only-second does not exist`)
  t.match(missing.response.status.message, `short name "team/only-second" became ${first.host}/team/only-second:v1`)
})

t.test('disabled: the search registries in order, the first that has the image wins', async (t) => {
  const w = await webhook([
    '--registries-conf',
    await nodeFiles(search(first.host, second.host)),
    '--short-name-mode',
    'disabled',
  ])
  const found = await review(w, ['team/only-second:v1'], { secrets: ['hub'] })
  t.equal(found.response.allowed, true)
  t.match(found.logged, [
    {
      reason: 'Exists',
      resolvedTo: `${second.host}/team/only-second:v1`,
      decidedBy: 'hub',
      shortName: {
        via: 'search',
        tried: [
          { name: `${first.host}/team/only-second:v1`, code: 'RepositoryNotFound' },
          { name: `${second.host}/team/only-second:v1`, code: 'Exists' },
        ],
      },
    },
  ])
  const firstWins = await review(w, ['team/app:v1'])
  t.match(firstWins.logged, [{ resolvedTo: `${first.host}/team/app:v1`, shortName: { tried: [{ code: 'Exists' }] } }])
  t.equal(firstWins.logged[0].shortName.tried.length, 1, 'the second is not asked once the first pulls')
  const nowhere = await review(w, ['team/app:v404'])
  t.equal(nowhere.response.allowed, false)
  t.match(nowhere.response.status.message, /tag "v404" does not exist in 127\.0\.0\.1:\d+\/team\/app/)
  t.match(nowhere.response.status.message, `also tried: ${second.host}/team/app:v404: AccessDenied`)
})

t.test("credentials: the kubelet's match for docker.io/<name>, sent to every candidate", async (t) => {
  const w = await webhook(['--registries-conf', await nodeFiles(search(second.host))])
  const withHub = await review(w, ['team/only-second:v1'], { secrets: ['hub'] })
  t.equal(withHub.response.allowed, true, 'the Docker Hub secret reaches the search registry')
  t.match(withHub.logged, [{ decidedBy: 'hub' }])
  const anonymous = await review(w, ['team/only-second:v1'])
  t.equal(anonymous.response.allowed, false)
  t.match(anonymous.response.status.message, 'no pull secret matches this registry')
  const direct = await review(w, ['team/only-second:v1'], { namespace: 'team-b', secrets: ['direct'] })
  t.equal(
    direct.response.allowed,
    false,
    "a secret for the registry's own host does not match the short name: the kubelet sends none",
  )
})

t.test('an alias wins in every mode, and allows the image only if its target pulls', async (t) => {
  const file = await nodeFiles(
    `${search(first.host, second.host)}[aliases]\n"app" = "${first.host}/team/aliased"\n"gone" = "${first.host}/team/nothing"\n`,
  )
  for (const mode of ['enforcing', 'disabled']) {
    const w = await webhook(['--registries-conf', file, '--short-name-mode', mode])
    const ok = await review(w, ['app:v1'])
    t.equal(ok.response.allowed, true, mode)
    t.match(ok.logged, [{ resolvedTo: `${first.host}/team/aliased:v1`, shortName: { via: 'alias', origin: file } }])
    const gone = await review(w, ['gone:v1'])
    t.equal(gone.response.allowed, false, `${mode}: no fallback to the search registries`)
    t.match(
      gone.response.status.message,
      `short name "gone" became ${first.host}/team/nothing:v1 by an alias in ${file}`,
    )
  }
})

t.test('drop-ins: the search list replaced, aliases overridden and removed, a registry blocked', async (t) => {
  const file = await nodeFiles(
    `${search(first.host, second.host)}[aliases]\n"app" = "${first.host}/team/app"\n"old" = "${first.host}/team/aliased"\n`,
    {
      '10-search.conf': search(second.host),
      '20-aliases.conf': `[aliases]\n"app" = "${second.host}/team/only-second"\n"old" = ""\n`,
      'ignored.txt': search(first.host),
    },
  )
  const dir = join(file, '..', 'registries.conf.d')
  const w = await webhook(['--registries-conf', file])
  const searched = await review(w, ['team/app:v1'], { secrets: ['hub'] })
  t.match(
    searched.logged,
    [
      {
        reason: 'Exists',
        resolvedTo: `${second.host}/team/app:v1`,
        shortName: { origin: join(dir, '10-search.conf') },
      },
    ],
    'one search registry now: no ambiguity',
  )
  const aliased = await review(w, ['app:v1'], { secrets: ['hub'] })
  t.match(aliased.logged, [
    {
      resolvedTo: `${second.host}/team/only-second:v1`,
      shortName: { via: 'alias', origin: join(dir, '20-aliases.conf') },
    },
  ])
  const removed = await review(w, ['old:v1'], { secrets: ['hub'] })
  t.match(removed.logged, [{ shortName: { via: 'search' } }], 'an alias set to "" is gone')

  const blocking = await nodeFiles(search(first.host, second.host), {
    '50-block.conf': `[[registry]]\nlocation = "${first.host}"\nblocked = true\n`,
  })
  const b = await webhook(['--registries-conf', blocking, '--short-name-mode', 'disabled'])
  counter.reset()
  const skipped = await review(b, ['team/app:v1'], { secrets: ['hub'] })
  t.match(skipped.logged, [
    {
      reason: 'Exists',
      resolvedTo: `${second.host}/team/app:v1`,
      shortName: { tried: [{ name: `${first.host}/team/app:v1`, code: 'RegistryBlocked' }, { code: 'Exists' }] },
    },
  ])
  t.equal(counter.count(first.origin), 0, 'the blocked candidate is not asked')
  const onlyBlocked = await review(b, [`${first.host}/team/app:v1`])
  t.match(onlyBlocked.logged, [
    { reason: 'RegistryBlocked', blockedBy: { file: join(blocking, '..', 'registries.conf.d', '50-block.conf') } },
  ])
})

t.test(
  'an invalid drop-in: pullguard does not start, naming the file; later, the last good version is kept',
  async (t) => {
    const bad = await nodeFiles(search(first.host), {
      '30-bad.conf': '[aliases]\n"quay.io/app" = "quay.io/team/app"\n',
    })
    t.throws(() => parseServeConfig(['--registries-conf', bad], {}), {
      name: 'ConfigError',
      message: /30-bad\.conf: short-name aliases: invalid short name "quay\.io\/app": must not contain registry/,
    })
    const file = await nodeFiles(search(first.host))
    const w = await webhook(['--registries-conf', file])
    t.equal((await review(w, ['team/app:v1'])).response.allowed, true)
    await writeFile(join(file, '..', 'registries.conf.d', '40-broken.conf'), '[[registry]\n')
    const deadline = Date.now() + 20_000
    while (!w.logs.some((l) => l.includes('could not be read again')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200))
    t.ok(
      w.logs.some((l) => l.includes('could not be read again') && l.includes('40-broken.conf')),
      'said so, naming it',
    )
    t.equal((await review(w, ['team/app:v1'])).response.allowed, true, 'the last good version still answers')
  },
)

t.test('every file read again when it changes: registries.conf, a drop-in, the aliases cache', async (t) => {
  const file = await nodeFiles(search(first.host, second.host))
  const cache = join(scratch, 'short-name-aliases.conf')
  const w = await webhook(['--registries-conf', file, '--short-name-aliases', cache])
  t.equal((await review(w, ['team/app:v1'])).response.allowed, false, 'ambiguous to begin with')
  await writeFile(file, search(first.host))
  const main = await until(w, ['team/app:v1'], (r) => r.response.allowed)
  t.match(main.logged, [{ resolvedTo: `${first.host}/team/app:v1` }], 'the main file')
  await writeFile(join(file, '..', 'registries.conf.d', '01.conf'), `[aliases]\n"app" = "${first.host}/team/aliased"\n`)
  const dropIn = await until(w, ['app:v1'], (r) => r.logged[0]?.shortName?.via === 'alias')
  t.match(dropIn.logged, [{ resolvedTo: `${first.host}/team/aliased:v1` }], 'a new drop-in')
  await writeFile(cache, `[aliases]\n"app" = "${first.host}/team/app"\n`)
  const cached = await until(w, ['app:v1'], (r) => r.logged[0]?.resolvedTo === `${first.host}/team/app:v1`)
  t.match(cached.logged, [{ shortName: { via: 'alias', origin: cache } }], 'the aliases cache, which wins')
})

t.test("CRI-O's own configuration gives the mode; --short-name-mode overrides it", async (t) => {
  const crio = join(scratch, 'crio.conf')
  // Its own policy, so the machine's /etc/containers/policy.json (CRI-O's default) is never read.
  const accept = join(scratch, 'accept.json')
  await writeFile(accept, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }))
  await writeFile(
    crio,
    `[crio.image]\nshort_name_mode = "disabled"\nsignature_policy = "${accept}"\nsignature_policy_dir = "${join(scratch, 'no-policies')}"\n`,
  )
  const file = await nodeFiles(search(first.host, second.host))
  const fromCrio = await webhook(['--registries-conf', file, '--crio-config', crio])
  t.equal((await review(fromCrio, ['team/app:v1'])).response.allowed, true, 'disabled by crio.conf')
  const confD = join(scratch, 'crio.conf.d')
  await mkdir(confD)
  await writeFile(join(confD, '99-strict.conf'), '[crio.image]\nshort_name_mode = "enforcing"\n')
  const fromDropIn = await webhook(['--registries-conf', file, '--crio-config', crio, '--crio-config-dir', confD])
  t.equal(
    (await review(fromDropIn, ['team/app:v1'])).response.allowed,
    false,
    'a crio.conf.d drop-in wins over crio.conf',
  )
  const flag = await webhook(['--registries-conf', file, '--crio-config', crio, '--short-name-mode', 'enforcing'])
  t.equal((await review(flag, ['team/app:v1'])).response.allowed, false, 'the flag wins')
  t.throws(() => parseServeConfig(['--short-name-mode', 'disabled'], {}), {
    name: 'ConfigError',
    message: /--short-name-mode: is a CRI-O setting: give the nodes' registries.conf with --registries-conf too/,
  })
  await writeFile(join(scratch, 'bad-crio.conf'), '[crio.image]\nshort_name_mode = "permissive"\n')
  t.throws(() => parseServeConfig(['--registries-conf', file, '--crio-config', join(scratch, 'bad-crio.conf')], {}), {
    name: 'ConfigError',
    message: /short_name_mode must be "enforcing" or "disabled", not "permissive"/,
  })
})
