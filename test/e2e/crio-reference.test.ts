// pullguard's reading of CRI-O's files against containers-image's own code (go.podman.io/image/v5,
// built by test/cluster/containers-image): for each set of files and each image, the names a short
// name resolves to, in order, and where each qualified name is pulled from. Both read the same
// files; every answer must agree.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log/logger.js'
import { MirrorRoutes } from '../../src/mirrors/routes.js'
import type { ShortNameMode } from '../../src/mirrors/short-names.js'
import { parseReference } from '../../src/reference/index.js'
import { findRegistry, resolveShortName } from '../cluster/containers-image.js'

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
