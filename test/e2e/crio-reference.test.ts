// pullguard's reading of CRI-O's files against containers-image's own code (go.podman.io/image/v5,
// built by test/cluster/containers-image): for each set of files and each image, the names a short
// name resolves to, in order, where each qualified name is pulled from, and whether the signature
// policy lets it run (against a real registry holding cosign-style signatures). Both read the same
// files; every answer must agree.
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log/logger.js'
import { MirrorRoutes } from '../../src/mirrors/routes.js'
import type { ShortNameMode } from '../../src/mirrors/short-names.js'
import { parseReference } from '../../src/reference/index.js'
import { evaluatePolicy, findRegistry, resolveShortName } from '../cluster/containers-image.js'
import { runCli } from '../helpers/cli.js'
import { cosignSign, sigstoreAttachmentManifest } from '../helpers/cosign.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest, seedRawManifest } from '../helpers/seed.js'

const scratch = await mkdtemp(join(tmpdir(), 'pullguard-crio-reference-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
const silent = createLogger('silent', new Writable({ write: (_c, _e, done) => done() }))

interface Files {
  main: string
  dropIns?: Record<string, string>
  cache?: string
}
let sets = 0
async function write(files: Files): Promise<{ file: string; dir: string; cache: string }> {
  const root = join(scratch, `set-${++sets}`)
  const dir = join(root, 'registries.conf.d')
  await mkdir(dir, { recursive: true })
  await writeFile(join(root, 'registries.conf'), files.main)
  for (const [name, text] of Object.entries(files.dropIns ?? {})) await writeFile(join(dir, name), text)
  // The cache lives in a folder of its own: containers-image writes a lock file beside it.
  await mkdir(join(root, 'cache'))
  const cache = join(root, 'cache', 'short-name-aliases.conf')
  if (files.cache !== undefined) await writeFile(cache, files.cache)
  return { file: join(root, 'registries.conf'), dir, cache }
}

const DIGEST = `sha256:${'c'.repeat(64)}`
const IMAGES = [
  'team/app:1.0',
  'team/app',
  'app:2',
  `app@${DIGEST}`,
  'tool',
  'old:1',
  'nginx',
  'library/nginx:1.27',
  'docker.io/nginx:1.27',
  'quay.io/team/app:1.0',
  'localhost/app:1',
  'registry:5000/app:1',
]

const SETS: Array<[string, Files]> = [
  [
    'search registries and aliases in the main file',
    {
      main: `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
short-name-mode = "permissive"
[aliases]
"app" = "quay.io/team/app"
"tool" = "docker.io/tools/tool"`,
    },
  ],
  [
    'drop-ins replacing the list, overriding and removing aliases; the cache winning',
    {
      main: `unqualified-search-registries = ["a.example", "b.example"]
[aliases]
"app" = "quay.io/team/app"
"old" = "quay.io/team/old"
"tool" = "quay.io/tools/tool"`,
      dropIns: {
        '10-search.conf': 'unqualified-search-registries = ["c.example:5000"]',
        '20-aliases.conf': '[aliases]\n"app" = "registry.example.com/team/app"\n"old" = ""',
        'notes.txt': 'unqualified-search-registries = ["ignored.example"]',
      },
      cache: '[aliases]\n"tool" = "cache.example/tools/tool"\n"nginx" = "cache.example/library/nginx"',
    },
  ],
  [
    'a drop-in that empties the list',
    {
      main: 'unqualified-search-registries = ["a.example"]',
      dropIns: { '01.conf': 'unqualified-search-registries = []' },
    },
  ],
  ['no search registries at all', { main: '' }],
  ['one search registry', { main: 'unqualified-search-registries = ["quay.io"]' }],
]

/** pullguard's answer in containers-image's terms. */
function ours(routes: MirrorRoutes, image: string): { candidates: string[] } | { error: string } {
  const r = routes.shortName(image)
  switch (r.kind) {
    case 'qualified':
      return { candidates: [parseReference(image).canonical] }
    case 'alias':
    case 'search':
      return { candidates: r.candidates.map((c) => c.canonical) }
    case 'ambiguous':
      return { error: 'ambiguous' }
    case 'unresolvable':
      return { error: r.problem }
  }
}

for (const [name, files] of SETS) {
  t.test(`short names: ${name}`, async (t) => {
    const { file, dir, cache } = await write(files)
    for (const mode of ['disabled', 'enforcing'] as ShortNameMode[]) {
      const routes = new MirrorRoutes(
        { kind: 'registries-conf', file, aliasesFile: cache, shortNameMode: mode as 'enforcing' | 'disabled' },
        silent,
        { watch: false },
      )
      for (const image of IMAGES) {
        const theirs = await resolveShortName(image, {
          registriesConf: file,
          registriesConfDir: dir,
          aliasesConf: cache,
          mode,
        })
        const mine = ours(routes, image)
        const label = `${image} (${mode})`
        if ('candidates' in theirs) {
          t.same(mine, { candidates: theirs.candidates }, label)
        } else if (theirs.error === 'short-name resolution enforced but cannot prompt without a TTY') {
          // CRI-O gives its own words for this; containers-image's say the same thing.
          t.same(mine, { error: 'ambiguous' }, label)
        } else {
          t.ok('error' in mine, `${label}: both refuse (${theirs.error})`)
          if ('error' in mine && theirs.error.includes('did not resolve to an alias'))
            t.equal(mine.error, theirs.error, `${label}: in the same words`)
        }
      }
      routes.close()
    }
  })
}

t.test('where qualified names are pulled from after drop-ins: prefixes, mirrors, blocked', async (t) => {
  const { file, dir } = await write({
    main: `[[registry]]
prefix = "quay.io/team"
location = "quay.io/team"
[[registry.mirror]]
location = "mirror.internal:5000/quay-team"
[[registry]]
location = "blocked.example"
blocked = true
[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "cache.corp.example:5000"
[[registry]]
prefix = "*.cdn.example"
location = "cdn.internal/all"
[[registry]]
prefix = "*.bad.example"
location = "*.bad.example"`,
    dropIns: {
      '10.conf': `[[registry]]
prefix = "quay.io/team"
location = "quay.io/team"
[[registry.mirror]]
location = "other-mirror.internal/team"
pull-from-mirror = "digest-only"
[[registry]]
location = "blocked.example"
blocked = false`,
      '20.conf': `[[registry]]
prefix = "quay.io/team/special"
location = "special.example/app"`,
    },
  })
  const routes = new MirrorRoutes({ kind: 'registries-conf', file }, silent, { watch: false })
  const names = [
    'quay.io/team/app:1.0',
    `quay.io/team/app@${DIGEST}`,
    'quay.io/team/special:1',
    'quay.io/other/app:1',
    'blocked.example/app:1',
    'registry.corp.example/app:1',
    'eu.cdn.example/team/app:1',
    'x.bad.example/app:1',
    'docker.io/library/nginx:latest',
  ]
  for (const name of names) {
    const theirs = await findRegistry(name, { registriesConf: file, registriesConfDir: dir })
    const ref = parseReference(name)
    const blocked = routes.blocked(ref)
    if ('error' in theirs) {
      // A location no name can be rewritten to: containers-image fails the pull, pullguard calls it blocked and says why.
      t.match(theirs.error, 'rewriting reference: invalid reference format', `${name}: ${theirs.error}`)
      t.match(blocked, { problem: /gives no valid image name/ }, `${name}: every pull under the rule fails`)
      continue
    }
    if ('registry' in theirs) {
      t.equal(blocked, undefined, `${name}: no rule`)
      t.same(
        routes.endpoints(ref).map((e) => `${e.host}/${e.repository}`),
        [`${ref.registryHost}/${ref.path}`],
        name,
      )
      continue
    }
    t.equal(blocked !== undefined, theirs.blocked, `${name}: blocked as containers-image says`)
    if (theirs.blocked) continue
    const tail = ref.digest === undefined ? `:${ref.reference}` : `@${ref.digest}`
    const sources = routes
      .endpoints(ref)
      .map((e) => `${e.host === 'registry-1.docker.io' ? 'docker.io' : e.host}/${e.repository}${tail}`)
    t.same(
      sources,
      theirs.pullSources.map((s) => s.reference),
      `${name}: the same sources, in order`,
    )
  }
  routes.close()
})

t.test('signature policy: pullguard allows exactly what containers-image allows', async (t) => {
  const ca = await createTestCA()
  t.teardown(() => ca.close())
  const reg = await startRegistry({ ca, auth: { kind: 'none' } })
  t.teardown(() => reg.close())
  const trusted = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const stranger = generateKeyPairSync('ed25519')
  const sign = async (repository: string, digest: string, key: KeyObject, identity: string): Promise<void> => {
    const att = sigstoreAttachmentManifest([
      cosignSign({ privateKey: key, dockerReference: identity, manifestDigest: digest }),
    ])
    await seedRawManifest(
      reg,
      repository,
      att.tag(digest),
      att.blobs.map((b) => b.data),
      'application/vnd.oci.image.manifest.v1+json',
      att.manifest,
    )
  }
  const images: string[] = []
  const seed = async (repository: string, signer?: KeyObject, identity?: string): Promise<void> => {
    const s = await seedOciManifest(reg, repository, 'v1')
    if (signer !== undefined) await sign(repository, s.digest, signer, identity ?? `${reg.host}/${repository}`)
    images.push(`${reg.host}/${repository}:v1`, `${reg.host}/${repository}@${s.digest}`)
  }
  await seed('team/signed', trusted.privateKey)
  await seed('team/unsigned')
  await seed('team/stranger', stranger.privateKey)
  await seed('team/elsewhere', trusted.privateKey, 'quay.io/team/elsewhere')
  await seed('strict/repo-identity', trusted.privateKey)
  await seed('strict/tag-identity', trusted.privateKey, `${reg.host}/strict/tag-identity:v1`)
  await seed('open/app')
  await seed('closed/app', trusted.privateKey)

  const dir = join(scratch, 'signatures')
  await mkdir(join(dir, 'certs'), { recursive: true })
  await writeFile(join(dir, 'certs', 'ca.crt'), ca.caPem)
  const keyPath = join(dir, 'trusted.pub')
  await writeFile(keyPath, trusted.publicKey.export({ type: 'spki', format: 'pem' }))
  const registriesD = join(dir, 'registries.d')
  await mkdir(registriesD)
  await writeFile(join(registriesD, 'default.yaml'), 'default-docker:\n  use-sigstore-attachments: true\n')
  const registriesConf = join(dir, 'registries.conf')
  await writeFile(registriesConf, '')
  const policy = join(dir, 'policy.json')
  const sigstore = (type: string) => [{ type: 'sigstoreSigned', keyPath, signedIdentity: { type } }]
  await writeFile(
    policy,
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [`${reg.host}/team`]: sigstore('matchRepository'),
          [`${reg.host}/strict`]: sigstore('matchRepoDigestOrExact'),
          [`${reg.host}/open`]: [{ type: 'insecureAcceptAnything' }],
        },
      },
    }),
  )
  const manifest = join(dir, 'pods.yaml')
  await writeFile(
    manifest,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'all', namespace: 'default' },
      spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
    }),
  )
  const run = await runCli(
    [
      'check',
      '-f',
      manifest,
      '-o',
      'json',
      '--registry-ca',
      ca.caPath,
      '--registries-conf',
      registriesConf,
      '--signature-policy',
      policy,
      '--registries-d',
      registriesD,
    ],
    { env: { HOME: dir } },
  )
  const verdicts = new Map<string, { verdict: string; reason: string }>(
    JSON.parse(run.stdout).objects[0].images.map((i: any) => [i.image, { verdict: i.verdict, reason: i.reason }]),
  )
  for (const image of images) {
    const theirs = await evaluatePolicy(image, { policy, registriesD, certDir: join(dir, 'certs'), registriesConf })
    const mine = verdicts.get(image)
    t.equal(theirs.stage, undefined, `${image}: containers-image evaluated it (${theirs.error ?? ''})`)
    t.equal(
      mine?.verdict,
      theirs.allowed ? 'pullable' : 'not-pullable',
      `${image}: ${mine?.reason} / ${theirs.error ?? 'allowed'}`,
    )
  }
})
